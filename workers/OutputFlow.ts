/**
 * When a PTY's output is read. A TTY exec hands its output over in the pieces the program and the engine
 * wrote: `yes` lines arrive as ~470-byte reads, `seq` as ~130-byte ones, and every piece handed on costs
 * the same whatever its size (an event, an encoded message, a native send that wakes libdatachannel's
 * threads). So the stream is read in paused mode: after a piece that did not fill the stream's buffer,
 * reading holds for a few milliseconds while the buffer and the exec socket fill, then takes everything
 * buffered at once (`Readable.read()`), as one piece.
 *
 * Measured on this 2-core host with a bare dockerode reader of `yes 0123456789abcdef | head -c` and
 * `seq`: read as they come, 44,000 pieces of 718 bytes per 30 MB and 26 ms of CPU per MB (`seq`: 130
 * bytes, 110 ms per MB). Paused mode with a 10 ms hold: 21–28 KB per piece, 17–27 ms per MB (`seq` 12–18
 * KB, 47–96 ms per MB) at the direct reader's MB/s. Pausing a flowing stream instead reads fewer, larger
 * pieces, but then only the exec socket holds the output during a hold, and with `seq`'s small writes
 * the socket's buffer is full after ~14 KB: `seq` fell to half its MB/s. A bare node-datachannel sender
 * at ~6 MB/s: 16 KB every 2 ms cost 35 ms per MB, the same bytes in 64 KB bursts every 10 ms 19 ms per
 * MB, so fewer, larger sends are what makes libdatachannel cheap.
 *
 * The hold aims at `targetReadBytes` per piece from the rate the last piece showed, within `minHoldMs`
 * and `maxHoldMs`. A piece of at least the stream's high-water mark found its buffer full (Node had
 * stopped reading the socket): more is waiting, so no hold.
 *
 * What must not wait: a keystroke's echo. Input written to the shell ends a hold at once and exempts the
 * next piece, so the echo leaves as soon as it is read.
 *
 * Output is read while reading has started, no hold runs and the channel is not congested.
 *
 * Node's own reads of the socket are paced apart while output streams (SocketReadPacer): the source is
 * told when a hold starts (streaming) and when input was written (an echo is due).
 */

import { aimedWait } from './aimed-wait.js';

/** The stream, in paused mode: `read()` returns everything buffered, or null. */
export interface OutputSource {
  read(): Buffer | null;
  readonly readableHighWaterMark: number;
  /** Told whether output streams (the socket's reads may be paced: SocketReadPacer) or an echo is due. */
  pace?(streaming: boolean): void;
}

export interface OutputFlowOptions {
  minHoldMs: number;
  maxHoldMs: number;
  /** The piece size a hold aims at. */
  targetReadBytes: number;
}

export const DEFAULT_OUTPUT_FLOW: OutputFlowOptions = {
  minHoldMs: 1,
  maxHoldMs: 10,
  targetReadBytes: 32 * 1024,
};

/** The clock the flow reads; a test replaces it. */
export type Clock = () => number;

export class OutputFlow {
  readonly #source: OutputSource;
  readonly #deliver: (chunk: Buffer) => void;
  readonly #options: OutputFlowOptions;
  readonly #now: Clock;
  #started = false;
  #congested = false;
  #closed = false;
  #hold: NodeJS.Timeout | undefined;
  /** Input went to the shell: what comes back next is its echo. */
  #echoDue = false;
  /** When the last piece was handed on; -Infinity before the first. */
  #lastReadMs = -Infinity;

  constructor(
    source: OutputSource,
    deliver: (chunk: Buffer) => void,
    options: OutputFlowOptions = DEFAULT_OUTPUT_FLOW,
    now: Clock = () => performance.now(),
  ) {
    this.#source = source;
    this.#deliver = deliver;
    this.#options = options;
    this.#now = now;
  }

  /** Reading begins (the stream holds what arrived before). */
  start(): void {
    this.#started = true;
    this.#pump();
  }

  /** The stream has data ('readable'). */
  readable(): void {
    this.#pump();
  }

  /** The channel's send buffer passed its high-water mark. */
  congest(): void {
    this.#congested = true;
  }

  /** The channel's send buffer drained. */
  relieve(): void {
    this.#congested = false;
    this.#pump();
  }

  /** Input was written to the shell: its echo must not wait. */
  inputWritten(): void {
    this.#echoDue = true;
    this.#source.pace?.(false);
    this.#endHold();
  }

  /** True while output may be read now. */
  get reading(): boolean {
    return this.#started && !this.#congested && !this.#hold && !this.#closed;
  }

  /** The hold after a piece of `bytes` that came `sinceLastMs` after the one before. */
  holdFor(bytes: number, sinceLastMs: number): number {
    const { minHoldMs: minMs, maxHoldMs: maxMs, targetReadBytes: targetBytes } = this.#options;
    return aimedWait(bytes, sinceLastMs, { minMs, maxMs, targetBytes });
  }

  /** Stops reading and the hold timer; the stream is left to its owner. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#hold);
    this.#hold = undefined;
  }

  #pump(): void {
    while (this.reading) {
      const chunk = this.#source.read();
      if (chunk === null) return; // 'readable' comes when there is more
      this.#deliver(chunk);
      this.#afterRead(chunk.length);
    }
  }

  #afterRead(bytes: number): void {
    const now = this.#now();
    const sinceLastMs = now - this.#lastReadMs;
    this.#lastReadMs = now;
    if (this.#echoDue) {
      this.#echoDue = false;
      return;
    }
    if (this.#closed) return;
    this.#source.pace?.(true);
    if (bytes >= this.#source.readableHighWaterMark) return;
    this.#hold = setTimeout(() => this.#endHold(), this.holdFor(bytes, sinceLastMs));
  }

  #endHold(): void {
    if (!this.#hold) return;
    clearTimeout(this.#hold);
    this.#hold = undefined;
    this.#pump();
  }
}
