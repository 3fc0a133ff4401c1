/**
 * A session's recent PTY output, kept so a browser that comes back (resume, issue 13) gets exactly the
 * bytes it missed. Bytes are numbered from the session's first output byte; `end` is the count of all
 * bytes appended so far (the `offset` an `output` message carries), `start` the number of the oldest
 * byte still held.
 *
 * While the browser is connected the buffer is a ring: it keeps the most recent `capacity` bytes sent,
 * so what was in flight when the connection dropped can be sent again. Once `pin()`ned (the browser is
 * gone) nothing is dropped any more: the owner stops reading the shell when `full` (so nothing is lost)
 * until the browser is back (`unpin()`) or the grace ends. `acknowledge(offset)` drops what the browser
 * confirmed it has, for the `ack` message (not wired here).
 *
 * Bytes are copied into blocks the buffer owns: a PTY chunk may be a slice of a larger allocation that
 * would otherwise stay alive with it, and many tiny chunks (keystroke echoes) share one block. So memory
 * is `size` rounded up to a block, plus one block, whatever the chunks were.
 */

/** Small chunks are gathered into blocks of this size; a larger chunk gets a block of its own. */
const BLOCK_BYTES = 4096;

interface Block {
  bytes: Buffer;
  /** Bytes of `bytes` in use. */
  used: number;
}

export class ReplayBuffer {
  readonly capacity: number;
  readonly #blocks: Block[] = [];
  /** Bytes of the first block already dropped. */
  #skip = 0;
  #start = 0;
  #end = 0;
  #pinned = false;

  /** `capacity`: bytes kept (default of `--replay-buffer`: 1 MiB). */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0)
      throw new TypeError(`ReplayBuffer capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  /** The number of the next byte: all bytes ever appended. */
  get end(): number {
    return this.#end;
  }

  /** The number of the oldest byte held. */
  get start(): number {
    return this.#start;
  }

  /** Bytes held. */
  get size(): number {
    return this.#end - this.#start;
  }

  /** At or past capacity: a pinned buffer's owner must stop reading the shell. */
  get full(): boolean {
    return this.size >= this.capacity;
  }

  /** Bytes of memory the blocks take (for the memory note and metrics). */
  get retainedBytes(): number {
    let sum = 0;
    for (const block of this.#blocks) sum += block.bytes.length;
    return sum;
  }

  get pinned(): boolean {
    return this.#pinned;
  }

  /** Appends output; unpinned, the oldest bytes past capacity are dropped. */
  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#copyIn(chunk);
    this.#end += chunk.length;
    if (!this.#pinned) this.#dropTo(this.#end - this.capacity);
  }

  /** The browser is gone: nothing is dropped until `unpin()` (the owner pauses the shell when `full`). */
  pin(): void {
    this.#pinned = true;
  }

  /** The browser is back: the buffer is a ring again. */
  unpin(): void {
    this.#pinned = false;
    this.#dropTo(this.#end - this.capacity);
  }

  /** True if the bytes from `offset` to `end` are all held. */
  has(offset: number): boolean {
    return Number.isInteger(offset) && offset >= this.#start && offset <= this.#end;
  }

  /** The bytes from `offset` to `end`, as views of the blocks (valid until the next append). */
  since(offset: number): Buffer[] {
    if (!this.has(offset))
      throw new RangeError(`bytes from ${offset} are not held (${this.#start}…${this.#end})`);
    const pieces: Buffer[] = [];
    let at = this.#start; // the number of the first byte of the current block's live part
    for (const [i, block] of this.#blocks.entries()) {
      const from = i === 0 ? this.#skip : 0;
      const length = block.used - from;
      const skip = Math.max(0, offset - at);
      if (skip < length) pieces.push(block.bytes.subarray(from + skip, block.used));
      at += length;
    }
    return pieces;
  }

  /** The browser has every byte before `offset`: they need not be kept for it. */
  acknowledge(offset: number): void {
    this.#dropTo(Math.min(offset, this.#end));
  }

  #copyIn(chunk: Uint8Array): void {
    const last = this.#blocks.at(-1);
    let from = 0;
    if (last && last.used < last.bytes.length) {
      const n = Math.min(last.bytes.length - last.used, chunk.length);
      last.bytes.set(chunk.subarray(0, n), last.used);
      last.used += n;
      from = n;
    }
    const rest = chunk.length - from;
    if (rest === 0) return;
    const bytes = Buffer.allocUnsafeSlow(Math.max(rest, BLOCK_BYTES));
    bytes.set(chunk.subarray(from), 0);
    this.#blocks.push({ bytes, used: rest });
  }

  /** Drops every byte numbered below `offset`. */
  #dropTo(offset: number): void {
    let drop = offset - this.#start;
    while (drop > 0 && this.#blocks.length > 0) {
      const first = this.#blocks[0]!;
      const live = first.used - this.#skip;
      if (drop < live) {
        this.#skip += drop;
        this.#start += drop;
        return;
      }
      this.#blocks.shift();
      this.#skip = 0;
      this.#start += live;
      drop -= live;
    }
  }
}
