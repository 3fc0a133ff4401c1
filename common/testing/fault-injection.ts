/**
 * Test-only fault injection, kept out of the production protocol: loaded only when the agent runs with
 * `TERMGATE_FAULT_INJECTION=1` (by `termgate agent` on the main thread, by each worker when it loads its
 * session module). SIGUSR2 to the agent then makes one worker thread throw an uncaught error, so tests
 * can watch a worker die and the pool recover (test/hardening-faults.test.ts).
 *
 * Its messages have a channel of their own; nothing else listens there.
 */
import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';
import type { Logger } from '../logger.js';

const FAULT_CHANNEL = 'termgate:fault-injection';

/** Main thread → the worker thread `threadId`: throw an uncaught error. */
interface CrashRequest {
  type: 'crash';
  threadId: number;
}

/** The pool's threads, as the agent's WorkerPool shows them. */
interface ThreadList {
  readonly threads: ReadonlyArray<{ readonly threadId: number }>;
}

/** Main thread: on SIGUSR2, crash the pool's first worker thread. */
export function installFaultInjection(pool: ThreadList, logger: Logger): void {
  logger.warn('fault injection enabled (TERMGATE_FAULT_INJECTION=1): for tests only');
  process.on('SIGUSR2', () => {
    const target = pool.threads[0]?.threadId;
    if (target === undefined) return;
    const channel = new BroadcastChannel(FAULT_CHANNEL);
    channel.postMessage({ type: 'crash', threadId: target } satisfies CrashRequest);
    channel.close();
    logger.warn({ worker: target }, 'fault injected: crashing a worker thread');
  });
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
