/**
 * setup: open N sessions at concurrency C across M containers. offer→answer and offer→pty_connected
 * against a direct exec's create and create+start+resize, failures, sessions per second, CPU per setup.
 * Then S sessions one after another from simulated browsers that offer as the design's browser example
 * does (`a=setup:actpass`, candidates trickled, from the answer on: bench/load/offerer-race.ts): the
 * spread of offer→pty_connected, where a lost first DTLS flight shows as a 1 s retransmit, and the CPU of one setup with nothing else running.
 */
import { sampleProcess } from '../agent.js';
import {
  progressBar,
  type BenchHarness,
  type CommonOptions,
  type OpenedSession,
  type OpenOptions,
} from '../harness.js';
import type { TerminalKind } from '../load/protocol.js';
import { transportFloor, type FloorResult } from '../load/transport-floor.js';
import {
  percentileRows,
  percentiles,
  row,
  type BenchReport,
  type Percentiles,
  type ResultRow,
} from '../report.js';
import { report, setupRows, shownArgs, sleep, startClock, withHarness } from './common.js';

export interface SetupOptions extends CommonOptions {
  sessions: number;
  concurrency: number;
  containers: number;
  /** Sessions set up one after another. */
  sequential: number;
}

export const setupDefaults = { sessions: 200, concurrency: 20, containers: 10, sequential: 100 };
export const setupQuick = { sessions: 12, concurrency: 4, containers: 2, sequential: 6 };

/** Setup CPU allowed per session, as a multiple of the direct exec's create + start + resize. */
export const SETUP_CPU_TARGET = 2;
/** The sequential p99 may pass its own p50 by this much: less than one DTLS retransmit (1 s). */
export const SEQUENTIAL_SPREAD_MS = 100;
/** OpenSSL's first DTLS retransmit: a setup whose first flight was lost takes at least this long. */
export const RETRANSMIT_MS = 1000;

/**
 * No setup paid a DTLS retransmit: the p99 stays within `SEQUENTIAL_SPREAD_MS` of the p50, and the p50
 * is below one retransmit (else every setup paid it, and the spread alone would say nothing).
 */
export function noRetransmit(p: { p50: number; p99: number }): boolean {
  return p.p99 <= p.p50 + SEQUENTIAL_SPREAD_MS && p.p50 < RETRANSMIT_MS;
}

export const SEQUENTIAL_READY = 'sequential offer→pty_connected (actpass offer, trickled) vs exec ready';

function ms(sessions: OpenedSession[], key: 'answerMs' | 'readyMs' | 'connectedMs' | 'channelMs'): number[] {
  return sessions.flatMap((s) => (s.ok && s[key] !== undefined ? [s[key]] : []));
}

interface Timed {
  sessions: OpenedSession[];
  wallMs: number;
  cpuSeconds: number;
}

/** Opens `count` sessions on `kind`'s side and closes them again; CPU of the relaying process meanwhile. */
async function timedOpen(
  h: BenchHarness,
  kind: TerminalKind,
  count: number,
  concurrency: number,
  label: string,
  progress: boolean,
  options: OpenOptions = {},
): Promise<Timed> {
  const bar = progressBar(progress, label, count);
  const pid = kind === 'termgate' ? h.agent!.pid : h.baseline!.pid;
  const cpu0 = sampleProcess(pid).cpuSeconds;
  const opened = await h.open(kind, count, concurrency, bar, options);
  const cpuSeconds = sampleProcess(pid).cpuSeconds - cpu0;
  bar?.stop();
  await h.closeSessions(opened.sessions);
  return { ...opened, cpuSeconds };
}

/**
 * Where a setup's spread comes from: ICE + DTLS alone (a lost first DTLS flight shows here as 1 s) rather
 * than the exec, which runs beside them. termgate only: a direct exec has no peer.
 */
export function connectedRows(name: string, p: Percentiles): ResultRow[] {
  return [row(`${name} p50`, 'ms', p.p50, null), row(`${name} p99`, 'ms', p.p99, null)];
}

/** CPU milliseconds per session that opened, or null when none did. */
function cpuPerSetup(t: Timed): number | null {
  const ok = t.sessions.filter((s) => s.ok).length;
  return ok ? (t.cpuSeconds * 1000) / ok : null;
}

function cpuRow(metric: string, tg: Timed, bl: Timed): ResultRow {
  const t = cpuPerSetup(tg);
  const b = cpuPerSetup(bl);
  return row(metric, 'ms', t, b, {
    target: `≤ ${SETUP_CPU_TARGET}× baseline`,
    met: t !== null && b !== null && t <= SETUP_CPU_TARGET * b,
  });
}

/**
 * The agent's CPU per setup beside what its two parts cost alone: the transport (a bare node-datachannel
 * answerer, bench/load/transport-floor.ts) and, added to it, the direct exec's create + start + resize.
 */
function floorRows(tg: Timed, bl: Timed, floor: FloorResult): ResultRow[] {
  const agent = cpuPerSetup(tg);
  const direct = cpuPerSetup(bl);
  return [
    row(
      'CPU per setup, sequential (agent vs transport floor: node-datachannel alone)',
      'ms',
      agent,
      floor.cpuMs,
    ),
    row(
      'CPU per setup, sequential (agent vs transport floor + direct-exec client)',
      'ms',
      agent,
      direct === null ? null : floor.cpuMs + direct,
    ),
  ];
}

