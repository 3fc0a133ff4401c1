/**
 * A load process: hosts many simulated browsers (node-datachannel peers) or many direct execs (the
 * baseline), in its own process so that its CPU is never counted as the agent's. The bench parent drives
 * it over IPC (`IpcChannel`); signaling goes through the parent, which plays the cloud.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Docker from 'dockerode';
import nodeDataChannel from 'node-datachannel';
import type { Encoding } from '../../common/protocol/terminal-messages.js';
import { DirectExec } from '../baseline.js';
import { IpcChannel, reportProgress } from '../ipc.js';
import { BenchPeer, SetupLost, type BrowserSetup, type Signaler } from './BenchPeer.js';
import { nowMs, outputActivity, type Terminal } from './Terminal.js';
import type {
  BulkParams,
  BulkResult,
  InterruptParams,
  KeystrokesParams,
  LoadStats,
  OpenParams,
  OpenResult,
  RemoteCandidate,
  SoakParams,
  SoakResult,
} from './protocol.js';

const ipc = new IpcChannel(process);
const docker = new Docker({ socketPath: process.env.TERMGATE_BENCH_DOCKER_SOCKET ?? '/var/run/docker.sock' });
const encoding = (process.env.TERMGATE_BENCH_ENCODING ?? 'msgpack') as Encoding;
const browserSetup = (process.env.TERMGATE_BENCH_BROWSER_SETUP ?? 'actpass') as BrowserSetup;
const terminals = new Map<string, Terminal>();
const peers = new Map<string, BenchPeer>();
const LOOP_RESOLUTION_MS = 10;
const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
const late = (ns: number) => (loop.count === 0 ? 0 : Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS));
loop.enable();

// While a long request runs (bulk, keystrokes, soak), the parent hears the bytes received so far.
reportProgress(ipc, () => outputActivity.bytes);

const signaler: Signaler = {
  offer: (sessionId, device, sdp) => ipc.request<string>('offer', { sessionId, device, sdp }, 60_000),
  candidate: (sessionId, candidate, mid) => ipc.notify('candidate', { sessionId, candidate, mid }),
};

function terminal(id: string): Terminal {
  const t = terminals.get(id);
  if (!t) throw new Error(`no terminal ${id} in this load process`);
  return t;
}

async function open(params: OpenParams): Promise<OpenResult> {
  const startedAt = nowMs();
  try {
    if (params.kind === 'baseline') {
      const { terminal: t, timings } = await DirectExec.open(docker, params.device);
      terminals.set(params.id, t);
      return { ok: true, startedAt, createdAt: timings.createdAt, readyAt: timings.readyAt };
    }
    let peer: BenchPeer | undefined;
    let retriedAs: string | undefined;
    // A setup the simulated browser lost before the agent spoke is tried again under a new session id,
    // at most twice; a retried setup is counted and reported. A refusal, or a failure after the agent
    // spoke, is not retried.
    for (let attempt = 0; !peer; attempt++) {
      const sessionId = attempt === 0 ? params.id : `${params.id}-retry${attempt}`;
      try {
        peer = await openPeer(params.id, sessionId, params);
      } catch (err) {
        if (!(err instanceof SetupLost) || attempt === MAX_SETUP_RETRIES) throw err;
        retriedAs = `${params.id}-retry${attempt + 1}`;
      }
    }
    return {
      ok: true,
      startedAt,
      readyAt: peer.timings.ptyConnectedAt!,
      connectedAt: peer.timings.connectedAt,
      channelAt: peer.timings.readyAt,
      retriedAs,
    };
  } catch (err) {
    return { ok: false, startedAt, error: err instanceof Error ? err.message : String(err) };
  }
}

const MAX_SETUP_RETRIES = 2;

/** One try at a termgate session; the terminal is kept under `id`, the peer under its session id. */
async function openPeer(id: string, sessionId: string, params: OpenParams): Promise<BenchPeer> {
  const peer = new BenchPeer(sessionId, params.encoding ?? encoding, signaler, params.setup ?? browserSetup);
  peers.set(sessionId, peer);
  terminals.set(id, peer);
  try {
    await peer.open(params.device, params.timeoutMs);
    return peer;
  } catch (err) {
    await closeTerminal(id);
    throw err;
  }
}

