/**
 * setup: open N sessions at concurrency C across M containers. offer→answer and offer→pty_connected
 * against a direct exec's create and create+start+resize, failures, sessions per second, CPU per setup.
 */
import { sampleProcess } from '../agent.js';
import { progressBar, type CommonOptions, type OpenedSession } from '../harness.js';
import { percentileRows, percentiles, row, type BenchReport } from '../report.js';
import { report, RETRIED_ROW, shownArgs, sleep, startClock, withHarness } from './common.js';

export interface SetupOptions extends CommonOptions {
  sessions: number;
  concurrency: number;
  containers: number;
}

export const setupDefaults = { sessions: 200, concurrency: 20, containers: 10 };
export const setupQuick = { sessions: 12, concurrency: 4, containers: 2 };

function ms(sessions: OpenedSession[], key: 'answerMs' | 'readyMs' | 'connectedMs' | 'channelMs'): number[] {
  return sessions.flatMap((s) => (s.ok && s[key] !== undefined ? [s[key]] : []));
}

export async function runSetup(o: SetupOptions): Promise<BenchReport> {
  const started = startClock();
  const loadProcesses = Math.max(1, Math.ceil(o.sessions / 250));
  return withHarness(
    {
      workers: o.workers,
      containers: o.containers,
      maxSessions: o.sessions,
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

      let bar = progressBar(o.progress, 'setup: termgate', o.sessions);
      const cpu0 = h.agent!.sample().cpuSeconds;
      const tg = await h.open('termgate', o.sessions, o.concurrency, bar);
      const agentCpu = h.agent!.sample().cpuSeconds - cpu0;
      bar?.stop();
      await h.closeSessions(tg.sessions);
      await sleep(1000);

      bar = progressBar(o.progress, 'setup: baseline', o.sessions);
      const bCpu0 = sampleProcess(h.baseline!.pid).cpuSeconds;
      const bl = await h.open('baseline', o.sessions, o.concurrency, bar);
      const baselineCpu = sampleProcess(h.baseline!.pid).cpuSeconds - bCpu0;
      bar?.stop();
      await h.closeSessions(bl.sessions);

      const tgOk = tg.sessions.filter((s) => s.ok).length;
      const blOk = bl.sessions.filter((s) => s.ok).length;
      const answer = percentiles(ms(tg.sessions, 'answerMs'));
      const ready = percentiles(ms(tg.sessions, 'readyMs'));
      const create = percentiles(ms(bl.sessions, 'answerMs'));
      const execReady = percentiles(ms(bl.sessions, 'readyMs'));
      const readyRows = percentileRows('offer→pty_connected vs exec ready', ready, execReady);
      readyRows[0]!.target = '≤ baseline + 25 ms';
      readyRows[0]!.met = ready.p50 <= execReady.p50 + 25;
      const rows = [
        ...percentileRows('offer→answer vs exec create', answer, create),
        ...readyRows,
        row('failed setups', 'count', o.sessions - tgOk, o.sessions - blOk, {
          target: '0',
          met: tgOk === o.sessions,
        }),
        row(RETRIED_ROW, 'count', tg.sessions.filter((s) => s.retried).length, 0),
        row('sessions per second', '1/s', tgOk / (tg.wallMs / 1000), blOk / (bl.wallMs / 1000)),
        row(
          'CPU per setup (agent vs direct-exec client)',
          'ms',
          tgOk ? (agentCpu * 1000) / tgOk : null,
          blOk ? (baselineCpu * 1000) / blOk : null,
        ),
      ];
      const errors = [
        ...new Set([...tg.sessions, ...bl.sessions].flatMap((s) => (s.error ? [s.error] : []))),
      ].slice(0, 10);
      return report(
        'setup',
        o,
        started,
        shownArgs(h),
        { sessions: o.sessions, concurrency: o.concurrency, containers: o.containers, loadProcesses },
        rows,
        {
          termgate: {
            answer,
            // Where the time goes: offer → peer connected (ICE + DTLS) → `ready` (channel open) → `pty_connected`.
            connected: percentiles(ms(tg.sessions, 'connectedMs')),
            channelOpen: percentiles(ms(tg.sessions, 'channelMs')),
            ready,
            wallMs: tg.wallMs,
            ok: tgOk,
            agentCpuSeconds: agentCpu,
          },
          baseline: { create, ready: execReady, wallMs: bl.wallMs, ok: blOk, clientCpuSeconds: baselineCpu },
          errors,
        },
      );
    },
  );
}
