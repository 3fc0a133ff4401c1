/**
 * All sessions of this agent by id: admission (duplicates, sessions per host and per container), the idle
 * sweep, and the end of every session in one place.
 */
import { ErrorCodes, TermgateError } from '../../common/errors.js';
import type { SessionId } from '../../common/protocol/signaling.js';
import type { CloseReason, SessionResult, SessionState } from '../../common/protocol/worker-messages.js';
import { SafeEmitter } from '../../common/SafeEmitter.js';
import { SessionHandle } from './SessionHandle.js';

export interface SessionRegistryOptions {
  maxSessions: number;
  maxSessionsPerContainer: number;
  /** A session with no message either way for this long is closed with 'idle-timeout'. */
  idleTimeoutMs: number;
  sweepIntervalMs: number;
}

/**
 * A slot held in a container for a session about to move there (connect_pty). It is taken before the
 * engine is asked, so no other session can take it meanwhile, and settled once: `commit()` moves the
 * session (unless it ended during the wait), `release()` gives the slot back.
 */
export interface SlotReservation {
  /** Moves the session's accounting to the reserved container; false if the session has ended meanwhile. */
  commit(): boolean;
  release(): void;
}

export interface SessionRegistryEvents {
  remove: [session: SessionHandle, result: SessionResult];
}

export class SessionRegistry extends SafeEmitter<SessionRegistryEvents> {
  readonly #options: SessionRegistryOptions;
  readonly #sessions = new Map<SessionId, SessionHandle>();
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

  get(id: SessionId): SessionHandle | undefined {
    return this.#sessions.get(id);
  }

  sessions(): IterableIterator<SessionHandle> {
    return this.#sessions.values();
  }

  /** Admits a new session for `container`, or throws why it cannot be admitted. */
  create(id: SessionId, container: string, grants: Iterable<string> = []): SessionHandle {
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
    const session = new SessionHandle(id, container, grants);
    this.#sessions.set(id, session);
    this.#count(container, +1);
    session.once('close', (result) => this.#remove(session, result));
    return session;
  }

  /**
   * Reserves a slot in `container` for `session` (connect_pty), within that container's limit, or throws
   * why not. Until settled the session counts in both containers, so a race never lets one exceed its
   * limit, and a session that ends before the commit gives the slot back.
   */
  reserveMove(session: SessionHandle, container: string): SlotReservation {
    if (container === session.container) {
      return {
        commit: () => !session.closed && this.#sessions.get(session.id) === session,
        release: () => {},
      };
    }
    this.#checkContainerCapacity(container);
    this.#count(container, +1);
    let settled = false;
    const release = () => {
      if (settled) return;
      settled = true;
      this.#count(container, -1);
    };
    return {
      release,
      commit: () => {
        if (settled) return false;
        if (session.closed || this.#sessions.get(session.id) !== session) {
          release();
          return false;
        }
        settled = true;
        this.#count(session.container, -1);
        session.setContainer(container);
        return true;
      },
    };
  }

  /** Sessions counted against `container` right now (reservations included). */
  containerCount(container: string): number {
    return this.#perContainer.get(container) ?? 0;
  }

  /** Every container's count, summed: equals `size` whenever no connect_pty is being decided. */
  containerSlots(): number {
    let sum = 0;
    for (const n of this.#perContainer.values()) sum += n;
    return sum;
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

  /**
   * Asks every session idle past the timeout to close. Returns how many were asked. A session still
   * being set up is not idle: the worker's setup timeout ends it if the browser never arrives, and a
   * slow setup (a loaded host, a far browser) must not be cut by a short idle timeout.
   */
  sweep(nowMs: number): number {
    let closed = 0;
    for (const session of this.#sessions.values()) {
      if (session.state === 'created' || session.state === 'connecting') continue;
      if (nowMs - session.lastActivityMs >= this.#options.idleTimeoutMs) {
        session.close('idle-timeout');
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
    for (const s of this.#sessions.values()) s.close(reason);
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

  #remove(session: SessionHandle, result: SessionResult): void {
    if (this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    this.#count(session.container, -1);
    this.safeEmit('remove', session, result);
  }
}
