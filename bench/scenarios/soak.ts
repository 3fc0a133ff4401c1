/**
 * soak: sessions open, run one command and close, continuously, for T minutes, from C loops at once.
 * Before (after a short warm-up) and after (all closed, settled) the agent's RSS and open fds are read:
 * did they return to baseline? And does any shell stay behind in the containers? The baseline does the
 * same cycles over direct execs and reports the same for its client process.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sampleProcess, type ProcessSample } from '../agent.js';
import { progressBar, type BenchHarness, type CommonOptions } from '../harness.js';
import type { SoakParams, SoakResult, TerminalKind } from '../load/protocol.js';
import { percentiles, row, type BenchReport, type Percentiles } from '../report.js';
import { report, setupRows, shownArgs, sleep, startClock, withHarness } from './common.js';

const run = promisify(execFile);

export interface SoakOptions extends CommonOptions {
  durationSeconds: number;
  concurrency: number;
  containers: number;
}

export const soakDefaults = { durationSeconds: 150, concurrency: 8, containers: 4 };
export const soakQuick = { durationSeconds: 6, concurrency: 2, containers: 2 };

const MB = 1024 * 1024;
/** RSS "returned" when within this of the warm base: V8 keeps some heap it grew into. */
const RSS_SLACK = { ratio: 1.15, bytes: 8 * MB };
const FD_SLACK = 2;
/** A soak loop fails when its load process has been silent this long (a cycle takes well under 1 s). */
const STALL_MS = 60_000;

interface Side {
  base: ProcessSample;
  peak: ProcessSample;
  end: ProcessSample;
  cycles: number;
  failures: number;
  retries: number;
  cyclesPerSecond: number;
  cycle: Percentiles;
  leftoverShells: number;
  /** RSS change from the middle to the end of the run, per 1000 cycles: a leak keeps climbing, a
   * warmed-up heap stays flat. */
  secondHalfRssGrowthPer1000Cycles: number;
  rssReturned: boolean;
  fdsReturned: boolean;
  errors: string[];
}

/**
 * Shells still in the containers once the agent has had its setup timeout (30 s) to end sessions whose
 * browser never connected: those are orphans.
 */
async function shellsLeft(containers: string[]): Promise<number> {
  const deadline = Date.now() + 35_000;
  let count = await countShells(containers);
  while (count > 0 && Date.now() < deadline) {
    await sleep(1000);
    count = await countShells(containers);
  }
  return count;
}

/** Processes beside init and sleep in the containers. A `docker top` that fails fails the run: it is not zero. */
async function countShells(containers: string[]): Promise<number> {
  let count = 0;
  for (const c of containers) {
    const { stdout } = await run('docker', ['top', c, '-o', 'pid,args']).catch((err: unknown) => {
      throw new Error(`docker top ${c} failed, so the shells left cannot be counted: ${String(err)}`);
    });
    count += stdout
      .split('\n')
      .slice(1)
      .filter((l) => l.trim() && !l.includes('docker-init') && !l.includes('/bin/sleep 1000000')).length;
  }
  return count;
}

async function soakRun(
  h: BenchHarness,
  kind: TerminalKind,
  durationMs: number,
  concurrency: number,
  tag: string,
): Promise<SoakResult> {
  const loads = kind === 'termgate' ? h.loads : [h.baseline!];
  const per = Math.max(1, Math.round(concurrency / loads.length));
  const results = await Promise.all(
    loads.map((l, i) =>
      l.request<SoakResult>(
        'soak',
        {
          kind,
          prefix: `${tag}-${i}`,
          devices: h.containers,
          concurrency: per,
          durationMs,
        } satisfies SoakParams,
        // Bounded by progress: each cycle's signaling and output keeps the load process heard.
        { stallMs: STALL_MS },
      ),
    ),
  );
  const setups = results.reduce((s, r) => s + r.cycles + r.failures, 0);
  h.countSetups(
    kind,
    setups,
    results.reduce((s, r) => s + r.retries, 0),
  );
  return {
    cycles: results.reduce((s, r) => s + r.cycles, 0),
    failures: results.reduce((s, r) => s + r.failures, 0),
    retries: results.reduce((s, r) => s + r.retries, 0),
    cycleMs: results.flatMap((r) => r.cycleMs),
    errors: results.flatMap((r) => r.errors),
  };
}

