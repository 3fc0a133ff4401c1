/**
 * interrupt: Ctrl-C under a flood. `yes` streams until the path is full, then Ctrl-C; timed from the
 * keystroke to the last output byte (the flood's tail and the prompt), repeated, p50/p99 beside the same
 * over a direct exec. The simulated browser acks what it takes, as the page does (workers/AckWindow.ts).
 */
import type { BenchHarness, CommonOptions } from '../harness.js';
import type { TerminalKind } from '../load/protocol.js';
import { percentiles, row, type BenchReport } from '../report.js';
import { report, setupRows, shownArgs, sleep, startClock, withHarness } from './common.js';

export interface InterruptOptions extends CommonOptions {
  floods: number;
  floodBytes: number;
}

export const interruptDefaults = { floods: 20, floodBytes: 4 * 1024 * 1024 };
export const interruptQuick = { floods: 3, floodBytes: 512 * 1024 };

/** A round of floods fails only when its load process has gone quiet this long. */
const STALL_MS = 30_000;
/** The bound on a stop (issue 13, point 4). */
export const INTERRUPT_BOUND_MS = 100;

async function measure(h: BenchHarness, kind: TerminalKind, o: InterruptOptions): Promise<number[]> {
  const session = await h.openOne(kind, 0);
  if (!session.ok) throw new Error(`the ${kind} session did not open: ${session.error}`);
  try {
    return await session.load.request<number[]>(
      'interrupts',
      { id: session.id, count: o.floods, floodBytes: o.floodBytes },
      { stallMs: STALL_MS },
    );
  } finally {
    await h.closeSessions([session]);
  }
}

export async function runInterrupt(o: InterruptOptions): Promise<BenchReport> {
  const started = startClock();
  return withHarness(
    {
      workers: o.workers,
      containers: 1,
      maxSessions: 2,
      loadProcesses: 1,
      encoding: o.encoding,
      browserSetup: o.browserSetup,
      agentArgs: o.agentArgs,
    },
    async (h) => {
      const tg = await measure(h, 'termgate', o);
      await sleep(1000);
      const bl = await measure(h, 'baseline', o);
      const t = percentiles(tg);
      const b = percentiles(bl);
      const rows = [
        row('Ctrl-C to last output byte p50', 'ms', t.p50, b.p50),
        row('Ctrl-C to last output byte p99', 'ms', t.p99, b.p99, {
          target: `≤ ${INTERRUPT_BOUND_MS} ms`,
          met: t.p99 <= INTERRUPT_BOUND_MS,
        }),
        row('Ctrl-C to last output byte max', 'ms', t.max, b.max),
        row('floods interrupted', 'count', t.count, b.count, {
          target: `${o.floods}`,
          met: t.count === o.floods,
        }),
        ...setupRows(h),
      ];
      return report(
        'interrupt',
        o,
        started,
        shownArgs(h),
        { floods: o.floods, floodBytes: o.floodBytes },
        rows,
        { termgate: tg, baseline: bl },
      );
    },
  );
}
