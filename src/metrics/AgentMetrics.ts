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
import { CLOSE_REASONS, type SessionState } from '../../common/protocol/worker-messages.js';
import {
  releaseRow,
  rowOwner,
  workerStatsTable,
  type WorkerStatsTable,
} from '../../common/protocol/worker-stats.js';
import type { SessionRouter } from '../sessions/SessionRouter.js';
import type { WorkerPool } from '../pool/WorkerPool.js';
import type { SessionRegistry, SessionRegistryEvents } from '../sessions/SessionRegistry.js';
import type { SignalingClient } from '../signaling/SignalingClient.js';
import { EventLoopDelayWindow, type EventLoopDelaySample } from '../../common/EventLoopDelayWindow.js';
import { addPathMetrics } from './path-metrics.js';
import { addPoolMetrics } from './pool-metrics.js';
import { SessionTotals } from './SessionTotals.js';
import { addShellMetrics } from './shell-metrics.js';
import { addSignalingLinkMetrics } from './signaling-metrics.js';
import type { ShellJanitor } from '../containers/ShellJanitor.js';

export interface AgentMetricsOptions {
  registry: SessionRegistry;
  router: SessionRouter;
  pool: WorkerPool;
  signaling: SignalingClient;
  /** Ends the shells of an earlier run at start-up; its counts are read at scrape time. */
  janitor: ShellJanitor;
  /** The table handed to the pool's workers (createWorkerStats). */
  workerStats: SharedArrayBuffer;
  /** The host's session limit, exported so a dashboard can show how full the host is. */
  maxSessions: number;
  /** Length of the event-loop delay window of the main thread; default 5000 ms (workers use the same). */
  delayWindowMs?: number;
}

/** Error kinds of `termgate_errors_total`. */
export type ErrorKind = 'offer_refused' | 'signaling_payload' | 'datachannel_protocol' | 'pty';

const LIVE_STATES: readonly SessionState[] = ['created', 'connecting', 'connected', 'disconnected'];

export class AgentMetrics {
  readonly register = new Registry();
  readonly #o: AgentMetricsOptions;
  readonly #table: WorkerStatsTable;
  readonly #totals: SessionTotals;
  readonly #mainDelay: EventLoopDelaySample = { p50: 0, p99: 0, max: 0 };
  readonly #delayWindow: EventLoopDelayWindow;
  readonly #unsubscribe: Array<() => void> = [];
  #closed = false;

