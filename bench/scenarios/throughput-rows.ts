/** The throughput scenario's result rows and the targets they are judged against (issue 12). */
import { workloadSpec, type BulkWorkload } from '../load/workloads.js';
import type { FloorResult } from '../load/transport-floor.js';
import { row, type ResultRow } from '../report.js';
import type { Encoding } from '../../common/protocol/terminal-messages.js';
import type { ThroughputOptions } from './throughput.js';

/** Both data channel encodings, msgpack (the page's default) first. */
export const ENCODINGS: readonly Encoding[] = ['msgpack', 'json'];
/** Agent CPU per MB of line output allowed, by encoding (issue 12). */
export const CPU_TARGET_MS: Record<Encoding, number> = { msgpack: 20, json: 30 };
/** The many-streams run must reach this share of as many direct execs at once. */
export const MANY_TARGET = 0.8;
/** One session must reach this share of a direct exec. */
export const ONE_TARGET = 0.9;

export interface Run {
  mbPerSecond: number;
  cpuMsPerMb: number;
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  loadCpuSeconds: number;
  /** Transfers that ended, and those of them whose length and sha256 are the expected ones. */
  completed: number;
  exact: number;
  transfers: number;
  errors: string[];
}

/**
 * One side of a row over several rounds: the median MB/s and CPU per MB (each its own median), with the
 * rounds' transfers, checks and errors all counted. The rounds themselves stay in `rounds`.
 */
export function medianRun(runs: Run[]): Run & { rounds?: Run[] } {
  if (runs.length === 1) return runs[0]!;
  const sum = (
    key: 'bytes' | 'seconds' | 'cpuSeconds' | 'loadCpuSeconds' | 'completed' | 'exact' | 'transfers',
  ) => runs.reduce((total, r) => total + r[key], 0);
  return {
    mbPerSecond: median(runs.map((r) => r.mbPerSecond)),
    cpuMsPerMb: median(runs.map((r) => r.cpuMsPerMb)),
    bytes: sum('bytes'),
    seconds: sum('seconds'),
    cpuSeconds: sum('cpuSeconds'),
    loadCpuSeconds: sum('loadCpuSeconds'),
    completed: sum('completed'),
    exact: sum('exact'),
    transfers: sum('transfers'),
    errors: runs.flatMap((r) => r.errors).slice(0, 5),
    rounds: runs,
  };
}

/** A direct exec's run beside a process taking a share of a core (bench/load/cpu-burner.ts). */
export interface BurnedRun extends Run {
  /** Share of a core the burner really took. */
  burnShare: number;
}

export function medianBurnedRun(runs: BurnedRun[]): BurnedRun {
  return { ...medianRun(runs), burnShare: median(runs.map((r) => r.burnShare)) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface WorkloadRuns {
  workload: BulkWorkload;
  bytes: number;
  termgate: Record<Encoding, Run>;
  baseline: Run;
  /** The direct exec again, beside a process taking the share of a core the simulated browser took. */
  besideBrowser: BurnedRun;
  /** What a bare node-datachannel sender cost per MB for the msgpack session's bytes, at its MB/s. */
  floor?: FloorResult;
}

export function singleRows(runs: WorkloadRuns[]): ResultRow[] {
  return runs.flatMap(({ workload, bytes, termgate, baseline }) => {
    const { label } = workloadSpec(workload, bytes, '');
    const lines = workload !== 'blocks';
    return ENCODINGS.flatMap((encoding) => {
      const t = termgate[encoding];
      return [
        row(`${label}, ${encoding}: one session`, 'MB/s', t.mbPerSecond, baseline.mbPerSecond, {
          target: `≥ ${ONE_TARGET}× baseline`,
          met: t.mbPerSecond >= ONE_TARGET * baseline.mbPerSecond,
        }),
        row(
          `${label}, ${encoding}: CPU per MB (agent vs direct-exec client)`,
          'ms/MB',
          t.cpuMsPerMb,
          baseline.cpuMsPerMb,
          lines
            ? {
                target: `≤ ${CPU_TARGET_MS[encoding]} ms`,
                met: t.cpuMsPerMb <= CPU_TARGET_MS[encoding],
              }
            : {},
        ),
      ];
    });
  });
}

/**
 * Each session beside the direct exec run on a host with the simulated browser's CPU taken. A real
 * browser is not on the agent's host; the bench's is, and on a saturated 2-core host the CPU it takes is
 * the producer's (bench/results/README.md). No target: these rows say how much of a session's gap to the
 * direct exec is that.
 */
export function besideRows(runs: WorkloadRuns[]): ResultRow[] {
  return runs.flatMap(({ workload, bytes, termgate, baseline, besideBrowser }) => {
    const { label } = workloadSpec(workload, bytes, '');
    const taken = `${Math.round(besideBrowser.burnShare * 100)}% of a core`;
    return [
      row(
        `${label}: direct exec beside a process taking the simulated browser's CPU (${taken}) vs alone`,
        'MB/s',
        besideBrowser.mbPerSecond,
        baseline.mbPerSecond,
      ),
      ...ENCODINGS.map((encoding) =>
        row(
          `${label}, ${encoding}: one session vs the direct exec beside the simulated browser's CPU`,
          'MB/s',
          termgate[encoding].mbPerSecond,
          besideBrowser.mbPerSecond,
        ),
      ),
    ];
  });
}

/**
 * The agent's CPU per MB beside the transport's alone (bench/load/transport-floor.ts): the same bytes at
 * the same MB/s, in messages of the agent's largest output size.
 */
export function floorRows(runs: WorkloadRuns[], messageBytes: number): ResultRow[] {
  return runs.flatMap(({ workload, bytes, termgate, floor }) => {
    if (!floor) return [];
    const { label } = workloadSpec(workload, bytes, '');
    const sender = `node-datachannel alone, same bytes and MB/s, ${messageBytes / 1024} KiB messages`;
    return [
      row(
        `${label}, msgpack: CPU per MB (agent vs transport floor: ${sender})`,
        'ms/MB',
        termgate.msgpack.cpuMsPerMb,
        floor.cpuMs,
      ),
    ];
  });
}

export function manyRows(
  o: Pick<ThroughputOptions, 'parallel' | 'parallelBytes' | 'encoding'>,
  tg: Run,
  bl: Run,
): ResultRow[] {
  const name = `${o.parallel} sessions × ${o.parallelBytes / 1e6} MB at once (yes lines, ${o.encoding})`;
  return [
    row(`${name}: completed`, 'count', tg.completed, bl.completed, {
      target: `${o.parallel}`,
      met: tg.completed === o.parallel && bl.completed === o.parallel,
    }),
    row(`${name}: aggregate`, 'MB/s', tg.mbPerSecond, bl.mbPerSecond, {
      target: `≥ ${MANY_TARGET}× baseline`,
      met: tg.mbPerSecond >= MANY_TARGET * bl.mbPerSecond,
    }),
    row(`${name}: CPU per MB`, 'ms/MB', tg.cpuMsPerMb, bl.cpuMsPerMb, {
      target: `≤ ${CPU_TARGET_MS[o.encoding]} ms`,
      met: tg.cpuMsPerMb <= CPU_TARGET_MS[o.encoding],
    }),
  ];
}