async function side(h: BenchHarness, kind: TerminalKind, o: SoakOptions): Promise<Side> {
  const pid = kind === 'termgate' ? h.agent!.pid : h.baseline!.pid;
  // Warm-up: the first sessions grow pools and JIT; the base is taken after them, all closed.
  await soakRun(h, kind, Math.min(5000, (o.durationSeconds * 1000) / 4), o.concurrency, `${kind}-warm`);
  await sleep(3000);
  const base = sampleProcess(pid);
  let peak = base;
  const trace: ProcessSample[] = [];
  const durationMs = o.durationSeconds * 1000;
  const bar = progressBar(o.progress, `soak: ${kind} (s)`, o.durationSeconds);
  const t0 = Date.now();
  const sampler = setInterval(() => {
    const s = sampleProcess(pid);
    trace.push(s);
    if (s.rssBytes > peak.rssBytes) peak = s;
    bar?.update(Math.min(o.durationSeconds, Math.round((Date.now() - t0) / 1000)));
  }, 1000);
  let result: SoakResult;
  try {
    result = await soakRun(h, kind, durationMs, o.concurrency, kind);
  } finally {
    clearInterval(sampler);
    bar?.stop();
  }
  const seconds = (Date.now() - t0) / 1000;
  const mid = trace[Math.floor(trace.length / 2)] ?? base;
  const last = trace[trace.length - 1] ?? base;
  const secondHalfCycles = result.cycles / 2;
  await sleep(5000);
  const end = sampleProcess(pid);
  const leftoverShells = await shellsLeft(h.containers);
  return {
    base,
    peak,
    end,
    cycles: result.cycles,
    failures: result.failures,
    retries: result.retries,
    cyclesPerSecond: result.cycles / seconds,
    cycle: percentiles(result.cycleMs),
    leftoverShells,
    secondHalfRssGrowthPer1000Cycles:
      secondHalfCycles > 0 ? ((last.rssBytes - mid.rssBytes) / secondHalfCycles) * 1000 : 0,
    rssReturned: end.rssBytes <= base.rssBytes * RSS_SLACK.ratio + RSS_SLACK.bytes,
    fdsReturned: end.fds <= base.fds + FD_SLACK,
    errors: result.errors,
  };
}

export async function runSoak(o: SoakOptions): Promise<BenchReport> {
  const started = startClock();
  const loadProcesses = o.concurrency >= 4 ? 2 : 1;
  return withHarness(
    {
      workers: o.workers,
      containers: o.containers,
      maxSessions: o.concurrency * 2 + 4,
      loadProcesses,
      encoding: o.encoding,
      browserSetup: o.browserSetup,
      agentArgs: o.agentArgs,
    },
    async (h) => {
      const tg = await side(h, 'termgate', o);
      const bl = await side(h, 'baseline', o);
      const rows = [
        row('cycles (open, one command, close)', 'count', tg.cycles, bl.cycles),
        row('cycles per second', '1/s', tg.cyclesPerSecond, bl.cyclesPerSecond),
        row('cycle p50', 'ms', tg.cycle.p50, bl.cycle.p50),
        row('cycle p99', 'ms', tg.cycle.p99, bl.cycle.p99),
        row('failed cycles', 'count', tg.failures, bl.failures, { target: '0', met: tg.failures === 0 }),
        row('RSS warm base', 'MB', tg.base.rssBytes / MB, bl.base.rssBytes / MB),
        row('RSS peak', 'MB', tg.peak.rssBytes / MB, bl.peak.rssBytes / MB),
        row('RSS after, all closed', 'MB', tg.end.rssBytes / MB, bl.end.rssBytes / MB, {
          target: `≤ base × ${RSS_SLACK.ratio} + ${RSS_SLACK.bytes / MB} MB`,
          met: tg.rssReturned,
        }),
        row(
          'RSS growth, second half of the run, per 1000 cycles',
          'MB',
          tg.secondHalfRssGrowthPer1000Cycles / MB,
          bl.secondHalfRssGrowthPer1000Cycles / MB,
        ),
        row('open fds base', 'count', tg.base.fds, bl.base.fds),
        row('open fds after, all closed', 'count', tg.end.fds, bl.end.fds, {
          target: `≤ base + ${FD_SLACK}`,
          met: tg.fdsReturned,
        }),
        row(
          'threads after / base',
          'ratio',
          tg.end.threads / tg.base.threads,
          bl.end.threads / bl.base.threads,
        ),
        row('shells left in containers', 'count', tg.leftoverShells, bl.leftoverShells, {
          target: '0',
          met: tg.leftoverShells === 0,
        }),
        ...setupRows(h),
      ];
      return report(
        'soak',
        o,
        started,
        shownArgs(h),
        {
          durationSeconds: o.durationSeconds,
          concurrency: o.concurrency,
          containers: o.containers,
          loadProcesses,
        },
        rows,
        {
          termgate: tg,
          baseline: bl,
          // What failed cycles said, where a reader of the report looks first.
          errors: [...tg.errors.map((e) => `termgate: ${e}`), ...bl.errors.map((e) => `baseline: ${e}`)],
        },
      );
    },
  );
}
