/**
 * The agent's Prometheus metrics: one prom-client Registry, fed two ways and nowhere else.
 * - Events the main thread already emits (router, registry, signaling) increment counters and histograms:
 *   once per offer, session end or reconnect, never per message.
 * - Everything counted on the data path is read at scrape time: the per-session SharedArrayBuffer
 *   counters the workers write (session-stats.ts), summed over live sessions plus the final values of
 *   ended ones, and the per-worker table (worker-stats.ts) for sessions per worker and event-loop delay.
 * Labels are closed sets (state, reason, direction, error kind and code, worker index): no session id,
 * no container name. Every family is listed with its type and labels in docs/metrics.md.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SessionStats } from '../protocol/session-stats.js';
import { CLOSE_REASONS, type SessionState } from '../protocol/worker-messages.js';
import {
  releaseRow,
  rowOffset,
  rowOwner,
  WorkerStatSlot,
  workerStatsTable,
  type WorkerStatsTable,
} from '../protocol/worker-stats.js';
import type { SessionRouter } from '../routing/SessionRouter.js';
import type { WorkerPool } from '../routing/WorkerPool.js';
import type { SessionRegistry, SessionRegistryEvents } from '../sessions/SessionRegistry.js';
import type { SignalingClient } from '../signaling/SignalingClient.js';
import { EventLoopDelayWindow, type EventLoopDelaySample } from './EventLoopDelayWindow.js';

export interface AgentMetricsOptions {
  registry: SessionRegistry;
  router: SessionRouter;
  pool: WorkerPool;
  signaling: SignalingClient;
  /** The table handed to the pool's workers (createWorkerStats). */
  workerStats: SharedArrayBuffer;
  /** The host's session limit, exported so a dashboard can show how full the host is. */
  maxSessions: number;
  /** Length of the event-loop delay window of the main thread; default 5000 ms (workers use the same). */
  delayWindowMs?: number;
}

/** Error kinds of `termgate_errors_total`. */
export type ErrorKind = 'offer_refused' | 'signaling_payload' | 'datachannel_protocol';

const LIVE_STATES: readonly SessionState[] = ['created', 'connecting', 'connected', 'disconnected'];

/** socket.io-client's disconnect reasons; anything else is counted as 'other' to keep the label closed. */
const DISCONNECT_REASONS = new Set([
  'io server disconnect',
  'io client disconnect',
  'ping timeout',
  'transport close',
  'transport error',
  'parse error',
]);

type Totals = Omit<SessionStats, 'lastActivityMs'>;

function zeroTotals(): Totals {
  return {
    bytesFromBrowser: 0,
    bytesToBrowser: 0,
    messagesFromBrowser: 0,
    messagesToBrowser: 0,
    protocolErrors: 0,
    backpressurePauses: 0,
  };
}

export class AgentMetrics {
  readonly register = new Registry();
  readonly #o: AgentMetricsOptions;
  readonly #table: WorkerStatsTable;
  /** Final counters of sessions that have ended; live ones are read from their buffers at scrape time. */
  readonly #ended = zeroTotals();
  /** What each scrape-time counter has already been advanced to, by metric and label set. */
  readonly #exported = new Map<string, number>();
  readonly #mainDelay: EventLoopDelaySample = { p50: 0, p99: 0, max: 0 };
  readonly #delayWindow: EventLoopDelayWindow;
  readonly #unsubscribe: Array<() => void> = [];
  #closed = false;

  constructor(options: AgentMetricsOptions) {
    this.#o = options;
    this.#table = workerStatsTable(options.workerStats);
    this.#delayWindow = new EventLoopDelayWindow({
      windowMs: options.delayWindowMs,
      onWindow: (sample) => Object.assign(this.#mainDelay, sample),
    });
    const registers = [this.register];
    collectDefaultMetrics({ register: this.register });

    // --- Sessions ---
    const sessions = new Gauge({
      name: 'termgate_sessions',
      help: 'Sessions on this agent by state.',
      labelNames: ['state'],
      registers,
      collect: () => {
        const counts = options.registry.countByState();
        for (const state of LIVE_STATES) sessions.set({ state }, counts[state]);
      },
    });
    new Gauge({
      name: 'termgate_sessions_limit',
      help: 'Sessions this agent admits at once (--max-sessions).',
      registers,
    }).set(options.maxSessions);
    const opened = new Counter({
      name: 'termgate_sessions_opened_total',
      help: 'Offers handled, by result: success (answered) or error (refused).',
      labelNames: ['result'],
      registers,
    });
    const ended = new Counter({
      name: 'termgate_sessions_ended_total',
      help: 'Sessions ended, by close reason.',
      labelNames: ['reason'],
      registers,
    });
    opened.inc({ result: 'success' }, 0);
    opened.inc({ result: 'error' }, 0);
    for (const reason of CLOSE_REASONS) ended.inc({ reason }, 0);

