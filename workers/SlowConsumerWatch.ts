/**
 * Notices a browser that stopped taking its session's output. The PTY is paused once the channel's send
 * buffer passes the high-water mark and resumed when it drains below the low-water mark; a buffer that
 * does not drain for `timeoutMs` after a pause belongs to a browser that is gone or hostile, and holds a
 * root shell and up to a high-water mark of memory for nothing. Costs one timer per paused session.
 */
export class SlowConsumerWatch {
  readonly #timeoutMs: number;
  readonly #onSlow: () => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, onSlow: () => void) {
    this.#timeoutMs = timeoutMs;
    this.#onSlow = onSlow;
  }

  /** The output was paused for congestion: start the clock unless it runs already. */
  congested(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#onSlow();
    }, this.#timeoutMs);
  }

  /** The send buffer drained below the low-water mark. */
  drained(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  close(): void {
    this.drained();
  }
}