  constructor(options: AgentMetricsOptions) {
    this.#o = options;
    this.#table = workerStatsTable(options.workerStats);
    this.#totals = new SessionTotals(options.registry);
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
        const t = this.#totals.now();
        this.#totals.advance(bytes, 'bytes_from', { direction: 'from_browser' }, t.bytesFromBrowser);
        this.#totals.advance(bytes, 'bytes_to', { direction: 'to_browser' }, t.bytesToBrowser);
      },
    });
    const messages = new Counter({
      name: 'termgate_datachannel_messages_total',
      help: 'Messages on terminal data channels, by direction.',
      labelNames: ['direction'],
      registers,
      collect: () => {
        const t = this.#totals.now();
        this.#totals.advance(messages, 'messages_from', { direction: 'from_browser' }, t.messagesFromBrowser);
        this.#totals.advance(messages, 'messages_to', { direction: 'to_browser' }, t.messagesToBrowser);
      },
    });
    const pauses = new Counter({
      name: 'termgate_backpressure_pauses_total',
      help: "Times a PTY's output was paused because its data channel's send buffer was full.",
      registers,
      collect: () => {
        this.#totals.advance(pauses, 'pauses', {}, this.#totals.now().backpressurePauses);
      },
    });
    const flushed = new Counter({
      name: 'termgate_output_flushed_bytes_total',
      help: 'Output bytes written before a Ctrl-C and dropped, as the TTY drops its own queue (--flush-on-interrupt).',
      registers,
      collect: () => {
        this.#totals.advance(flushed, 'flushed', {}, this.#totals.now().outputFlushed);
      },
    });
    const errors = new Counter({
      name: 'termgate_errors_total',
      help: 'Errors by kind (offer_refused, signaling_payload, datachannel_protocol, pty) and error code where known.',
      labelNames: ['kind', 'code'],
      registers,
      collect: () => {
        const t = this.#totals.now();
        this.#totals.advance(
          errors,
          'datachannel_protocol',
          { kind: 'datachannel_protocol' },
          t.protocolErrors,
        );
        this.#totals.advance(errors, 'pty', { kind: 'pty' }, t.ptyErrors);
      },
    });

    // --- Hardening: faults caught at a boundary, replies dropped, shells not ended, switches ---
    const faults = new Counter({
      name: 'termgate_handler_faults_total',
      help: 'Handlers that threw on outside input and were caught at their boundary, by boundary (signaling, datachannel, port).',
      labelNames: ['boundary'],
      registers,
      collect: () => {
        this.#totals.advance(
          faults,
          'faults_datachannel',
          { boundary: 'datachannel' },
          this.#totals.now().handlerFaults,
        );
      },
    });
    faults.inc({ boundary: 'signaling' }, 0);
    faults.inc({ boundary: 'port' }, 0);
    const dropped = new Counter({
      name: 'termgate_replies_dropped_total',
      help: 'Replies (pong, error) not sent because the browser was not taking what its channel already held.',
      registers,
      collect: () => {
        this.#totals.advance(dropped, 'replies_dropped', {}, this.#totals.now().repliesDropped);
      },
    });
    const cleanupFailures = new Counter({
      name: 'termgate_shell_cleanup_failures_total',
      help: 'Shells whose processes could not be seen or ended from the host when their session let them go.',
      registers,
      collect: () => {
        this.#totals.advance(cleanupFailures, 'cleanup_failures', {}, this.#totals.now().cleanupFailures);
      },
    });
    const switches = new Counter({
      name: 'termgate_container_switches_total',
      help: 'connect_pty into another container than the session had: switched, or refused.',
      labelNames: ['result'],
      registers,
    });
    switches.inc({ result: 'switched' }, 0);
    switches.inc({ result: 'refused' }, 0);
    const slots = new Gauge({
      name: 'termgate_container_slots',
      help: 'Sessions counted against containers (sum over containers); equals the live sessions unless a connect_pty is being decided.',
      registers,
      collect: () => {
        slots.set(options.registry.containerSlots());
      },
    });

    addPoolMetrics(registers, {
      pool: options.pool,
      table: this.#table,
      liveRows: () => this.#liveRows(),
      mainDelay: this.#mainDelay,
    });
    this.#unsubscribe.push(addSignalingLinkMetrics(registers, options.signaling));
    this.#unsubscribe.push(
      addPathMetrics(registers, { registry: options.registry, router: options.router, totals: this.#totals }),
    );
    addShellMetrics(registers, options.janitor);

    // --- Events: once per offer, session end or link change ---
    const onOffer = (code: string | undefined) => {
      opened.inc({ result: code === undefined ? 'success' : 'error' });
      if (code !== undefined) errors.inc({ kind: 'offer_refused', code });
    };
    const onAnswered = (seconds: number) => answerLatency.observe(seconds);
    const onPty = (seconds: number) => ptyLatency.observe(seconds);
    const onSwitch = (code: string | undefined) =>
      switches.inc({ result: code === undefined ? 'switched' : 'refused' });
    const onPortFault = () => faults.inc({ boundary: 'port' });
    options.router
      .on('offer', onOffer)
      .on('answered', onAnswered)
      .on('pty-connected', onPty)
      .on('switch', onSwitch)
      .on('handler-fault', onPortFault);
    this.#unsubscribe.push(() =>
      options.router
        .off('offer', onOffer)
        .off('answered', onAnswered)
        .off('pty-connected', onPty)
        .off('switch', onSwitch)
        .off('handler-fault', onPortFault),
    );

    const onRemove = (...[session, result]: SessionRegistryEvents['remove']) => {
      this.#totals.ended(session);
      ended.inc({ reason: result.reason });
    };
    options.registry.on('remove', onRemove);
    this.#unsubscribe.push(() => options.registry.off('remove', onRemove));

    const onBadPayload = (_topic: string, code: string) => errors.inc({ kind: 'signaling_payload', code });
    const onSignalingFault = () => faults.inc({ boundary: 'signaling' });
    options.signaling.on('bad-payload', onBadPayload).on('handler-fault', onSignalingFault);
    this.#unsubscribe.push(() =>
      options.signaling.off('bad-payload', onBadPayload).off('handler-fault', onSignalingFault),
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
