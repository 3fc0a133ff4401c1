/**
 * All sessions of this agent by id: admission (duplicates, sessions per host and per container), the idle
 * sweep, and the end of every session in one place.
 */
import { ErrorCodes, TermgateError } from '../errors.js';
import type { SessionId } from '../protocol/signaling-messages.js';
import type { CloseReason, SessionResult, SessionState } from '../protocol/worker-messages.js';
import { SafeEmitter } from '../SafeEmitter.js';
import { Session } from './Session.js';

export interface SessionRegistryOptions {
  maxSessions: number;
  maxSessionsPerContainer: number;
  /** A session with no message either way for this long is closed with 'idle-timeout'. */
  idleTimeoutMs: number;
  sweepIntervalMs: number;
}

export interface SessionRegistryEvents {
  add: [session: Session];
  remove: [session: Session, result: SessionResult];
}

export class SessionRegistry extends SafeEmitter<SessionRegistryEvents> {
  readonly #options: SessionRegistryOptions;
  readonly #sessions = new Map<SessionId, Session>();
  readonly #perContainer = new Map<string, number>();
  readonly #sweepTimer: NodeJS.Timeout;

  constructor(options: SessionRegistryOptions) {
    super();
    this.#options = options;
    this.#sweepTimer = setInterval(() => this.sweep(Date.now()), options.sweepIntervalMs);
    this.#sweepTimer.unref();
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(id: SessionId): Session | undefined {
    return this.#sessions.get(id);
  }

  sessions(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** Admits a new session for `container`, or throws why it cannot be admitted. */
  create(id: SessionId, container: string): Session {
    if (this.#sessions.has(id)) {
      throw new TermgateError(ErrorCodes.DUPLICATE_SESSION, `session "${id}" already exists on this agent`);
    }
    if (this.#sessions.size >= this.#options.maxSessions) {
      throw new TermgateError(
        ErrorCodes.CAPACITY_HOST,
        `this agent is at its limit of ${this.#options.maxSessions} sessions; close one or try another host`,
      );
    }
    this.#checkContainerCapacity(container);
    const session = new Session(id, container);
    this.#sessions.set(id, session);
    this.#count(container, +1);
    session.once('close', (result) => this.#remove(session, result));
    this.safeEmit('add', session);
    return session;
  }

  /** Moves a session to another container (connect_pty), within that container's limit. */
  moveSession(session: Session, container: string): void {
    if (container === session.container) return;
    this.#checkContainerCapacity(container);
    this.#count(session.container, -1);
    this.#count(container, +1);
    session.setContainer(container);
  }

  countByState(): Record<SessionState, number> {
    const counts: Record<SessionState, number> = {
      created: 0,
      connecting: 0,
      connected: 0,
      disconnected: 0,
      closed: 0,
    };
    for (const s of this.#sessions.values()) counts[s.state]++;
    return counts;
  }

  /** Asks every session idle past the timeout to close. Returns how many were asked. */
  sweep(nowMs: number): number {
    let closed = 0;
    for (const session of this.#sessions.values()) {
      if (nowMs - session.lastActivityMs >= this.#options.idleTimeoutMs) {
        session.requestClose('idle-timeout');
        closed++;
      }
    }
    return closed;
  }

  /** Asks every session to close and waits until all have (or the timeout passes). */
  async closeAll(reason: CloseReason, timeoutMs: number): Promise<void> {
    const pending = [...this.#sessions.values()].map(
      (s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve()))),
    );
    for (const s of this.#sessions.values()) s.requestClose(reason);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.all(pending), timeout]);
    clearTimeout(timer);
  }

  /** Stops the sweep. Sessions are ended through `closeAll` first. */
  close(): void {
    clearInterval(this.#sweepTimer);
  }

  #checkContainerCapacity(container: string): void {
    if ((this.#perContainer.get(container) ?? 0) >= this.#options.maxSessionsPerContainer) {
      throw new TermgateError(
        ErrorCodes.CAPACITY_CONTAINER,
        `container "${container}" already has ${this.#options.maxSessionsPerContainer} sessions, its limit`,
      );
    }
  }

  #count(container: string, delta: number): void {
    const n = (this.#perContainer.get(container) ?? 0) + delta;
    if (n <= 0) this.#perContainer.delete(container);
    else this.#perContainer.set(container, n);
  }

  #remove(session: Session, result: SessionResult): void {
    if (this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    this.#count(session.container, -1);
    this.safeEmit('remove', session, result);
  }
}
