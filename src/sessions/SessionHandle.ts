/**
 * The main thread's handle on one session: its state, its container, its counters, and the channel on
 * the session's port to the worker that runs it. What the main thread does to a session it does through
 * the handle's methods (answer the offer, add a browser candidate, grant or deny a PTY, close); what the
 * worker reports arrives as typed events. It never touches the peer or the PTY itself.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Channel, portEndpoint, type ChannelEndpoint } from '../../common/Channel.js';
import { ErrorCodes, TermgateError, toErrorData, type ErrorData } from '../../common/errors.js';
import { RateLimiter } from '../../common/RateLimiter.js';
import { SafeEmitter } from '../../common/SafeEmitter.js';
import {
  createSessionStats,
  readStats,
  statsView,
  StatSlot,
  type SessionStats,
} from '../../common/protocol/session-stats.js';
import type { SessionId } from '../../common/protocol/signaling.js';
import type {
  CloseReason,
  IceCandidate,
  MainToSession,
  PtyTarget,
  ResumeRequest,
  SessionResult,
  SessionState,
  SessionToMain,
} from '../../common/protocol/worker-messages.js';

/** connect_pty requests a session may have the engine answer per second, after a burst of a few. */
export const PTY_REQUESTS_PER_SECOND = 1;
export const PTY_REQUEST_BURST = 3;

/** A browser's connect_pty, as the worker asks for it: grant it with the container's id, or deny it. */
export interface PtyRequest {
  readonly container: string;
  grant(target: PtyTarget): void;
  deny(error: ErrorData): void;
}

export interface SessionHandleEvents {
  'local-candidate': [candidate: SessionToMain['notifications']['local-candidate']];
  state: [state: SessionState, previous: SessionState];
  'pty-request': [request: PtyRequest];
  'pty-opened': [container: string];
  /** A shell of this session could not be seen or ended from the host. */
  'cleanup-failed': [error: ErrorData];
  /** A handler in the worker threw on something this session received (the first time); the session went on. */
  'handler-fault': [error: ErrorData];
  /** The session's selected ICE path became known or changed kind. */
  path: [path: SessionToMain['notifications']['path']];
  /** This handle's own port handler threw on a worker message; the session went on. */
  'port-fault': [error: ErrorData];
  close: [result: SessionResult];
}

export class SessionHandle extends SafeEmitter<SessionHandleEvents> {
  readonly id: SessionId;
  /** Containers the cloud authorized this session for: the offer's `device_id` and `devices`. */
  readonly grants: ReadonlySet<string>;
  /** connect_pty requests that reach the Docker engine: a slow rate, with a small burst for a user. */
  readonly ptyRequests = new RateLimiter(PTY_REQUESTS_PER_SECOND, PTY_REQUEST_BURST);
  /** performance.now() when the offer arrived. */
  readonly offeredAt = performance.now();
  readonly statsBuffer = createSessionStats();
  readonly #stats = statsView(this.statsBuffer);
  /** The end handed to the worker inside the task; ours stays here. */
  readonly workerPort: MessagePort;
  readonly #port: MessagePort;
  readonly #worker: Channel<MainToSession, SessionToMain>;
  #container: string;
  #state: SessionState = 'created';
  #closeRequested = false;
  #result: SessionResult | undefined;

  constructor(id: SessionId, container: string, grants: Iterable<string> = []) {
    super();
    this.id = id;
    this.#container = container;
    this.grants = new Set([container, ...grants]);
    this.#stats[StatSlot.lastActivityMs] = Date.now();
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.workerPort = port2;
    this.#worker = new Channel(untilTaskEnds(portEndpoint(port1)), {
      onListenerError: (_method, err) => this.safeEmit('port-fault', toErrorData(err)),
    });
    this.#worker
      .on('local-candidate', (candidate) => this.safeEmit('local-candidate', candidate))
      // 'closed' is only final once the task has settled; markClosed sets it.
      .on('state', ({ state }) => state !== 'closed' && this.#setState(state))
      .on('pty-opened', ({ container }) => this.safeEmit('pty-opened', container))
      .on('cleanup-failed', ({ error }) => this.safeEmit('cleanup-failed', error))
      .on('handler-fault', ({ error }) => this.safeEmit('handler-fault', error))
      .on('path', (path) => this.safeEmit('path', path))
      .handle('pty', ({ container }) => this.#ptyRequest(container));
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

  /**
   * Hands the browser's offer to the worker and resolves with the answer SDP; rejects with the worker's
   * error (a bad SDP, a refused resume), at `timeoutMs`, or with why the session ended first. With
   * `resume` the offer reattaches a new connection to this session's shell.
   */
  async answer(offerSdp: string, timeoutMs: number, resume?: ResumeRequest): Promise<string> {
    const { sdp } = await this.#worker.request(
      'offer',
      resume ? { sdp: offerSdp, resume } : { sdp: offerSdp },
      {
        timeoutMs,
        timeoutError: {
          code: ErrorCodes.INTERNAL,
          message: 'no answer from the worker in time; the agent may be overloaded',
        },
      },
    );
    this.#setState('connecting');
    return sdp;
  }

  /** A browser candidate, as the cloud relayed it. */
  addRemoteCandidate(candidate: IceCandidate): void {
    if (!this.closed) this.#worker.notify('remote-candidate', candidate);
  }

  /** The browser's signaling went away: the worker keeps a resumable session for a resume, else ends it. */
  browserGone(): void {
    if (!this.closed && !this.#closeRequested) this.#worker.notify('browser-gone', {});
  }

  /** Asks the worker to end the session; `close` follows when it has. */
  close(reason: CloseReason): void {
    if (this.closed || this.#closeRequested) return;
    this.#closeRequested = true;
    this.#worker.notify('close', { reason });
  }

  /** Records the session's end. Called once its task has settled; idempotent. */
  markClosed(result: SessionResult): void {
    if (this.#result) return;
    this.#result = result;
    this.#setState('closed');
    // A request still waiting (the answer) fails with why the session ended.
    this.#worker.close(
      result.error ?? {
        code: ErrorCodes.INTERNAL,
        message: `session ended before answering (${result.reason})`,
      },
    );
    this.#port.close();
    this.workerPort.close();
    this.safeEmit('close', result);
    this.removeAllListeners();
  }

  #ptyRequest(container: string): Promise<PtyTarget> {
    return new Promise((resolve, reject) => {
      const request: PtyRequest = {
        container,
        grant: resolve,
        deny: (error) => reject(TermgateError.fromData(error)),
      };
      if (!this.safeEmit('pty-request', request))
        request.deny({ code: ErrorCodes.INTERNAL, message: 'no one decides connect_pty' });
    });
  }

  #setState(state: SessionState): void {
    if (state === this.#state || this.#state === 'closed') return;
    const previous = this.#state;
    this.#state = state;
    this.safeEmit('state', state, previous);
  }
}

/**
 * The session's port, whose own end is not the session's: the worker closes it as it finishes, before
 * the task's result says why; the handle closes its channel at `markClosed`, with that reason.
 */
function untilTaskEnds(endpoint: ChannelEndpoint): ChannelEndpoint {
  return {
    post: (message, transfer) => endpoint.post(message, transfer),
    listen: (receive) => endpoint.listen(receive, () => undefined),
  };
}
