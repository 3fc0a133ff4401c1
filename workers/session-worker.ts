/**
 * The Piscina worker entry. Each task is one session, running from offer to close; a worker runs many at
 * once (`concurrentTasksPerWorker`). At shutdown the pool asks every worker to drain on its line: the
 * worker closes its remaining peers and cleans the addon up before it may be terminated, since a worker
 * torn down with live peers aborts the process.
 *
 * A bug that throws out of a worker must not take the process down with it: an uncaught exception or
 * unhandled rejection here closes every session of this worker ('worker-died'), cleans the addon up and
 * only then ends the thread. Piscina then fails the thread's tasks (the main thread marks those sessions
 * closed and tells the cloud) and starts a replacement, so the pool has its thread count back.
 */
import Docker from 'dockerode';
import { ErrorCodes } from '../common/errors.js';
import type { SessionResult, SessionTask } from '../common/protocol/worker-messages.js';
import { releaseWorkerIcePort, withWorkerIcePort } from './ice-udp-port.js';
import { cleanupAddon, getAddon } from './native-addon.js';
import { poolLine, workerLog } from './pool-line.js';
import { TurnProxy } from './TurnProxy.js';
import { WorkerMetrics } from './WorkerMetrics.js';
import { WorkerSession } from './WorkerSession.js';

/** Longer than a TURN allocation's lifetime (600 s), which libjuice refreshes before it ends. */
const TURN_PROXY_IDLE_MS = 15 * 60_000;
/** Far above the sessions a worker holds; bounds what a flood of sources could open. */
const TURN_PROXY_MAX_UPSTREAMS = 4096;
/** A site has a few TURN servers; the bound is for a cloud that names a new one per session. */
const TURN_PROXY_MAX_SERVERS = 64;

const live = new Set<WorkerSession>();
const dockerBySocket = new Map<string, Docker>();
/** This worker's row of gauges (sessions, event-loop delay); undefined with metrics off. */
const metrics = WorkerMetrics.fromWorkerData();
let dying = false;
/** Created with the first session that reaches its TURN servers through it (`--turn-proxy`). */
let turnProxy: TurnProxy | undefined;

function dockerFor(socketPath: string): Docker {
  let docker = dockerBySocket.get(socketPath);
  if (!docker) {
    docker = new Docker({ socketPath });
    dockerBySocket.set(socketPath, docker);
  }
  return docker;
}

/**
 * A dying worker must not create a peer after its addon was cleaned up; the main thread maps the
 * rejection to 'worker-died'.
 */
function refuseIfDying(): void {
  if (dying) throw new Error('the worker is ending after a fault');
}

export default async function runSession(task: SessionTask): Promise<SessionResult> {
  refuseIfDying();
  let settings = withWorkerIcePort(task.settings);
  const proxy = settings.turnProxy ? turnProxyFor(settings.bindAddress) : undefined;
  if (proxy) {
    settings = { ...settings, iceServers: await proxy.route(settings.iceServers) };
    // The worker may have started dying while the names resolved.
    refuseIfDying();
  }
  const session = new WorkerSession(
    { ...task, settings },
    getAddon(),
    dockerFor(settings.dockerSocket),
    workerLog,
    proxy,
  );
  live.add(session);
  metrics?.setSessions(live.size);
  try {
    return await session.run();
  } finally {
    live.delete(session);
    metrics?.setSessions(live.size);
  }
}

function turnProxyFor(bindAddress: string | undefined): TurnProxy {
  turnProxy ??= new TurnProxy({
    bindAddress,
    idleMs: TURN_PROXY_IDLE_MS,
    maxUpstreams: TURN_PROXY_MAX_UPSTREAMS,
    maxServers: TURN_PROXY_MAX_SERVERS,
    onFirstRepair: () =>
      workerLog.info(
        {},
        'TURN proxy: repairing relayed checks with a tie-breaker of 0 (Chromium over TURN/TCP)',
      ),
  });
  return turnProxy;
}

/** Releases what the worker holds besides its peers, once they are closed. */
function releaseWorkerResources(): void {
  cleanupAddon();
  releaseWorkerIcePort();
  turnProxy?.close();
  metrics?.close();
}

async function drain(): Promise<{ peersClosed: number }> {
  const sessions = [...live];
  await Promise.all(sessions.map((s) => s.close('shutdown')));
  releaseWorkerResources();
  return { peersClosed: sessions.length };
}

/** Ends this thread after a fault: sessions closed with a reason, addon cleaned up, then exit. */
async function die(err: unknown): Promise<void> {
  if (dying) return;
  dying = true;
  const message = err instanceof Error ? err.message : String(err);
  workerLog.error({ err: message, sessions: live.size }, 'worker failed: closing its sessions and ending');
  const error = { code: ErrorCodes.WORKER_DIED, message: `the session's worker failed: ${message}` };
  try {
    await Promise.all([...live].map((s) => s.close('worker-died', error)));
    releaseWorkerResources();
  } finally {
    // In a worker thread, process.exit() ends this thread only.
    process.exit(1);
  }
}

process.on('uncaughtException', (err) => void die(err));
process.on('unhandledRejection', (err) => void die(err));

poolLine.handle('drain', drain);
// A worker that never ran a session has not loaded this module and holds nothing: the pool asks only
// the workers that said they are here.
poolLine.notify('loaded', {});

// Test-only, off by default: a worker that can be told to crash (common/testing/fault-injection.ts).
if (process.env.TERMGATE_FAULT_INJECTION === '1') await import('../common/testing/fault-injection.js');