    const answerLatency = new Histogram({
      name: 'termgate_offer_to_answer_seconds',
      help: 'Time from an offer arriving to its answer being ready.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const ptyLatency = new Histogram({
      name: 'termgate_offer_to_pty_connected_seconds',
      help: "Time from an offer arriving to its session's first PTY being connected.",
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });

    // --- Data path, read at scrape time ---
    const bytes = new Counter({
      name: 'termgate_terminal_bytes_total',
      help: 'Terminal bytes moved, by direction (input from the browser, output to it).',
      labelNames: ['direction'],
      registers,
      collect: () => {
        const t = this.#totals();
        this.#advance(bytes, 'bytes_from', { direction: 'from_browser' }, t.bytesFromBrowser);
        this.#advance(bytes, 'bytes_to', { direction: 'to_browser' }, t.bytesToBrowser);
      },
    });
    const messages = new Counter({
      name: 'termgate_datachannel_messages_total',
      help: 'Messages on terminal data channels, by direction.',
      labelNames: ['direction'],
      registers,
      collect: () => {
        const t = this.#totals();
        this.#advance(messages, 'messages_from', { direction: 'from_browser' }, t.messagesFromBrowser);
        this.#advance(messages, 'messages_to', { direction: 'to_browser' }, t.messagesToBrowser);
      },
    });
    const pauses = new Counter({
      name: 'termgate_backpressure_pauses_total',
      help: "Times a PTY's output was paused because its data channel's send buffer was full.",
      registers,
      collect: () => {
        this.#advance(pauses, 'pauses', {}, this.#totals().backpressurePauses);
      },
    });
    const errors = new Counter({
      name: 'termgate_errors_total',
      help: 'Errors by kind (offer_refused, signaling_payload, datachannel_protocol) and error code where known.',
      labelNames: ['kind', 'code'],
      registers,
      collect: () => {
        this.#advance(
          errors,
          'datachannel_protocol',
          { kind: 'datachannel_protocol' },
          this.#totals().protocolErrors,
        );
      },
    });

    // --- Workers and pool ---
    const workerSessions = new Gauge({
      name: 'termgate_worker_sessions',
      help: 'Sessions hosted by each worker thread (worker = row index in the pool, stable across scrapes).',
      labelNames: ['worker'],
      registers,
      collect: () => {
        workerSessions.reset();
        for (const row of this.#liveRows()) {
          workerSessions.set(
            { worker: String(row) },
            this.#table.values[rowOffset(row) + WorkerStatSlot.sessions] ?? 0,
          );
        }
      },
    });
    const delay = new Gauge({
      name: 'termgate_event_loop_delay_seconds',
      help: 'Event-loop delay over the last window, by thread (main, worker-N) and quantile (1 = max).',
      labelNames: ['thread', 'quantile'],
      registers,
      collect: () => {
        delay.reset();
        const set = (thread: string, s: EventLoopDelaySample) => {
          delay.set({ thread, quantile: '0.5' }, s.p50);
          delay.set({ thread, quantile: '0.99' }, s.p99);
          delay.set({ thread, quantile: '1' }, s.max);
        };
        set('main', this.#mainDelay);
        const v = this.#table.values;
        for (const row of this.#liveRows()) {
          const base = rowOffset(row);
          set(`worker-${row}`, {
            p50: v[base + WorkerStatSlot.delayP50] ?? 0,
            p99: v[base + WorkerStatSlot.delayP99] ?? 0,
            max: v[base + WorkerStatSlot.delayMax] ?? 0,
          });
        }
      },
    });
    const threads = new Gauge({
      name: 'termgate_pool_threads',
      help: 'Worker threads alive in the pool.',
      registers,
      collect: () => {
        threads.set(options.pool.threadCount);
      },
    });
    const utilization = new Gauge({
      name: 'termgate_pool_utilization_ratio',
      help: "Piscina's pool utilization: share of the pool's capacity busy with tasks (sessions), 0 to 1.",
      registers,
      collect: () => {
        utilization.set(options.pool.utilization);
      },
    });
    const queued = new Gauge({
      name: 'termgate_pool_queued_sessions',
      help: 'Sessions waiting in the pool queue for a worker.',
      registers,
      collect: () => {
        queued.set(options.pool.queueSize);
      },
    });

    // --- Signaling ---
    const connected = new Gauge({
      name: 'termgate_signaling_connected',
      help: '1 while the Socket.IO link to the cloud is connected, else 0.',
      registers,
      collect: () => {
        connected.set(options.signaling.connected ? 1 : 0);
      },
    });
    const reconnects = new Counter({
      name: 'termgate_signaling_reconnects_total',
      help: 'Successful reconnections of the signaling link.',
      registers,
    });
    const disconnects = new Counter({
      name: 'termgate_signaling_disconnects_total',
      help: "Losses of the signaling link, by socket.io's disconnect reason.",
      labelNames: ['reason'],
      registers,
    });
    for (const reason of [...DISCONNECT_REASONS, 'other']) disconnects.inc({ reason }, 0);

    // --- Events: once per offer, session end or link change ---
    const onOffer = (code: string | undefined) => {
      opened.inc({ result: code === undefined ? 'success' : 'error' });
      if (code !== undefined) errors.inc({ kind: 'offer_refused', code });
    };
    const onAnswered = (seconds: number) => answerLatency.observe(seconds);
    const onPty = (seconds: number) => ptyLatency.observe(seconds);
    options.router.on('offer', onOffer).on('answered', onAnswered).on('pty-connected', onPty);
    this.#unsubscribe.push(() =>
      options.router.off('offer', onOffer).off('answered', onAnswered).off('pty-connected', onPty),
    );

    const onRemove = (...[session, result]: SessionRegistryEvents['remove']) => {
      const s = session.getStats();
      for (const key of Object.keys(this.#ended) as Array<keyof Totals>) this.#ended[key] += s[key];
      ended.inc({ reason: result.reason });
    };
    options.registry.on('remove', onRemove);
    this.#unsubscribe.push(() => options.registry.off('remove', onRemove));

    const onBadPayload = (_topic: string, code: string) => errors.inc({ kind: 'signaling_payload', code });
    const onReconnect = () => reconnects.inc();
    const onDisconnect = (reason: string) =>
      disconnects.inc({ reason: DISCONNECT_REASONS.has(reason) ? reason : 'other' });
    options.signaling
      .on('bad-payload', onBadPayload)
      .on('reconnect', onReconnect)
      .on('disconnect', onDisconnect);
    this.#unsubscribe.push(() =>
      options.signaling
        .off('bad-payload', onBadPayload)
        .off('reconnect', onReconnect)
        .off('disconnect', onDisconnect),
    );
  }

  /** The text exposition of every metric. */
  metrics(): Promise<string> {
    return this.register.metrics();
  }

  get contentType(): string {
    return this.register.contentType;
  }

  /** Workers of the pool that have loaded and claimed their stats row; equals the pool size once it is up. */
  workersReporting(): number {
    return this.#liveRows().length;
  }

  /** Stops the main thread's delay sampling and detaches from the agent's emitters. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#delayWindow.close();
    for (const off of this.#unsubscribe.splice(0)) off();
  }

  /** Ended sessions' totals plus the live sessions' counters, as of now. */
  #totals(): Totals {
    const t = { ...this.#ended };
    for (const session of this.#o.registry.sessions()) {
      const s = session.getStats();
      t.bytesFromBrowser += s.bytesFromBrowser;
      t.bytesToBrowser += s.bytesToBrowser;
      t.messagesFromBrowser += s.messagesFromBrowser;
      t.messagesToBrowser += s.messagesToBrowser;
      t.protocolErrors += s.protocolErrors;
      t.backpressurePauses += s.backpressurePauses;
    }
    return t;
  }

  /** Advances a scrape-time counter to `total` (prom-client counters only go up by increments); `key` names the series. */
  #advance<L extends string>(
    counter: Counter<L>,
    key: string,
    labels: Partial<Record<L, string>>,
    total: number,
  ): void {
    const delta = total - (this.#exported.get(key) ?? 0);
    if (delta < 0) return; // cannot happen: ended sessions keep their final counts
    this.#exported.set(key, total);
    counter.inc(labels, delta);
  }

  /** Stats rows owned by threads alive in the pool; rows of threads that are gone are freed. */
  #liveRows(): number[] {
    const alive = new Set(this.#o.pool.threads.map((t) => t.threadId));
    const rows: number[] = [];
    for (let row = 0; row < this.#table.rows; row++) {
      const owner = rowOwner(this.#table, row);
      if (owner === 0) continue;
      if (alive.has(owner)) rows.push(row);
      else releaseRow(this.#table, row, owner);
    }
    return rows;
  }
}
