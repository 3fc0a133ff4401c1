/**
 * Results: percentiles from HDR histograms, one row per figure with termgate, the baseline and their
 * ratio, a markdown table for stdout and a JSON file under bench/results/.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';

export const DEFAULT_RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Percentiles of millisecond samples, through an HDR histogram at microsecond resolution. */
export function percentiles(samplesMs: readonly number[]): Percentiles {
  const h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  for (const ms of samplesMs) h.recordValue(Math.max(1, Math.round(ms * 1000)));
  const max = h.totalCount === 0 ? 0 : h.maxValue / 1000;
  // A percentile is its bucket's highest equivalent value, which can pass the exact max by < 0.1 %.
  const at = (p: number) => (h.totalCount === 0 ? 0 : Math.min(h.getValueAtPercentile(p) / 1000, max));
  const result = {
    count: h.totalCount,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max,
    mean: h.totalCount === 0 ? 0 : h.mean / 1000,
  };
  h.destroy();
  return result;
}

export interface ResultRow {
  metric: string;
  unit: string;
  termgate: number | null;
  baseline: number | null;
  /** termgate / baseline; null when either is missing or the baseline is 0. */
  ratio: number | null;
  /** The issue's target for this figure, in words. */
  target?: string;
  met?: boolean | null;
  note?: string;
}

export function row(
  metric: string,
  unit: string,
  termgate: number | null,
  baseline: number | null,
  extra: Pick<ResultRow, 'target' | 'met' | 'note'> = {},
): ResultRow {
  const ratio = termgate !== null && baseline !== null && baseline !== 0 ? termgate / baseline : null;
  return { metric, unit, termgate, baseline, ratio, ...extra };
}

/** Rows for p50/p90/p99/max of a latency measured on both sides. */
export function percentileRows(name: string, termgate: Percentiles, baseline: Percentiles): ResultRow[] {
  return (['p50', 'p90', 'p99', 'max'] as const).map((p) =>
    row(`${name} ${p}`, 'ms', termgate[p], baseline[p]),
  );
}

export interface BenchReport {
  scenario: string;
  /** ISO date of the start of the run. */
  date: string;
  quick: boolean;
  durationSeconds: number;
  machine: {
    cpus: number;
    cpuModel: string;
    memoryBytes: number;
    node: string;
    kernel: string;
    /** 1, 5 and 15 minute load averages when the report was made: other work on the host skews results. */
    loadAverage: number[];
    /**
     * The CPUs the bench may run on (`taskset`), inherited by everything it starts: the agent, the load
     * processes, the direct execs' clients. The Docker engine and the containers keep their own.
     */
    cpusAllowed: string;
  };
  agent: { workers: number; args: string[] };
  options: Record<string, unknown>;
  rows: ResultRow[];
  /** Raw figures behind the rows (per-step samples, errors). */
  details: Record<string, unknown>;
}

export function machine(): BenchReport['machine'] {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    node: process.version,
    kernel: os.release(),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    cpusAllowed: cpusAllowed(),
  };
}

function cpusAllowed(): string {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `; on CPUs 1` in a table's heading when the bench ran pinned to some of the machine's CPUs. */
function pinning(m: BenchReport['machine']): string {
  const all = m.cpus === 1 ? '0' : `0-${m.cpus - 1}`;
  return m.cpusAllowed === all ? '' : `; bench and agent on CPUs ${m.cpusAllowed}`;
}

function fmt(value: number | null | boolean | undefined): string {
  if (value === null || value === undefined) return '–';
  if (typeof value === 'boolean') return value ? 'yes' : '**no**';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(0);
  if (abs >= 100) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

/** A table cell: a `|` in a metric's name (a shell pipeline) would end the cell. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

/** The rows as a markdown table. */
export function markdown(report: BenchReport): string {
  const lines = [
    `### ${report.scenario} — ${report.date} (${report.agent.workers} worker${report.agent.workers === 1 ? '' : 's'}${report.quick ? ', quick' : ''}; load average ${report.machine.loadAverage.join(' ')}${pinning(report.machine)})`,
    '',
    '| metric | unit | termgate | baseline | ratio | target | met |',
    '|---|---|---:|---:|---:|---|---|',
    ...report.rows.map(
      (r) =>
        `| ${cell(r.metric)} | ${r.unit} | ${fmt(r.termgate)} | ${fmt(r.baseline)} | ${r.ratio === null ? '–' : `${fmt(r.ratio)}×`} | ${cell(r.target ?? '')} | ${r.met === undefined ? '' : fmt(r.met)} |`,
    ),
  ];
  const notes = report.rows.filter((r) => r.note).map((r) => `- ${r.metric}: ${r.note}`);
  if (notes.length > 0) lines.push('', ...notes);
  return lines.join('\n');
}

/** Writes `<dir>/<scenario>-<date>.json` and returns its path. */
export function writeJson(report: BenchReport, dir = DEFAULT_RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${report.scenario}-${report.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
