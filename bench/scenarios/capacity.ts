/**
 * capacity: ramp open sessions through steps (100, 250, 500, 1000) and at each step read the agent's RSS
 * beyond its base, CPU per session (to set up, and while idle), and its main thread's event-loop delay.
 * The baseline holds the same number of direct execs in one client process and reports the same figures
 * for that process.
 */
import type { EventLoopDelay } from '../agent.js';
import { sampleProcess } from '../agent.js';
import { progressBar, type BenchHarness, type CommonOptions, type OpenedSession } from '../harness.js';
import type { LoadStats, TerminalKind } from '../load/protocol.js';
import { row, type BenchReport, type ResultRow } from '../report.js';
import { report, RETRIED_ROW, setupRows, shownArgs, sleep, startClock, withHarness } from './common.js';

export interface CapacityOptions extends CommonOptions {
  steps: number[];
  containers: number;
  concurrency: number;
  /** Seconds of idle CPU sampling at each step. */
  windowSeconds: number;
}

export const capacityDefaults = {
  steps: [100, 250, 500, 1000],
  containers: 20,
  concurrency: 20,
  windowSeconds: 7,
};
export const capacityQuick = { steps: [4, 8], containers: 2, concurrency: 4, windowSeconds: 1 };

const MB = 1024 * 1024;

export interface StepResult {
  target: number;
  open: number;
  failed: number;
  retried: number;
  rssBytes: number;
  rssPerSessionBytes: number;
  setupCpuMsPerSession: number;
  /** CPU while the sessions sit idle, in ms of CPU per second, per session. */
  idleCpuMsPerSecondPerSession: number;
  fds: number;
  threads: number;
  eventLoop: EventLoopDelay | null;
}

async function ramp(
  h: BenchHarness,
  kind: TerminalKind,
  o: CapacityOptions,
): Promise<{ base: number; steps: StepResult[]; errors: string[] }> {
  const pid = kind === 'termgate' ? h.agent!.pid : h.baseline!.pid;
  await sleep(1000);
  const base = sampleProcess(pid).rssBytes;
  const opened: OpenedSession[] = [];
  const steps: StepResult[] = [];
  const errors = new Set<string>();
  let failedTotal = 0;
  let retriedTotal = 0;
  const bar = progressBar(o.progress, `capacity: ${kind}`, o.steps[o.steps.length - 1] ?? 0);
  try {
    for (const target of o.steps) {
      const okNow = opened.filter((s) => s.ok).length;
      const cpu0 = sampleProcess(pid).cpuSeconds;
      const { sessions } = await h.open(kind, Math.max(0, target - okNow), o.concurrency, bar);
      const setupCpu = sampleProcess(pid).cpuSeconds - cpu0;
      opened.push(...sessions);
      for (const s of sessions) if (!s.ok && errors.size < 10) errors.add(s.error ?? 'unknown');
      failedTotal += sessions.filter((s) => !s.ok).length;
      retriedTotal += sessions.filter((s) => s.retried).length;
      const newOk = sessions.filter((s) => s.ok).length;
      await sleep(3000);
      // Event-loop delay over the idle window: the agent reports windows of its own (5 s by default), so
      // the window here is at least that long; the baseline process resets its monitor at the start.
      if (kind === 'baseline') await h.baseline!.request('reset-event-loop');
      const idle0 = sampleProcess(pid);
      await sleep(o.windowSeconds * 1000);
      const idle1 = sampleProcess(pid);
      let eventLoop: EventLoopDelay | null;
      if (kind === 'termgate') eventLoop = await h.agent!.eventLoopDelay();
      else {
        const stats = await h.baseline!.request<LoadStats>('stats');
        eventLoop = {
          p50Ms: stats.eventLoopDelayMs.p50,
          p99Ms: stats.eventLoopDelayMs.p99,
          maxMs: stats.eventLoopDelayMs.max,
          workersP99Ms: null,
          source: 'monitorEventLoopDelay',
        };
      }
      const open = opened.filter((s) => s.ok).length;
      const seconds = (idle1.atMs - idle0.atMs) / 1000;
      steps.push({
        target,
        open,
        failed: failedTotal,
        retried: retriedTotal,
        rssBytes: idle1.rssBytes,
        rssPerSessionBytes: open ? (idle1.rssBytes - base) / open : 0,
        setupCpuMsPerSession: newOk ? (setupCpu * 1000) / newOk : 0,
        idleCpuMsPerSecondPerSession: open
          ? ((idle1.cpuSeconds - idle0.cpuSeconds) * 1000) / seconds / open
          : 0,
        fds: idle1.fds,
        threads: idle1.threads,
        eventLoop,
      });
    }
  } finally {
    bar?.stop();
    await h.closeSessions(opened);
  }
  return { base, steps, errors: [...errors] };
}

export async function runCapacity(o: CapacityOptions): Promise<BenchReport> {
  const started = startClock();
  const max = Math.max(...o.steps);
  const loadProcesses = Math.max(1, Math.ceil(max / 250));
  return withHarness(
    {
      workers: o.workers,
      containers: o.containers,
      maxSessions: max,
      loadProcesses,
      encoding: o.encoding,
      browserSetup: o.browserSetup,
      agentArgs: o.agentArgs,
    },
    async (h) => {
      const tg = await ramp(h, 'termgate', o);
      await sleep(2000);
      const bl = await ramp(h, 'baseline', o);
      const rows: ResultRow[] = [];
      tg.steps.forEach((t, i) => {
        const b = bl.steps[i]!;
        const last = i === tg.steps.length - 1;
        const n = t.target;
        rows.push(
          row(
            `${n}: sessions open`,
            'count',
            t.open,
            b.open,
            last ? { target: `${n}, no failed setup`, met: t.open === n && t.failed === 0 } : {},
          ),
          row(`${n}: failed setups (cumulative)`, 'count', t.failed, b.failed),
          row(`${n}: ${RETRIED_ROW} (cumulative)`, 'count', t.retried, b.retried),
          row(`${n}: RSS`, 'MB', t.rssBytes / MB, b.rssBytes / MB),
          row(
            `${n}: RSS per session beyond base`,
            'MB',
            t.rssPerSessionBytes / MB,
            b.rssPerSessionBytes / MB,
            last ? { target: '≤ 1 MB', met: t.rssPerSessionBytes <= MB } : {},
          ),
          row(`${n}: setup CPU per session`, 'ms', t.setupCpuMsPerSession, b.setupCpuMsPerSession),
          row(
            `${n}: idle CPU per session`,
            'ms/s',
            t.idleCpuMsPerSecondPerSession,
            b.idleCpuMsPerSecondPerSession,
          ),
          row(
            `${n}: main event-loop delay p99`,
            'ms',
            t.eventLoop?.p99Ms ?? null,
            b.eventLoop?.p99Ms ?? null,
            t.eventLoop ? {} : { note: 'the agent exposes no event-loop delay metric at /metrics' },
          ),
          row(`${n}: worst worker event-loop delay p99`, 'ms', t.eventLoop?.workersP99Ms ?? null, null, {
            note: 'no baseline: a direct exec client has no worker threads',
          }),
          row(`${n}: open fds`, 'count', t.fds, b.fds),
        );
      });
      rows.push(...setupRows(h));
      return report(
        'capacity',
        o,
        started,
        shownArgs(h),
        {
          steps: o.steps,
          containers: o.containers,
          concurrency: o.concurrency,
          windowSeconds: o.windowSeconds,
          loadProcesses,
        },
        rows,
        {
          termgate: tg,
          baseline: bl,
        },
      );
    },
  );
}
