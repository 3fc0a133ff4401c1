/**
 * Test-only fault injection, kept out of the production protocol: loaded only when the agent runs with
 * `TERMGATE_FAULT_INJECTION=1` (by `termgate agent` on the main thread, by each worker when it loads its
 * session module). A test that started the agent with an IPC channel then sends it
 * `{type:'crash-worker'}`: one worker thread throws an uncaught error, and once that thread has left the
 * pool the agent replies `{type:'worker-crashed', threadId}` (or `{type:'crash-failed', reason}`), so
 * tests can watch a worker die and the pool recover (test/hardening-faults.test.ts).
 *
 * Its messages have channels of their own (the IPC channel, a BroadcastChannel to the workers); nothing
 * else listens there.
 */
import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';
import type { Logger } from '../logger.js';

const FAULT_CHANNEL = 'termgate:fault-injection';
/** How long the crashed thread may take to leave the pool before the reply says it did not. */
const CRASH_TIMEOUT_MS = 30_000;

/** Test → agent, over the IPC channel. */
export interface FaultRequest {
  type: 'crash-worker';
}

/** Agent → test, over the IPC channel: the answer to one request. */
export type FaultReply =
  { type: 'worker-crashed'; threadId: number } | { type: 'crash-failed'; reason: string };

/** Main thread → the worker thread `threadId`: throw an uncaught error. */
interface CrashRequest {
  type: 'crash';
  threadId: number;
}

/** The pool's threads, as the agent's WorkerPool shows them. */
interface ThreadList {
  readonly threads: ReadonlyArray<{ readonly threadId: number }>;
}

/** Main thread: on a `crash-worker` request, crash the pool's first worker thread and reply. */
export function installFaultInjection(pool: ThreadList, logger: Logger): void {
  logger.warn('fault injection enabled (TERMGATE_FAULT_INJECTION=1): for tests only');
  if (!process.send) {
    logger.warn('fault injection has no IPC channel to take requests on: nothing can be injected');
    return;
  }
  process.on('message', (request: unknown) => {
    if ((request as FaultRequest | null)?.type !== 'crash-worker') return;
    void crashWorker(pool).then((reply) => {
      logger.warn(reply, 'fault injected: a worker thread crashed on request');
      process.send?.(reply);
    });
  });
}

async function crashWorker(pool: ThreadList): Promise<FaultReply> {
  const target = pool.threads[0]?.threadId;
  if (target === undefined) return { type: 'crash-failed', reason: 'the pool has no thread' };
  const channel = new BroadcastChannel(FAULT_CHANNEL);
  channel.postMessage({ type: 'crash', threadId: target } satisfies CrashRequest);
  channel.close();
  const deadline = Date.now() + CRASH_TIMEOUT_MS;
  while (pool.threads.some((t) => t.threadId === target)) {
    if (Date.now() > deadline)
      return { type: 'crash-failed', reason: `thread ${target} is still in the pool` };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { type: 'worker-crashed', threadId: target };
}

/** Worker thread: obey a crash request addressed to this thread. */
function obeyCrashRequests(): void {
  const channel = new BroadcastChannel(FAULT_CHANNEL);
  channel.unref();
  channel.onmessage = (event) => {
    const request = (event as { data: CrashRequest }).data;
    if (request.type !== 'crash' || request.threadId !== threadId) return;
    setImmediate(() => {
      throw new Error('fault injected (TERMGATE_FAULT_INJECTION)');
    });
  };
}

if (!isMainThread) obeyCrashRequests();
