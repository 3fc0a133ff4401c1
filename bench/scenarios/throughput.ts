/**
 * throughput: what terminals print. One session at a time: `yes <16 chars> | head -c`, `seq` and `cat` of
 * a text file through a cooked TTY, each in msgpack and in JSON, and `dd bs=64k` on a raw PTY as the kind
 * case; each beside a direct exec doing the same, measured between the two encodings so the three run
 * seconds apart. Then many streams: K sessions × M bytes of `yes` lines at once, against K direct execs at
 * once. MB/s (10^6 bytes) and CPU milliseconds per MB: the agent's (all its threads) for termgate, the
 * direct-exec client's for the baseline, the processes that relay the bytes in each case. Every transfer
 * is checked byte for byte: its length and sha256 against the output the workload must produce.
 */
import { sampleProcess } from '../agent.js';
import type { BenchHarness, CommonOptions, OpenedSession } from '../harness.js';
import type { BulkParams, BulkResult, TerminalKind } from '../load/protocol.js';
import { expectedDigest, LINE_WORKLOADS, type BulkWorkload, type OutputDigest } from '../load/workloads.js';
import { row, type BenchReport } from '../report.js';
import type { Encoding } from '../../common/protocol/terminal-messages.js';
import { report, setupRows, shownArgs, sleep, startClock, withHarness } from './common.js';
import {
  besideRows,
  floorRows,
  manyRows,
  medianBurnedRun,
  medianRun,
  singleRows,
  type BurnedRun,
  type Run,
  type WorkloadRuns,
} from './throughput-rows.js';
import { CpuBurner } from '../load/cpu-burner.js';
import { transportFloor } from '../load/transport-floor.js';
import { OUTPUT_CHUNK_BYTES } from '../../src/config/agent-config.js';

export { CPU_TARGET_MS, ENCODINGS, MANY_TARGET, ONE_TARGET } from './throughput-rows.js';

export interface ThroughputOptions extends CommonOptions {
  /** Bytes each line-output transfer prints (`yes`, `seq`, `cat`; before the TTY's `\r`s). */
  bytes: number;
  /** Bytes of the `dd bs=64k` transfer. */
  blockBytes: number;
  /** Sessions streaming at once in the many-streams run. */
  parallel: number;
  /** Bytes each of them prints. */
  parallelBytes: number;
  /**
   * Rounds of the one-session rows. A round runs msgpack, the direct exec and JSON one after another, the
   * next round in the reverse order; each row shows the medians. One round on this 2-core machine moves
   * a ratio by up to ±0.2 (bench/results/README.md).
   */
  rounds: number;
}

export const throughputDefaults = {
  bytes: 50_000_000,
  blockBytes: 200_000_000,
  parallel: 20,
  parallelBytes: 20_000_000,
  rounds: 3,
};
export const throughputQuick = {
  bytes: 1_000_000,
  blockBytes: 4_000_000,
  parallel: 3,
  parallelBytes: 1_000_000,
  rounds: 1,
};

/** A transfer that failed, or whose length or sha256 is not what its workload prints. */
export const TRANSFER_ERRORS_ROW = 'transfers missing or not byte-exact (length, sha256)';

/** A transfer fails only when its load process has received nothing for this long. */
const STALL_MS = 60_000;

async function bulk(
  h: BenchHarness,
  kind: TerminalKind,
  sessions: OpenedSession[],
  bytes: number,
  workload: BulkWorkload,
  expected: OutputDigest,
): Promise<Run> {
  const pid = kind === 'termgate' ? h.agent!.pid : h.baseline!.pid;
  const cpu0 = sampleProcess(pid).cpuSeconds;
  const settled = await Promise.allSettled(
    sessions.map((s) =>
      s.load.request<BulkResult>('bulk', { id: s.id, bytes, workload } satisfies BulkParams, {
        stallMs: STALL_MS,
      }),
    ),
  );
  const cpuSeconds = sampleProcess(pid).cpuSeconds - cpu0;
  const results = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const errors = settled.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
  if (results.length === 0) throw new Error(`every ${kind} ${workload} transfer failed: ${errors[0]}`);
  const total = results.reduce((sum, r) => sum + r.bytes, 0);
  const seconds =
    (Math.max(...results.map((r) => r.endMs)) - Math.min(...results.map((r) => r.startMs))) / 1000;
  const mb = total / 1e6;
  return {
    mbPerSecond: mb / seconds,
    cpuMsPerMb: (cpuSeconds * 1000) / mb,
    bytes: total,
    seconds,
    cpuSeconds,
    loadCpuSeconds: loadCpuSeconds(sessions, settled),
    completed: results.length,
    exact: results.filter((r) => r.bytes === expected.bytes && r.sha256 === expected.sha256).length,
    transfers: sessions.length,
    errors: errors.slice(0, 5),
  };
}

