/**
 * browser: sequential setups from a real Chromium (the design's browser example: `a=setup:actpass`
 * offer, candidates trickled as they come, JSON), offer→pty_connected measured in the page, against
 * direct execs opened one after another. A lost first DTLS flight shows as a 1 s retransmit in the
 * spread between p50 and p99.
 *
 * Chromium gathers host candidates of every interface it sees, so the whole run (containers aside:
 * the Docker engine is reached over its unix socket) happens in a private network namespace that has
 * only `lo`: the scenario re-runs itself there (`unshare -n`, root) and reports back over IPC.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { sampleProcess } from '../agent.js';
import type { CommonOptions } from '../harness.js';
import { IpcChannel } from '../ipc.js';
import { ChromiumBrowser, type SetupTimes } from '../load/ChromiumBrowser.js';
import { percentileRows, percentiles, row, type BenchReport } from '../report.js';
import { report, setupRows, shownArgs, sleep, startClock, withHarness } from './common.js';
import { connectedRows, noRetransmit, RETRANSMIT_MS, SEQUENTIAL_SPREAD_MS } from './setup.js';

export interface BrowserOptions extends CommonOptions {
  sessions: number;
  containers: number;
}

export const browserDefaults = { sessions: 100, containers: 2 };
export const browserQuick = { sessions: 5, containers: 1 };

export const BROWSER_READY = 'Chromium offer→pty_connected (sequential) vs exec ready';

const IN_NAMESPACE_ENV = 'TERMGATE_BENCH_IN_NETNS';
const CHILD = fileURLToPath(new URL('../browser-netns.js', import.meta.url));
/** The namespaced run fails when it has reported nothing for this long. */
const STALL_MS = 120_000;
const SETUP_TIMEOUT_MS = 30_000;

export async function runBrowser(o: BrowserOptions): Promise<BenchReport> {
  return process.env[IN_NAMESPACE_ENV] === '1' ? runHere(o, () => undefined) : runInNamespace(o);
}

/** Starts this scenario again inside `unshare -n` and returns its report. */
async function runInNamespace(o: BrowserOptions): Promise<BenchReport> {
  const child = spawn(
    'unshare',
    ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$1"', process.execPath, CHILD],
    { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, [IN_NAMESPACE_ENV]: '1' } },
  );
  let log = '';
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-16 * 1024));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', (d: Buffer) => {
    keep(d);
    if (o.progress) process.stderr.write(d);
  });
  const exited = once(child, 'exit');
  const ipc = new IpcChannel(child);
  try {
    const up = new Promise<void>((resolve) => ipc.on('up', () => resolve()));
    await Promise.race([
      up,
      exited.then(() => {
        throw new Error('the namespaced bench exited at start');
      }),
    ]);
    return await ipc.request<BenchReport>('run', o, { stallMs: STALL_MS });
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\nnamespaced bench output:\n${log}`);
  } finally {
    ipc.close();
    if (child.connected) child.disconnect();
    const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
    if (child.exitCode === null && child.signalCode === null) await exited;
    clearTimeout(kill);
  }
}

/** The scenario itself, inside the namespace. `progress` is called after every setup. */
export async function runHere(o: BrowserOptions, progress: () => void): Promise<BenchReport> {
  const started = startClock();
  return withHarness(
    {
      workers: o.workers,
      containers: o.containers,
      maxSessions: o.sessions + 2,
      loadProcesses: 0,
      encoding: 'json',
      agentArgs: o.agentArgs,
    },
    async (h) => {
      const browser = await ChromiumBrowser.launch(h.cloud!);
      const opened: string[] = [];
      const samples: number[] = [];
      const connected: number[] = [];
      const errors = new Set<string>();
      let failed = 0;
      const setup = async (i: number): Promise<SetupTimes | undefined> => {
        const id = `c-${h.prefix}-${i}`;
        opened.push(id);
        h.countSetups('termgate', 1, 0);
        try {
          return await browser.setup(id, h.containers[i % h.containers.length]!, SETUP_TIMEOUT_MS);
        } catch (err) {
          failed++;
          if (errors.size < 5) errors.add(err instanceof Error ? err.message : String(err));
          return undefined;
        } finally {
          progress();
        }
      };
      let tgCpu = 0;
      try {
        // Warm both paths once (first exec in a container, first peer in the page).
        await setup(-1);
        const warm = await h.openOne('baseline', 0);
        await h.closeSessions([warm]);
        failed = 0;
        await sleep(500);
        const cpu0 = h.agent!.sample().cpuSeconds;
        for (let i = 0; i < o.sessions; i++) {
          const times = await setup(i);
          if (times === undefined) continue;
          samples.push(times.readyMs);
          connected.push(times.connectedMs);
        }
        tgCpu = h.agent!.sample().cpuSeconds - cpu0;
      } finally {
        await Promise.all(opened.map((id) => browser.close(id)));
        await browser.shutdown();
      }
      await sleep(1000);
      const blCpu0 = sampleProcess(h.baseline!.pid).cpuSeconds;
      const bl = await h.open('baseline', o.sessions, 1);
      const blCpu = sampleProcess(h.baseline!.pid).cpuSeconds - blCpu0;
      await h.closeSessions(bl.sessions);
      const blOk = bl.sessions.filter((s) => s.ok);
      const t = percentiles(samples);
      const b = percentiles(blOk.flatMap((s) => (s.readyMs === undefined ? [] : [s.readyMs])));
      const readyRows = percentileRows(BROWSER_READY, t, b);
      readyRows[2]!.target = `≤ its p50 + ${SEQUENTIAL_SPREAD_MS} ms, p50 < ${RETRANSMIT_MS} ms`;
      readyRows[2]!.met = noRetransmit(t);
      const rows = [
        ...readyRows,
        ...connectedRows('Chromium offer→connected (ICE + DTLS)', percentiles(connected)),
        row('failed setups', 'count', failed, o.sessions - blOk.length, { target: '0', met: failed === 0 }),
        row(
          'CPU per setup, sequential (agent vs direct-exec client)',
          'ms',
          samples.length ? (tgCpu * 1000) / samples.length : null,
          blOk.length ? (blCpu * 1000) / blOk.length : null,
        ),
        ...setupRows(h),
      ];
      return report(
        'browser',
        o,
        started,
        shownArgs(h),
        { sessions: o.sessions, containers: o.containers, offerer: 'Chromium, actpass, trickled, JSON' },
        rows,
        { termgate: t, baseline: b, errors: [...errors] },
      );
    },
  );
}
