/**
 * The Piscina pool that hosts sessions. Settings follow from node-datachannel's needs (see NOTES.md):
 * a fixed thread count that is never retired while idle (a worker torn down with live peers aborts the
 * process), `atomics: 'disabled'` so a worker between tasks keeps serving its peers and exec streams,
 * and an explicit drain at shutdown that closes every peer and cleans the addon up in each worker.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ErrorCodes, TermgateError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  DRAIN_CHANNEL,
  type DrainMessage,
  type SessionResult,
  type SessionTask,
} from '../protocol/worker-messages.js';

export interface WorkerPoolOptions {
  workers: number;
  sessionsPerWorker: number;
  logger: Logger;
  /** The per-worker gauges table (src/protocol/worker-stats.ts), handed to every worker; none with metrics off. */
  workerStats?: SharedArrayBuffer | undefined;
}

const WORKER_FILE = fileURLToPath(new URL('../../workers/session-worker.js', import.meta.url));

export class WorkerPool {
  readonly #piscina: Piscina<SessionTask, SessionResult>;
  readonly #logger: Logger;
  readonly #workers: number;
  #closed: Promise<void> | undefined;

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new TypeError('options.workers must be a positive integer');
    }
    this.#workers = options.workers;
    this.#logger = options.logger;
    this.#piscina = new Piscina({
      filename: WORKER_FILE,
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Infinity,
      atomics: 'disabled',
      concurrentTasksPerWorker: options.sessionsPerWorker,
      // Admission is the registry's job; the queue only bridges the moment a dead worker is replaced.
      maxQueue: options.sessionsPerWorker,
      workerData: { workerStats: options.workerStats },
    });
    this.#piscina.on('error', (err: Error) => this.#logger.error({ err: err.message }, 'worker pool error'));
    // A worker that died (see session-worker.ts) is replaced by Piscina; the log shows the count coming back.
    this.#piscina.on('workerCreate', () =>
      this.#logger.info({ threads: this.threadCount }, 'worker thread started'),
    );
    this.#piscina.on('workerDestroy', () =>
      this.#logger.info({ threads: this.threadCount }, 'worker thread ended'),
    );
  }

  get size(): number {
    return this.#workers;
  }

  /** Worker threads alive right now (a dead one is replaced by Piscina). */
  get threadCount(): number {
    return this.#piscina.threads.length;
  }

  get utilization(): number {
    return this.#piscina.utilization;
  }

  get queueSize(): number {
    return this.#piscina.queueSize;
  }

  get threads(): ReturnType<Piscina['threads']['slice']> {
    return this.#piscina.threads;
  }

  /** Runs a session in some worker; resolves when it ends, with 'worker-died' if its worker did. */
  async runSession(task: SessionTask): Promise<SessionResult> {
    if (this.#closed) throw new TermgateError(ErrorCodes.SHUTTING_DOWN, 'the agent is shutting down');
    try {
      return await this.#piscina.run(task, { transferList: [task.port] });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#logger.warn({ session: task.sessionId, err: message }, 'session task failed');
      return {
        reason: 'worker-died',
        error: { code: ErrorCodes.WORKER_DIED, message: `the session's worker ended: ${message}` },
      };
    }
  }

  /**
   * Test-only fault injection: asks one worker thread to throw an uncaught error. Workers obey only when
   * started with TERMGATE_FAULT_INJECTION=1. Returns the thread id asked, if any.
   */
  injectCrash(index = 0): number | undefined {
    const threadId = this.#piscina.threads[index]?.threadId;
    if (threadId === undefined) return undefined;
    const channel = new BroadcastChannel(DRAIN_CHANNEL);
    channel.postMessage({ type: 'crash', threadId } satisfies DrainMessage);
    channel.close();
    return threadId;
  }

  /** Drains every worker (peers closed, addon cleaned up), then stops the pool. Idempotent. */
  close(timeoutMs = 10_000): Promise<void> {
    this.#closed ??= this.#close(timeoutMs);
    return this.#closed;
  }

  async #close(timeoutMs: number): Promise<void> {
    const channel = new BroadcastChannel(DRAIN_CHANNEL);
    const expected = this.#piscina.threads.length;
    let peersClosed = 0;
    const drained = new Promise<number>((resolve) => {
      let replies = 0;
      channel.onmessage = (event) => {
        const message = (event as { data: DrainMessage }).data;
        if (message.type !== 'drained') return;
        peersClosed += message.peersClosed;
        if (++replies === expected) resolve(replies);
      };
    });
    channel.postMessage({ type: 'drain' } satisfies DrainMessage);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<number>((resolve) => (timer = setTimeout(() => resolve(-1), timeoutMs)));
    const replies = await Promise.race([drained, timeout]);
    clearTimeout(timer);
    channel.close();
    if (replies < 0) this.#logger.warn({ expected }, 'not every worker confirmed its drain in time');
    // Peers still open at drain time: zero when every session had already ended on its own.
    else this.#logger.info({ workers: replies, peersClosed }, 'workers drained');
    await this.#piscina.destroy();
  }
}
