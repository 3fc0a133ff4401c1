/**
 * The main thread's handle on one session: its state, its container, its counters, and its end of the
 * MessagePort to the worker that runs it. It relays what the worker says as typed events and never
 * touches the peer or the PTY itself.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { ErrorData } from '../errors.js';
import {
  createSessionStats,
  readStats,
  statsView,
  StatSlot,
  type SessionStats,
} from '../protocol/session-stats.js';
import type { SessionId } from '../protocol/signaling-messages.js';
import type {
  CloseReason,
  MainToWorker,
  SessionResult,
  SessionState,
  WorkerToMain,
} from '../protocol/worker-messages.js';
import { SafeEmitter } from '../SafeEmitter.js';

export interface SessionEvents {
  answer: [sdp: string];
  'offer-failed': [error: ErrorData];
  'local-candidate': [candidate: string, mid: string];
  state: [state: SessionState, previous: SessionState];
  'pty-request': [requestId: number, container: string];
  'pty-opened': [container: string];
  'pty-closed': [container: string];
  close: [result: SessionResult];
}

export class Session extends SafeEmitter<SessionEvents> {
  readonly id: SessionId;
  /** performance.now() when the offer arrived. */
  readonly offeredAt = performance.now();
  readonly statsBuffer = createSessionStats();
  readonly #stats = statsView(this.statsBuffer);
  /** The end handed to the worker inside the task; ours stays here. */
  readonly workerPort: MessagePort;
  readonly #port: MessagePort;
  #container: string;
  #state: SessionState = 'created';
  #ptyConnectedOnce = false;
  #closeRequested: CloseReason | undefined;
  #result: SessionResult | undefined;

  constructor(id: SessionId, container: string) {
    super();
    this.id = id;
    this.#container = container;
    this.#stats[StatSlot.lastActivityMs] = Date.now();
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.workerPort = port2;
    this.#port.on('message', (message: WorkerToMain) => this.#onWorkerMessage(message));
  }

  get state(): SessionState {
    return this.#state;
  }

  get container(): string {
    return this.#container;
  }

  get closed(): boolean {
    return this.#result !== undefined;
  }

  /** Why the session is ending, once a close was asked for. */
  get closeReason(): CloseReason | undefined {
    return this.#result?.reason ?? this.#closeRequested;
  }

  get lastActivityMs(): number {
    return this.#stats[StatSlot.lastActivityMs] ?? 0;
  }

  getStats(): SessionStats {
    return readStats(this.#stats);
  }

  /** Moves the session's accounting to another container (connect_pty); the registry checks limits. */
  setContainer(container: string): void {
    this.#container = container;
  }

  send(message: MainToWorker): void {
    if (!this.closed) this.#port.postMessage(message);
  }

  /** Asks the worker to end the session; `close` follows when it has. */
  requestClose(reason: CloseReason): void {
    if (this.closed || this.#closeRequested) return;
    this.#closeRequested = reason;
    this.send({ type: 'close', reason });
  }

  /** Records the session's end. Called once its task has settled; idempotent. */
  markClosed(result: SessionResult): void {
    if (this.#result) return;
    this.#result = result;
    this.#setState('closed');
    this.#port.close();
    this.workerPort.close();
    this.safeEmit('close', result);
    this.removeAllListeners();
  }

  #setState(state: SessionState): void {
    if (state === this.#state || this.#state === 'closed') return;
    const previous = this.#state;
    this.#state = state;
    this.safeEmit('state', state, previous);
  }

  #onWorkerMessage(message: WorkerToMain): void {
    switch (message.type) {
      case 'answer':
        this.#setState('connecting');
        this.safeEmit('answer', message.sdp);
        break;
      case 'offer-failed':
        this.safeEmit('offer-failed', message.error);
        break;
      case 'local-candidate':
        this.safeEmit('local-candidate', message.candidate, message.mid);
        break;
      case 'state':
        // 'closed' is only final once the task has settled; markClosed sets it.
        if (message.state !== 'closed') this.#setState(message.state);
        break;
      case 'pty-request':
        this.safeEmit('pty-request', message.requestId, message.container);
        break;
      case 'pty-opened':
        this.#ptyConnectedOnce = true;
        this.safeEmit('pty-opened', message.container);
        break;
      case 'pty-closed':
        this.safeEmit('pty-closed', message.container);
        break;
      default:
        message satisfies never;
    }
  }

  /** True once a PTY was connected in this session. */
  get everConnected(): boolean {
    return this.#ptyConnectedOnce;
  }
}
