/**
 * The Piscina pool that hosts sessions. Settings follow from node-datachannel's needs:
 * a fixed thread count that is never retired while idle (a worker torn down with live peers aborts the
 * process), `atomics: 'disabled'` so a worker between tasks keeps serving its peers and exec streams,
 * and an explicit drain at shutdown that closes every peer and cleans the addon up in each worker.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { ChannelEndpoint } from '../../common/Channel.js';
import { ErrorCodes, TermgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import {
  POOL_TO_WORKERS,
  WORKERS_TO_POOL,
  type LineEnvelope,
  type SessionResult,
  type SessionTask,
} from '../../common/protocol/worker-messages.js';
import { WorkerHandle } from './WorkerHandle.js';
import { createIcePortSlots, releaseIcePortsExcept } from '../../common/protocol/ice-port-slots.js';
import type { PoolWorkerData } from '../../common/protocol/worker-messages.js';

export interface WorkerPoolOptions {
  workers: number;
  sessionsPerWorker: number;
  logger: Logger;
  /** The level workers log at (their lines are written by `logger`); default 'info'. */
  logLevel?: string;
  /** The per-worker gauges table (common/protocol/worker-stats.ts), handed to every worker; none with metrics off. */
  workerStats?: SharedArrayBuffer | undefined;
  /** The first of the workers' internal ICE ports (`--ice-udp-port` + 1): worker k listens on it + k (ice-port-slots.ts). */
  workerIcePort?: number | undefined;
  /** The ICE UDP front's routes table (common/protocol/front-routes.ts), read by the workers. */
  frontRoutes?: SharedArrayBuffer | undefined;
}

/** What a drain found: the workers that confirmed it, and the peers they still held. */
export interface DrainReport {
  workers: number;
  /** Peers still open in a worker at drain time: zero when every session had ended on its own. */
  peersClosed: number;
  /** Workers that did not confirm within the timeout. */
  unconfirmed: number;
}

/**
 * Each worker's young generation, in MB (V8 splits it in three: two semi-spaces and the space for large
 * new objects). V8 grows a busy thread's semi-spaces up to 16 MB each and keeps them once the thread is
 * idle: in the bench's soak (open, one command, close; 8 at a time), each worker's heap stayed about
 * 25 MB above its warm base with every session closed, and the process's RSS 74 MB (186 → 260 MB).
 * Capped at 8 MB: 16, 46 and 40 MB above the base in three 45 s soaks (74 and 74 without), 40 in the
 * full 150 s one; 4 MB did no better (48, 46). The throughput rows' CPU per MB the same, measured side by
 * side (two rounds of every line workload, both encodings).
 */
const WORKER_YOUNG_GENERATION_MB = 8;

/** How often a closing pool looks again for threads still loading the session module. */
const MODULE_LOAD_POLL_MS = 20;

const WORKER_FILE = fileURLToPath(new URL('../../workers/session-worker.js', import.meta.url));