/**
 * CPU of the load processes during a transfer. Each transfer reports its process's CPU over its own
 * span, so transfers that ran at once in one process each report that process's whole CPU: count the
 * longest per process, not the sum.
 */
function loadCpuSeconds(sessions: OpenedSession[], settled: Array<PromiseSettledResult<BulkResult>>): number {
  const byProcess = new Map<unknown, number>();
  settled.forEach((r, i) => {
    if (r.status !== 'fulfilled') return;
    const load = sessions[i]!.load;
    byProcess.set(load, Math.max(byProcess.get(load) ?? 0, r.value.cpuMs));
  });
  return [...byProcess.values()].reduce((sum, ms) => sum + ms, 0) / 1000;
}

async function openOrThrow(
  h: BenchHarness,
  kind: TerminalKind,
  index: number,
  encoding?: Encoding,
): Promise<OpenedSession> {
  // The load process already tries a setup that failed on the simulated browser's side once more (and
  // counts it); any other failure is the run's.
  const s = await h.openOne(kind, index, encoding ? { encoding } : {});
  if (!s.ok) throw new Error(`a ${kind} session did not open: ${s.error}`);
  return s;
}

/**
 * One session per encoding and one direct exec, each workload on all three, the direct exec between, in
 * `o.rounds` rounds that alternate the order; each side's run is the median of its rounds (medianRun).
 */
async function singleSessions(h: BenchHarness, o: ThroughputOptions): Promise<WorkloadRuns[]> {
  const tg = {
    msgpack: await openOrThrow(h, 'termgate', 0, 'msgpack'),
    json: await openOrThrow(h, 'termgate', 1, 'json'),
  };
  const bl = await openOrThrow(h, 'baseline', 0);
  const all = [tg.msgpack, tg.json, bl];
  try {
    const warm = expectedDigest('yes', 1_000_000);
    for (const [kind, s] of [
      ['termgate', tg.msgpack],
      ['termgate', tg.json],
      ['baseline', bl],
    ] as const)
      await bulk(h, kind, [s], 1_000_000, 'yes', warm);
    const runs: WorkloadRuns[] = [];
    for (const workload of [...LINE_WORKLOADS, 'blocks'] as const) {
      const bytes = workload === 'blocks' ? o.blockBytes : o.bytes;
      const expected = expectedDigest(workload, bytes);
      const say = (who: string) =>
        o.progress && process.stderr.write(`throughput: ${workload} ${bytes / 1e6} MB, ${who}\n`);
      const sides = [
        { name: 'termgate msgpack', kind: 'termgate', session: tg.msgpack, runs: [] as Run[] },
        { name: 'direct exec', kind: 'baseline', session: bl, runs: [] as Run[] },
        { name: 'termgate json', kind: 'termgate', session: tg.json, runs: [] as Run[] },
      ] as const;
      const beside: BurnedRun[] = [];
      for (let round = 0; round < o.rounds; round++) {
        const ofRound = o.rounds > 1 ? `, round ${round + 1} of ${o.rounds}` : '';
        for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
          say(`${side.name}${ofRound}`);
          side.runs.push(await bulk(h, side.kind, [side.session], bytes, workload, expected));
        }
        const share = browserShare(sides[0].runs[round]!, sides[2].runs[round]!);
        say(`direct exec beside ${(share * 100).toFixed(0)}% of a core taken${ofRound}`);
        beside.push(await besideBurner(share, () => bulk(h, 'baseline', [bl], bytes, workload, expected)));
      }
      const [msgpack, baseline, json] = sides.map((side) => medianRun(side.runs)) as [Run, Run, Run];
      runs.push({
        workload,
        bytes,
        termgate: { msgpack, json },
        baseline,
        besideBrowser: medianBurnedRun(beside),
      });
    }
    return runs;
  } finally {
    await h.closeSessions(all);
  }
}

/** Share of a core the simulated browser took in a round: the mean of its msgpack and JSON sessions'. */
function browserShare(msgpack: Run, json: Run): number {
  return (msgpack.loadCpuSeconds / msgpack.seconds + json.loadCpuSeconds / json.seconds) / 2;
}

