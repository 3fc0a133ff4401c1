/**
 * A session's PTY resizes, one engine call at a time. A resize is an HTTP call to the Docker engine, and a
 * browser can send hundreds a second (a window dragged, or a hostile page): while one is in flight only
 * the latest size waits, the rest are dropped. Input typed meanwhile is held, so "resize, then run stty"
 * sees the new size; the hold is bounded in bytes, and input past it is refused.
 */
export interface Size {
  cols: number;
  rows: number;
}

export interface ResizeQueueOptions {
  /** Input bytes held behind a resize before `hold()` refuses more. */
  maxHeldBytes: number;
  /** Applies one resize to the current PTY. */
  apply: (size: Size) => Promise<void>;
  onError: (err: unknown) => void;
  /** Gets the held input once no resize is in flight. */
  release: (data: string | Uint8Array) => void;
}

export class ResizeQueue {
  readonly #o: ResizeQueueOptions;
  #inFlight = false;
  #next: Size | undefined;
  #held: Array<string | Uint8Array> = [];
  #heldBytes = 0;
  #closed = false;

  constructor(options: ResizeQueueOptions) {
    this.#o = options;
  }

  /** True while a resize is being applied: input should be held. */
  get busy(): boolean {
    return this.#inFlight;
  }

  /** Resizes now, or after the resize in flight (only the latest request waits). */
  request(size: Size): void {
    if (this.#closed) return;
    if (this.#inFlight) {
      this.#next = size;
      return;
    }
    void this.#run(size);
  }

  /** Holds input until the resizes are done; false when the hold is full. */
  hold(data: string | Uint8Array): boolean {
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (this.#heldBytes + bytes > this.#o.maxHeldBytes) return false;
    this.#held.push(data);
    this.#heldBytes += bytes;
    return true;
  }

  /** Drops anything waiting; later requests are ignored. */
  close(): void {
    this.#closed = true;
    this.#next = undefined;
    this.#held = [];
    this.#heldBytes = 0;
  }

  async #run(first: Size): Promise<void> {
    this.#inFlight = true;
    for (let size: Size | undefined = first; size && !this.#closed; size = this.#takeNext()) {
      try {
        await this.#o.apply(size);
      } catch (err) {
        this.#o.onError(err);
      }
    }
    this.#inFlight = false;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const data of held) this.#o.release(data);
  }

  #takeNext(): Size | undefined {
    const next = this.#next;
    this.#next = undefined;
    return next;
  }
}
