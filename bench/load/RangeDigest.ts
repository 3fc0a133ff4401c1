/**
 * sha256 of the bytes between two offsets of a stream that are only known while it streams: the start
 * once a start marker has been seen, the end once an end marker has. Chunks are hashed as they pass,
 * held back by `lag` bytes (at least the end marker's length), so an end found late still bounds what
 * was hashed. Nothing is copied or joined: a 200 MB transfer costs the hash and a few held references.
 */
import { createHash, type Hash } from 'node:crypto';

export class RangeDigest {
  readonly #lag: number;
  readonly #hash: Hash = createHash('sha256');
  /** Chunks not hashed yet, with their absolute offsets. */
  #held: Array<{ chunk: Buffer; offset: number }> = [];
  #digest: string | undefined;

  constructor(lag: number) {
    this.#lag = lag;
  }

  /**
   * Feeds the chunk at absolute `offset`. `from` (inclusive) and `to` (exclusive) bound the range once
   * known; `from` is known no later than the chunk that carries the start marker's last byte.
   */
  push(chunk: Buffer, offset: number, from: number | undefined, to: number | undefined): void {
    if (this.#digest !== undefined) return;
    if (from === undefined) return; // everything so far lies before the range
    this.#held.push({ chunk, offset });
    const streamEnd = offset + chunk.length;
    while (this.#held.length > 0) {
      const { chunk: c, offset: o } = this.#held[0]!;
      if (to === undefined && o + c.length > streamEnd - this.#lag) break;
      const start = Math.max(from, o) - o;
      const end = Math.min(to ?? Infinity, o + c.length) - o;
      if (end > start) this.#hash.update(c.subarray(start, end));
      this.#held.shift();
    }
    if (to !== undefined) this.#digest = this.#hash.digest('hex');
  }

  /** The hex sha256 once the end was seen, else undefined. */
  get digest(): string | undefined {
    return this.#digest;
  }
}
