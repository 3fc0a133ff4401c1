/**
 * Attaching a session's terminal again after its container stopped (`pty_disconnected` with reason
 * `container-stopped`): the peer connection stays, and a `connect_pty` to the same container attaches a
 * new shell once the container runs again. One try per click, or, with the automatic setting, tries
 * with a growing wait until one succeeds: the agent refuses a try while the container is down
 * (`TG_ERR_CONTAINER_NOT_RUNNING`) and lets few `connect_pty` reach the engine (`TG_ERR_RATE_LIMITED`).
 */

/** The first automatic try waits this long; each refused one doubles the wait, up to the cap. */
const FIRST_WAIT_MS = 1000;
const MAX_WAIT_MS = 10_000;
/** A try neither granted nor refused by then counts as refused (the agent may take two Docker timeouts). */
const ANSWER_TIMEOUT_MS = 30_000;

export class Reattacher {
  readonly #send: () => void;
  #auto: boolean;
  #detached = false;
  #trying = false;
  #waitMs = FIRST_WAIT_MS;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `send` sends one `connect_pty`; its answer comes back as `attached()` or `refused()`. */
  constructor(send: () => void, auto: boolean) {
    this.#send = send;
    this.#auto = auto;
  }

  /** True from a container's stop until a terminal is attached again. */
  get isDetached(): boolean {
    return this.#detached;
  }

  /** True while a try waits for its answer. */
  get trying(): boolean {
    return this.#trying;
  }

  /** The container stopped: with the automatic setting, tries start. */
  detached(): void {
    this.#detached = true;
    this.#waitMs = FIRST_WAIT_MS;
    if (this.#auto) this.#schedule();
  }

  /** The automatic setting changed; turned on while detached, a try goes at once. */
  setAuto(on: boolean): void {
    this.#auto = on;
    if (on && this.#detached && !this.#trying) this.tryNow();
    if (!on && !this.#trying) clearTimeout(this.#timer);
  }

  /** One try now (the button), unless one already waits for its answer. */
  tryNow(): void {
    if (!this.#detached || this.#trying) return;
    clearTimeout(this.#timer);
    this.#trying = true;
    this.#timer = setTimeout(() => this.refused(), ANSWER_TIMEOUT_MS);
    this.#send();
  }

  /** The try was refused (the container is not back yet): with the automatic setting, try again later. */
  refused(): void {
    if (!this.#trying) return;
    this.#trying = false;
    clearTimeout(this.#timer);
    if (this.#auto && this.#detached) this.#schedule();
  }

  /** A terminal is attached again (`pty_connected`). */
  attached(): void {
    this.#detached = false;
    this.#trying = false;
    clearTimeout(this.#timer);
  }

  /** Stops every try; idempotent. */
  close(): void {
    this.attached();
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    const waitMs = this.#waitMs;
    this.#waitMs = Math.min(this.#waitMs * 2, MAX_WAIT_MS);
    this.#timer = setTimeout(() => this.tryNow(), waitMs);
  }
}
