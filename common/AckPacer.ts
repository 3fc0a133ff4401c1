/**
 * When a browser acknowledges the output it has consumed (the `ack` message, see AckWindow on the
 * agent): once `everyBytes` more were consumed since the last ack, and once output has been quiet for
 * `quietMs`, so the end of a burst is always acked and an agent window smaller than `everyBytes` never
 * waits for an ack that would not come. Acks count against the session's message rate, hence batched.
 * Used by the page and by the simulated browsers of tests and bench.
 */
export interface AckPacerOptions {
  everyBytes: number;
  quietMs: number;
}

export const DEFAULT_ACK_PACING: AckPacerOptions = { everyBytes: 32 * 1024, quietMs: 20 };

export class AckPacer {
  readonly #send: (offset: number) => void;
  readonly #options: AckPacerOptions;
  #consumed = 0;
  #acked = 0;
  #quiet: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(send: (offset: number) => void, options: AckPacerOptions = DEFAULT_ACK_PACING) {
    this.#send = send;
    this.#options = options;
  }

  /** Output through `offset` was consumed (shown, or taken by the reader). */
  consumed(offset: number): void {
    if (this.#closed || offset <= this.#consumed) return;
    this.#consumed = offset;
    clearTimeout(this.#quiet);
    this.#quiet = undefined;
    if (offset - this.#acked >= this.#options.everyBytes) this.#flush();
    else this.#quiet = setTimeout(() => this.#flush(), this.#options.quietMs);
  }

  /** Stops acking. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#quiet);
  }

  #flush(): void {
    this.#quiet = undefined;
    if (this.#closed || this.#consumed === this.#acked) return;
    this.#acked = this.#consumed;
    this.#send(this.#acked);
  }
}
