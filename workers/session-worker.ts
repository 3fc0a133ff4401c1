/**
 * The Piscina worker entry. Each task is one session, running from offer to close; a worker runs many at
 * once (`concurrentTasksPerWorker`). At shutdown the main thread broadcasts `drain`: every worker closes
 * its remaining peers and cleans the addon up before it may be terminated, since a worker torn down with
 * live peers aborts the process.
 *
 * A bug that throws out of a worker must not take the process down with it: an uncaught exception or
 * unhandled rejection here closes every session of this worker ('worker-died'), cleans the addon up and
 * only then ends the thread. Piscina then fails the thread's tasks (the main thread marks those sessions
 * closed and tells the cloud) and starts a replacement, so the pool has its thread count back.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import Docker from 'dockerode';
import { ErrorCodes } from '../src/errors.js';
import {
  DRAIN_CHANNEL,
  type DrainMessage,
  type SessionResult,
  type SessionTask,
} from '../src/protocol/worker-messages.js';
import { cleanupAddon, getAddon } from './native-addon.js';
import { WorkerMetrics } from './WorkerMetrics.js';
import { WorkerSession } from './WorkerSession.js';

const live = new Set<WorkerSession>();
const dockerBySocket = new Map<string, Docker>();
/** This worker's row of gauges (sessions, event-loop delay); undefined with metrics off. */
const metrics = WorkerMetrics.fromWorkerData();
/** Test-only: obey `crash` broadcasts. Read once at start; off unless TERMGATE_FAULT_INJECTION=1. */
const FAULT_INJECTION = process.env.TERMGATE_FAULT_INJECTION === '1';
let dying = false;

function dockerFor(socketPath: string): Docker {
  let docker = dockerBySocket.get(socketPath);
  if (!docker) {
    docker = new Docker({ socketPath });
    dockerBySocket.set(socketPath, docker);
  }
  return docker;
}

export default async function runSession(task: SessionTask): Promise<SessionResult> {
  // A dying worker must not create a peer after its addon was cleaned up; the main thread maps the
  // rejection to 'worker-died'.
  if (dying) throw new Error('the worker is ending after a fault');
  const session = new WorkerSession(task, getAddon(), dockerFor(task.settings.dockerSocket));
  live.add(session);
  metrics?.setSessions(live.size);
  try {
    return await session.run();
  } finally {
    live.delete(session);
    metrics?.setSessions(live.size);
  }
}

async function drain(): Promise<number> {
  const sessions = [...live];
  await Promise.all(sessions.map((s) => s.close('shutdown')));
  cleanupAddon();
  metrics?.close();
  return sessions.length;
}

/** Ends this thread after a fault: sessions closed with a reason, addon cleaned up, then exit. */
async function die(err: unknown): Promise<void> {
  if (dying) return;
  dying = true;
  const message = err instanceof Error ? err.message : String(err);
  const error = { code: ErrorCodes.WORKER_DIED, message: `the session's worker failed: ${message}` };
  try {
    await Promise.all([...live].map((s) => s.close('worker-died', error)));
    cleanupAddon();
    metrics?.close();
  } finally {
    // In a worker thread, process.exit() ends this thread only.
    process.exit(1);
  }
}

process.on('uncaughtException', (err) => void die(err));
process.on('unhandledRejection', (err) => void die(err));

const control = new BroadcastChannel(DRAIN_CHANNEL);
control.unref();
control.onmessage = (event) => {
  const message = (event as { data: DrainMessage }).data;
  if (message.type === 'crash') {
    if (FAULT_INJECTION && message.threadId === threadId) {
      setImmediate(() => {
        throw new Error('fault injected (TERMGATE_FAULT_INJECTION)');
      });
    }
    return;
  }
  if (message.type !== 'drain') return;
  void drain().then((peersClosed) => {
    const reply: DrainMessage = { type: 'drained', threadId, peersClosed };
    control.postMessage(reply);
  });
};
