/**
 * This worker's line to the pool (see worker-messages.ts): a Channel over the two worker
 * BroadcastChannels, addressed by this thread's id, and a logger that writes through the main thread's:
 * a worker has no stderr of its own worth reading, and the main thread binds the worker's id to each line.
 */
import { BroadcastChannel, threadId, workerData } from 'node:worker_threads';
import { Channel, type ChannelEndpoint } from '../common/Channel.js';
import {
  POOL_TO_WORKERS,
  WORKERS_TO_POOL,
  type LineEnvelope,
  type LogLevel,
  type PoolToWorker,
  type WorkerToPool,
} from '../common/protocol/worker-messages.js';

/** A logger of the shape the worker's code uses (pino's, narrowed): fields first, then the message. */
export interface WorkerLogger {
  error(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  debug(fields: Record<string, unknown>, msg: string): void;
  child(bindings: Record<string, unknown>): WorkerLogger;
}

const LEVELS: Record<LogLevel | 'silent', number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

function lineEndpoint(): ChannelEndpoint {
  const out = new BroadcastChannel(WORKERS_TO_POOL);
  const inbound = new BroadcastChannel(POOL_TO_WORKERS);
  // The line must not keep the thread alive: Piscina ends it.
  out.unref();
  inbound.unref();
  return {
    post: (message) => out.postMessage({ thread: threadId, message } satisfies LineEnvelope),
    listen(receive) {
      inbound.onmessage = (event) => {
        const envelope = (event as { data: LineEnvelope }).data;
        if (envelope.thread === threadId) receive(envelope.message);
      };
      return () => {
        inbound.close();
        out.close();
      };
    },
  };
}

/** The line, opened once per thread when the session module loads. */
export const poolLine = new Channel<WorkerToPool, PoolToWorker>(lineEndpoint());

/** Lines below the level the agent runs at are not sent at all. */
const threshold = LEVELS[(workerData as { logLevel?: LogLevel } | null)?.logLevel ?? 'info'];

function logger(bindings: Record<string, unknown>): WorkerLogger {
  const write = (level: LogLevel) => (fields: Record<string, unknown>, msg: string) => {
    if (LEVELS[level] < threshold) return;
    poolLine.notify('log', { level, msg, fields: { ...bindings, ...fields } });
  };
  return {
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    child: (more) => logger({ ...bindings, ...more }),
  };
}

/** This worker's logger; the main thread adds `worker`. */
export const workerLog = logger({});
