/**
 * What a session in a worker tells the main thread on its port, besides answers to requests: the agent's
 * candidates, the session's state, PTYs opened, its first handler fault, shells it could not end.
 *
 * The state is `connected` only once the peer is connected and a PTY is attached, whichever comes last.
 * Once the session is closing its end speaks for it (the final state, the task's result), so state,
 * candidates and faults are no longer sent; a shell that could not be ended still is, since shells are
 * ended while the session closes.
 */
import type { Channel } from '../common/Channel.js';
import type { ErrorData } from '../common/errors.js';
import { StatSlot } from '../common/protocol/session-stats.js';
import type { MainToSession, SessionState, SessionToMain } from '../common/protocol/worker-messages.js';

/** What the notices use of the session's channel (a unit test gives it a fake). */
export type NoticeLine = Pick<Channel<SessionToMain, MainToSession>, 'notify'>;

type Notifications = SessionToMain['notifications'];

export class SessionNotices {
  readonly #main: NoticeLine;
  readonly #stats: Float64Array;
  readonly #closing: () => boolean;

  /** `stats` are the session's counters (session-stats.ts); `closing` says whether the session is ending. */
  constructor(main: NoticeLine, stats: Float64Array, closing: () => boolean) {
    this.#main = main;
    this.#stats = stats;
    this.#closing = closing;
  }

  /** One of the agent's ICE candidates, for the browser. */
  localCandidate(candidate: Notifications['local-candidate']): void {
    this.#notify('local-candidate', candidate);
  }

  /** The peer's state; `connected` waits until a PTY is attached too (`ptyOpened` says it then). */
  peerState(state: 'connecting' | 'connected' | 'disconnected', ptyAttached: boolean): void {
    if (state !== 'connected') this.#state(state);
    else if (ptyAttached) this.#state('connected');
  }

  /** A PTY is attached and the browser was told: the session is connected. */
  ptyOpened(container: string): void {
    this.#main.notify('pty-opened', { container });
    this.#state('connected');
  }

  /** The selected ICE path became known or changed kind (for the path metrics). */
  path(path: Notifications['path']): void {
    this.#notify('path', path);
  }

  /** The session's first handler fault, for the main thread to log (HandlerFaults counts them all). */
  handlerFault(error: ErrorData): void {
    this.#notify('handler-fault', { error });
  }

  /** A shell that could not be seen or ended: counted, and told to the main thread, which logs it. */
  cleanupFailed(error: ErrorData): void {
    this.#stats[StatSlot.cleanupFailures]! += 1;
    this.#main.notify('cleanup-failed', { error });
  }

  #state(state: SessionState): void {
    this.#notify('state', { state });
  }

  /** Notifies the main thread, unless the session is closing (its end says the rest). */
  #notify<K extends 'local-candidate' | 'state' | 'handler-fault' | 'path'>(
    method: K,
    params: Notifications[K],
  ): void {
    if (!this.#closing()) this.#main.notify(method, params);
  }
}
