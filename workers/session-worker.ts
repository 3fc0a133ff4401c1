/**
 * The Piscina worker entry. Each task is one session, running from offer to close; a worker runs many at
 * once (`concurrentTasksPerWorker`). At shutdown the main thread broadcasts `drain`: every worker closes
 * its remaining peers and cleans the addon up before it may be terminated, since a worker torn down with
 * live peers aborts the process.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import Docker from 'dockerode';
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

function dockerFor(socketPath: string): Docker {
  let docker = dockerBySocket.get(socketPath);
  if (!docker) {
    docker = new Docker({ socketPath });
    dockerBySocket.set(socketPath, docker);
  }
  return docker;
}

export default async function runSession(task: SessionTask): Promise<SessionResult> {
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

const control = new BroadcastChannel(DRAIN_CHANNEL);
control.unref();
control.onmessage = (event) => {
  const message = (event as { data: DrainMessage }).data;
  if (message.type !== 'drain') return;
  void drain().then((peersClosed) => {
    const reply: DrainMessage = { type: 'drained', threadId, peersClosed };
    control.postMessage(reply);
  });
};
