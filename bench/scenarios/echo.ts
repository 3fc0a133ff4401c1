/**
 * echo: keystroke round trip (one byte typed, the same byte back from `cat` on a raw PTY) while N other
 * sessions stay open and idle, against the same over a direct exec with N idle direct execs beside it.
 */
import type { BenchHarness, CommonOptions, OpenedSession } from '../harness.js';
import { progressBar } from '../harness.js';
import type { TerminalKind } from '../load/protocol.js';
import { percentiles, row, type BenchReport, type Percentiles } from '../report.js';
import { report, setupRows, shownArgs, sleep, startClock, withHarness } from './common.js';

export interface EchoOptions extends CommonOptions {
  keystrokes: number;
  idle: number;
  containers: number;
}

export const echoDefaults = { keystrokes: 1000, idle: 200, containers: 10 };
export const echoQuick = { keystrokes: 100, idle: 8, containers: 2 };

const WARMUP = 20;
const BATCH = 100;
/** A batch of keystrokes fails only when its load process has gone quiet this long. */
const STALL_MS = 30_000;

async function measure(
  h: BenchHarness,
  kind: TerminalKind,
  o: EchoOptions,
): Promise<{ samples: number[]; idle: OpenedSession[]; echo: OpenedSession }> {
  const idleBar = progressBar(o.progress, `echo: ${kind} idle sessions`, o.idle);
  const { sessions: idle } = await h.open(kind, o.idle, 20, idleBar);
  idleBar?.stop();
  // The load process already tries a setup that failed on the simulated browser's side once more (and
  // counts it); any other failure is the run's.
  const echo = await h.openOne(kind, 0);
  if (!echo.ok) throw new Error(`the ${kind} echo session did not open: ${echo.error}`);
  await echo.load.request('echo-mode', { id: echo.id });
  await echo.load.request('keystrokes', { id: echo.id, count: WARMUP });
  const bar = progressBar(o.progress, `echo: ${kind} keystrokes`, o.keystrokes);
  const samples: number[] = [];
  while (samples.length < o.keystrokes) {
    const count = Math.min(BATCH, o.keystrokes - samples.length);
    samples.push(
      ...(await echo.load.request<number[]>('keystrokes', { id: echo.id, count }, { stallMs: STALL_MS })),
    );
    bar?.update(samples.length);
  }
  bar?.stop();
  return { samples, idle, echo };
}

export async function runEcho(o: EchoOptions): Promise<BenchReport> {
  const started = startClock();
  const loadProcesses = Math.max(1, Math.ceil((o.idle + 1) / 250));
  return withHarness(
    {
      workers: o.workers,
      containers: o.containers,
      maxSessions: o.idle + 2,
      loadProcesses,
      encoding: o.encoding,
      browserSetup: o.browserSetup,
      agentArgs: o.agentArgs,
    },
    async (h) => {
      const tg = await measure(h, 'termgate', o);
      const idleOk = tg.idle.filter((s) => s.ok).length;
      await h.closeSessions([...tg.idle, tg.echo]);
      await sleep(1000);
      const bl = await measure(h, 'baseline', o);
      const blIdleOk = bl.idle.filter((s) => s.ok).length;
      await h.closeSessions([...bl.idle, bl.echo]);

      const t: Percentiles = percentiles(tg.samples);
      const b: Percentiles = percentiles(bl.samples);
      const rows = [
        row('keystroke round trip p50', 'ms', t.p50, b.p50, {
          target: '≤ baseline + 1 ms',
          met: t.p50 <= b.p50 + 1,
        }),
        row('keystroke round trip p90', 'ms', t.p90, b.p90),
        row('keystroke round trip p99', 'ms', t.p99, b.p99, {
          target: '≤ baseline + 5 ms',
          met: t.p99 <= b.p99 + 5,
        }),
        row('keystroke round trip max', 'ms', t.max, b.max),
        row('keystrokes measured', 'count', t.count, b.count),
        row('idle sessions open meanwhile', 'count', idleOk, blIdleOk, {
          target: `${o.idle}`,
          met: idleOk === o.idle,
        }),
        ...setupRows(h),
      ];
      return report(
        'echo',
        o,
        started,
        shownArgs(h),
        { keystrokes: o.keystrokes, idle: o.idle, containers: o.containers, loadProcesses },
        rows,
        {
          termgate: t,
          baseline: b,
          errors: [...tg.idle, ...bl.idle].flatMap((s) => (s.error ? [s.error] : [])).slice(0, 10),
        },
      );
    },
  );
}