/** A direct exec's run beside a process taking `share` of a core, with the share it really took. */
async function besideBurner(share: number, run: () => Promise<Run>): Promise<BurnedRun> {
  const burner = await CpuBurner.start(share);
  try {
    const result = await run();
    return { ...result, burnShare: (await burner.close()).share };
  } finally {
    // After a failed run, its error is the one to tell; after a good one, close() was awaited above.
    await burner.close().catch(() => undefined);
  }
}

/**
 * For each line-output workload, the transport floor: a bare node-datachannel sender moving the msgpack
 * session's bytes at its MB/s, in the agent's largest output message (bench/load/transport-floor.ts).
 */
async function measureFloors(runs: WorkloadRuns[], o: ThroughputOptions): Promise<void> {
  for (const run of runs) {
    if (run.workload === 'blocks') continue;
    if (o.progress) process.stderr.write(`throughput: ${run.workload}, transport floor\n`);
    run.floor = await transportFloor({
      kind: 'send',
      bytes: run.bytes,
      messageBytes: OUTPUT_CHUNK_BYTES,
      mbPerSecond: run.termgate.msgpack.mbPerSecond,
    });
  }
}

/** `parallel` sessions (or direct execs) print `parallelBytes` of `yes` lines each, all at once. */
async function manyStreams(h: BenchHarness, kind: TerminalKind, o: ThroughputOptions): Promise<Run> {
  const { sessions } = await h.open(kind, o.parallel, Math.min(o.parallel, 10), undefined, {
    encoding: o.encoding,
  });
  try {
    const failed = sessions.find((s) => !s.ok);
    if (failed) throw new Error(`a ${kind} session did not open: ${failed.error}`);
    if (o.progress)
      process.stderr.write(`throughput: ${kind} ${o.parallel} sessions × ${o.parallelBytes / 1e6} MB\n`);
    return await bulk(h, kind, sessions, o.parallelBytes, 'yes', expectedDigest('yes', o.parallelBytes));
  } finally {
    await h.closeSessions(sessions);
  }
}

export async function runThroughput(o: ThroughputOptions): Promise<BenchReport> {
  const started = startClock();
  const loadProcesses = 2;
  const containers = Math.min(4, o.parallel);
  // Every expected digest up front, so generating them never overlaps a measurement.
  for (const w of LINE_WORKLOADS) expectedDigest(w, o.bytes);
  expectedDigest('blocks', o.blockBytes);
  expectedDigest('yes', o.parallelBytes);
  return withHarness(
    {
      workers: o.workers,
      containers,
      maxSessions: Math.max(o.parallel, 2) + 1,
      loadProcesses,
      encoding: o.encoding,
      browserSetup: o.browserSetup,
      agentArgs: o.agentArgs,
    },
    async (h) => {
      const single = await singleSessions(h, o);
      await measureFloors(single, o);
      await sleep(1000);
      const manyTg = await manyStreams(h, 'termgate', o);
      await sleep(1000);
      const manyBl = await manyStreams(h, 'baseline', o);
      const all = [...single.flatMap((r) => [r.termgate.msgpack, r.termgate.json]), manyTg];
      const baselines = [...single.flatMap((r) => [r.baseline, r.besideBrowser]), manyBl];
      const count = (runs: Run[], key: 'exact' | 'transfers') => runs.reduce((n, r) => n + r[key], 0);
      const notExact = (runs: Run[]) => count(runs, 'transfers') - count(runs, 'exact');
      const rows = [
        ...singleRows(single),
        ...besideRows(single),
        ...floorRows(single, OUTPUT_CHUNK_BYTES),
        ...manyRows(o, manyTg, manyBl),
        row('transfers checked', 'count', count(all, 'transfers'), count(baselines, 'transfers')),
        row(TRANSFER_ERRORS_ROW, 'count', notExact(all), notExact(baselines), {
          target: '0',
          met: notExact(all) === 0 && notExact(baselines) === 0,
        }),
        ...setupRows(h),
      ];
      return report(
        'throughput',
        o,
        started,
        shownArgs(h),
        {
          bytes: o.bytes,
          blockBytes: o.blockBytes,
          parallel: o.parallel,
          parallelBytes: o.parallelBytes,
          rounds: o.rounds,
          loadProcesses,
          containers,
        },
        rows,
        {
          single,
          many: { termgate: manyTg, baseline: manyBl },
          errors: [...all, ...baselines].flatMap((r) => r.errors).slice(0, 10),
        },
      );
    },
  );
}