export class WorkerPool {
  readonly #piscina: Piscina<SessionTask, SessionResult>;
  readonly #logger: Logger;
  readonly #workers: number;
  /** Threads that loaded the session module, by id; only they hold peers and answer `drain`. */
  readonly #handles = new Map<number, WorkerHandle>();
  /** Each handle's receiver, fed by the one listener on the workers' line. */
  readonly #receivers = new Map<number, (message: unknown) => void>();
  readonly #fromWorkers = new BroadcastChannel(WORKERS_TO_POOL);
  readonly #toWorkers = new BroadcastChannel(POOL_TO_WORKERS);
  #threadsStarted = 0;
  #closed: Promise<DrainReport> | undefined;

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new TypeError('options.workers must be a positive integer');
    }
    this.#workers = options.workers;
    this.#logger = options.logger;
    const icePorts =
      options.workerIcePort === undefined
        ? undefined
        : createIcePortSlots(options.workers, options.workerIcePort);
    this.#piscina = new Piscina({
      filename: WORKER_FILE,
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Infinity,
      atomics: 'disabled',
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      concurrentTasksPerWorker: options.sessionsPerWorker,
      // Admission is the registry's job; the queue only bridges the moment a dead worker is replaced.
      maxQueue: options.sessionsPerWorker,
      workerData: {
        workerStats: options.workerStats,
        icePorts,
        frontRoutes: options.frontRoutes,
        logLevel: options.logLevel ?? 'info',
      } satisfies PoolWorkerData,
    });
    this.#fromWorkers.unref();
    this.#toWorkers.unref();
    this.#fromWorkers.onmessage = (event) => {
      const { thread, message } = (event as { data: LineEnvelope }).data;
      if (!this.#handles.has(thread)) this.#adopt(thread);
      this.#receivers.get(thread)?.(message);
    };
    this.#piscina.on('error', (err: Error) => this.#logger.error({ err: err.message }, 'worker pool error'));
    // A worker that died (see session-worker.ts) is replaced by Piscina; the log shows the count coming back.
    this.#piscina.on('workerCreate', () => {
      this.#threadsStarted++;
      this.#logger.info({ threads: this.threadCount }, 'worker thread started');
    });
    this.#piscina.on('workerDestroy', () => {
      this.#logger.info({ threads: this.threadCount }, 'worker thread ended');
      // A thread that died without closing its peers never freed its port; its replacement needs it.
      if (icePorts) releaseIcePortsExcept(icePorts, new Set(this.#piscina.threads.map((t) => t.threadId)));
    });
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

  /** Worker threads started since the pool began: the pool size, plus one for each replaced thread. */
  get threadsStarted(): number {
    return this.#threadsStarted;
  }

  /** Drains every worker (peers closed, addon cleaned up), then stops the pool. Idempotent. */
  close(timeoutMs = 10_000): Promise<DrainReport> {
    this.#closed ??= this.#close(timeoutMs);
    return this.#closed;
  }

  async #close(timeoutMs: number): Promise<DrainReport> {
    await this.#untilModulesLoaded(timeoutMs);
    const alive = new Set(this.#piscina.threads.map((t) => t.threadId));
    const loaded = [...this.#handles.values()].filter((h) => alive.has(h.threadId));
    const outcomes = await Promise.all(loaded.map((h) => h.drain(timeoutMs)));
    const confirmed = outcomes.filter((o) => o.peersClosed !== undefined);
    const report: DrainReport = {
      workers: confirmed.length,
      peersClosed: confirmed.reduce((sum, o) => sum + (o.peersClosed ?? 0), 0),
      unconfirmed: outcomes.length - confirmed.length,
    };
    if (report.unconfirmed > 0) this.#logger.warn(report, 'not every worker confirmed its drain in time');
    else this.#logger.info(report, 'workers drained');
    for (const handle of this.#handles.values()) handle.close();
    this.#fromWorkers.close();
    this.#toWorkers.close();
    await this.#piscina.destroy();
    return report;
  }

  /**
   * Waits (at most `timeoutMs`) until every live thread has loaded the session module. Node 20 aborts the
   * whole process when a thread is terminated while its `require()` of an ES module is instantiating it
   * (V8 fatal: IsGraphAsync on a module that is not instantiated), so an agent that fails to start right
   * after creating the pool must not destroy it under threads still loading.
   */
  async #untilModulesLoaded(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const loading = () => this.#piscina.threads.some((t) => !this.#handles.has(t.threadId));
    while (loading() && Date.now() < deadline) await delay(MODULE_LOAD_POLL_MS);
  }

  /** A thread spoke on the line for the first time: it loaded the session module. */
  #adopt(threadId: number): void {
    const endpoint: ChannelEndpoint = {
      post: (message) => this.#toWorkers.postMessage({ thread: threadId, message } satisfies LineEnvelope),
      listen: (receive) => {
        this.#receivers.set(threadId, receive);
        return () => this.#receivers.delete(threadId);
      },
    };
    this.#handles.set(threadId, new WorkerHandle(threadId, endpoint, this.#logger));
  }
}