async function closeTerminal(id: string): Promise<void> {
  const t = terminals.get(id);
  terminals.delete(id);
  if (t instanceof BenchPeer) peers.delete(t.sessionId);
  await t?.close();
}

async function closeAll(): Promise<number> {
  const ids = [...terminals.keys()];
  await Promise.all(ids.map((id) => closeTerminal(id)));
  return ids.length;
}

function stats(): LoadStats {
  const status = readFileSync('/proc/self/status', 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const cpu = process.cpuUsage();
  return {
    rssBytes: rssKb * 1024,
    cpuMs: (cpu.user + cpu.system) / 1000,
    fds: readdirSync('/proc/self/fd').length,
    // As the agent reports it: the monitor's resolution subtracted, so an idle loop reads 0.
    eventLoopDelayMs: {
      p50: late(loop.percentile(50)),
      p99: late(loop.percentile(99)),
      max: late(loop.max),
    },
  };
}

/** Sessions opened, used for one command, and closed, by `concurrency` loops until the deadline. */
async function soak(params: SoakParams): Promise<SoakResult> {
  const deadline = Date.now() + params.durationMs;
  const cycleMs: number[] = [];
  let failures = 0;
  let retries = 0;
  let seq = 0;
  const errors = new Set<string>();
  const worker = async (w: number) => {
    while (Date.now() < deadline) {
      const id = `${params.prefix}-${w}-${seq++}`;
      const device = params.devices[(w + seq) % params.devices.length]!;
      const start = nowMs();
      const result = await open({ id, kind: params.kind, device, timeoutMs: 20_000 });
      try {
        if (!result.ok) throw new Error(result.error);
        if (result.retriedAs) retries++;
        await terminal(id).run('echo soak', 'SOAKED', 20_000);
        cycleMs.push(nowMs() - start);
      } catch (err) {
        failures++;
        if (errors.size < 5) errors.add(err instanceof Error ? err.message : String(err));
      } finally {
        await closeTerminal(id);
      }
    }
  };
  await Promise.all(Array.from({ length: params.concurrency }, (_, w) => worker(w)));
  return { cycles: cycleMs.length, failures, retries, cycleMs, errors: [...errors] };
}

ipc.handle<OpenParams, OpenResult>('open', open);
ipc.on<RemoteCandidate>('remote-candidate', (c) =>
  peers.get(c.sessionId)?.addRemoteCandidate(c.candidate, c.mid),
);
ipc.handle<{ id: string }, null>('echo-mode', async ({ id }) => {
  await terminal(id).enterEchoMode();
  return null;
});
ipc.handle<KeystrokesParams, number[]>('keystrokes', async ({ id, count }) => {
  const t = terminal(id);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) samples.push(await t.keystroke());
  return samples;
});
ipc.handle<InterruptParams, number[]>('interrupts', async ({ id, count, floodBytes }) => {
  const t = terminal(id);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) samples.push(await t.interrupt(floodBytes));
  return samples;
});
ipc.handle<BulkParams, BulkResult>('bulk', async ({ id, bytes, workload }) => {
  const before = process.cpuUsage();
  const result = await terminal(id).bulk(bytes, workload);
  const cpu = process.cpuUsage(before);
  return { ...result, cpuMs: (cpu.user + cpu.system) / 1000 };
});
ipc.handle<{ id: string; command: string; marker: string }, null>('run', async ({ id, command, marker }) => {
  await terminal(id).run(command, marker);
  return null;
});
ipc.handle<{ id: string }, null>('close', async ({ id }) => {
  await closeTerminal(id);
  return null;
});
ipc.handle('close-all', closeAll);
ipc.handle('stats', stats);
ipc.handle('reset-event-loop', () => {
  loop.reset();
  return null;
});
ipc.handle('soak', soak);
ipc.handle('shutdown', async () => {
  await closeAll();
  // Peers closed above; the addon's threads must end before the process does.
  nodeDataChannel.cleanup();
  setImmediate(() => {
    ipc.close();
    process.disconnect?.();
  });
  return null;
});
ipc.notify('up', { pid: process.pid });
