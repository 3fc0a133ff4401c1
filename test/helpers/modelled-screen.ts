/**
 * A page's terminal that takes time to show output, for a simulated browser: each output is shown once
 * the ones before it are, at `bytesPerSecond` (as xterm.js works through its write queue), and then
 * counts as consumed (acked). Output then backs up on the agent as it does behind a real page whose
 * terminal is slower than the program in the shell.
 */
export class ModelledScreen {
  readonly #msPerByte: number;
  readonly #shown: (offset: number) => void;
  readonly #timers = new Set<NodeJS.Timeout>();
  #shownUntil = 0;

  constructor(bytesPerSecond: number, shown: (offset: number) => void) {
    this.#msPerByte = 1000 / bytesPerSecond;
    this.#shown = shown;
  }

  /** `bytes` of output through `offset` arrived. */
  received(bytes: number, offset: number): void {
    const now = performance.now();
    this.#shownUntil = Math.max(now, this.#shownUntil) + bytes * this.#msPerByte;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#shown(offset);
    }, this.#shownUntil - now);
    this.#timers.add(timer);
  }

  /** When the last output received is (or will be) on the screen, on `performance.now()`'s clock. */
  get lastShownAt(): number {
    return this.#shownUntil;
  }

  /** Stops showing. Idempotent. */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
