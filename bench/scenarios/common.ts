/** Pieces the scenarios share: running with a harness and building the report around the rows. */
import { BenchHarness, type CommonOptions, type HarnessOptions } from '../harness.js';
import { machine, row, type BenchReport, type ResultRow } from '../report.js';

/** Starts a harness, runs `body`, and always tears the harness down. */
export async function withHarness<T>(
  options: HarnessOptions,
  body: (h: BenchHarness) => Promise<T>,
): Promise<T> {
  const harness = await BenchHarness.start(options);
  try {
    return await body(harness);
  } catch (err) {
    const log = harness.agent?.log.slice(-4000);
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}${log ? `\nagent log (tail):\n${log}` : ''}`,
      {
        cause: err,
      },
    );
  } finally {
    await harness.close();
  }
}

export function report(
  scenario: string,
  common: CommonOptions,
  started: { date: Date; t0: number },
  args: string[],
  options: Record<string, unknown>,
  rows: ResultRow[],
  details: Record<string, unknown>,
): BenchReport {
  return {
    scenario,
    date: started.date.toISOString(),
    quick: common.quick,
    durationSeconds: (performance.now() - started.t0) / 1000,
    machine: machine(),
    agent: { workers: common.workers, args },
    options: { ...options, encoding: common.encoding, browserSetup: common.browserSetup ?? 'actpass' },
    rows,
    details,
  };
}

export function startClock(): { date: Date; t0: number } {
  return { date: new Date(), t0: performance.now() };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Agent args as the report shows them (the cloud URL and per-run names elided). */
export function shownArgs(h: BenchHarness): string[] {
  return h.agent?.args.map((a) => a.replace(/http:\/\/127\.0\.0\.1:\d+/, 'http://127.0.0.1:<cloud>')) ?? [];
}

/**
 * Setups whose first try the simulated browser lost before the agent said anything on the channel
 * (bench/load/BenchPeer.ts `SetupLost`; libdatachannel as the offerer, the README's known issues) and
 * which a second try opened. Counted apart from failures so that neither hides the other.
 */
export const RETRIED_ROW = "setups retried (the simulated browser's peer failed first)";
export const SETUPS_ROW = 'sessions set up';

/** Every scenario's last two rows: the sessions it set up on each side and how many needed a retry. */
export function setupRows(h: BenchHarness): ResultRow[] {
  const { termgate, baseline } = h.setupCounts;
  return [
    row(SETUPS_ROW, 'count', termgate.setups, baseline.setups),
    row(RETRIED_ROW, 'count', termgate.retried, baseline.retried),
  ];
}