export async function runSetup(o: SetupOptions): Promise<BenchReport> {
  const started = startClock();
  const loadProcesses = Math.max(1, Math.ceil(o.sessions / 250));
  return withHarness(
    {
      workers: o.workers,
      containers: o.containers,
      maxSessions: Math.max(o.sessions, o.sequential),
      loadProcesses,
      encoding: o.encoding,
      browserSetup: o.browserSetup,
      agentArgs: o.agentArgs,
    },
    async (h) => {
      // Warm both paths once (first exec in a container, first peer in a process) so neither pays a one-off.
      const warm = [await h.openOne('termgate', 0), await h.openOne('baseline', 0)];
      await h.closeSessions(warm);
      await sleep(500);

      const tg = await timedOpen(h, 'termgate', o.sessions, o.concurrency, 'setup: termgate', o.progress);
      await sleep(1000);
      const bl = await timedOpen(h, 'baseline', o.sessions, o.concurrency, 'setup: baseline', o.progress);
      await sleep(1000);
      const seqTg = await timedOpen(
        h,
        'termgate',
        o.sequential,
        1,
        'setup: termgate, sequential',
        o.progress,
        {
          setup: 'actpass',
        },
      );
      await sleep(1000);
      const seqBl = await timedOpen(
        h,
        'baseline',
        o.sequential,
        1,
        'setup: baseline, sequential',
        o.progress,
      );

      if (o.progress) process.stderr.write('setup: transport floor, sequential\n');
      const floor = await transportFloor({ kind: 'setup', setups: o.sequential });

      const ok = (t: Timed) => t.sessions.filter((s) => s.ok).length;
      const answer = percentiles(ms(tg.sessions, 'answerMs'));
      const ready = percentiles(ms(tg.sessions, 'readyMs'));
      const create = percentiles(ms(bl.sessions, 'answerMs'));
      const execReady = percentiles(ms(bl.sessions, 'readyMs'));
      const readyRows = percentileRows('offer→pty_connected vs exec ready', ready, execReady);
      readyRows[0]!.target = '≤ baseline + 25 ms';
      readyRows[0]!.met = ready.p50 <= execReady.p50 + 25;
      const seqReady = percentiles(ms(seqTg.sessions, 'readyMs'));
      const seqExecReady = percentiles(ms(seqBl.sessions, 'readyMs'));
      const seqRows = percentileRows(SEQUENTIAL_READY, seqReady, seqExecReady);
      seqRows[2]!.target = `≤ its p50 + ${SEQUENTIAL_SPREAD_MS} ms, p50 < ${RETRANSMIT_MS} ms`;
      seqRows[2]!.met = noRetransmit(seqReady);
      const seqConnected = percentiles(ms(seqTg.sessions, 'connectedMs'));
      const failed = (a: Timed, b: Timed) => a.sessions.length + b.sessions.length - ok(a) - ok(b);
      const rows = [
        ...percentileRows('offer→answer vs exec create', answer, create),
        ...readyRows,
        row('failed setups', 'count', failed(tg, seqTg), failed(bl, seqBl), {
          target: '0',
          met: failed(tg, seqTg) === 0,
        }),
        row('sessions per second', '1/s', ok(tg) / (tg.wallMs / 1000), ok(bl) / (bl.wallMs / 1000)),
        cpuRow(`CPU per setup, ${o.concurrency} in flight (agent vs direct-exec client)`, tg, bl),
        ...seqRows,
        ...connectedRows('sequential offer→connected (ICE + DTLS)', seqConnected),
        cpuRow('CPU per setup, sequential (agent vs direct-exec client)', seqTg, seqBl),
        ...floorRows(seqTg, seqBl, floor),
        ...setupRows(h),
      ];
      const errors = [
        ...new Set(
          [tg, bl, seqTg, seqBl].flatMap((t) => t.sessions.flatMap((s) => (s.error ? [s.error] : []))),
        ),
      ].slice(0, 10);
      const timings = (t: Timed) => ({
        // Where the time goes: offer → peer connected (ICE + DTLS) → `ready` (channel open) → `pty_connected`.
        answer: percentiles(ms(t.sessions, 'answerMs')),
        connected: percentiles(ms(t.sessions, 'connectedMs')),
        channelOpen: percentiles(ms(t.sessions, 'channelMs')),
        ready: percentiles(ms(t.sessions, 'readyMs')),
        wallMs: t.wallMs,
        ok: ok(t),
        cpuSeconds: t.cpuSeconds,
      });
      return report(
        'setup',
        o,
        started,
        shownArgs(h),
        {
          sessions: o.sessions,
          concurrency: o.concurrency,
          containers: o.containers,
          sequential: o.sequential,
          loadProcesses,
        },
        rows,
        {
          termgate: timings(tg),
          baseline: { create, ready: execReady, wallMs: bl.wallMs, ok: ok(bl), cpuSeconds: bl.cpuSeconds },
          sequential: { termgate: timings(seqTg), baseline: timings(seqBl) },
          transportFloor: floor,
          errors,
        },
      );
    },
  );
}
