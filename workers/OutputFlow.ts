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
 *
 * An interrupt key typed while output was backed up (the channel congested now or a moment ago) starts
 * a flush (InterruptFlush): output is read at once, congested or not, until the TTY's `^C` echo shows
 * what came before the interrupt, which is dropped; without an echo, what was read goes on in order once
 * `quietMs` pass with nothing to read or `maxHeldBytes` were read.
 */

import { aimedWait } from './aimed-wait.js';
import { InterruptFlush } from './InterruptFlush.js';

/** The stream, in paused mode: `read()` returns everything buffered, or null. */
export interface OutputSource {
  read(): Buffer | null;
  readonly readableHighWaterMark: number;
  /** Told whether output streams (the socket's reads may be paced: SocketReadPacer) or an echo is due. */
  pace?(streaming: boolean): void;
}

/** Where the output goes. */
export interface OutputSink {
  deliver(chunk: Buffer): void;
  /** Output written before an interrupt was dropped (see InterruptFlush). */
  flushed(bytes: number): void;
}

export interface InterruptFlushOptions {
  /** Read this much without the `^C` echo and the flush gives up (nothing dropped). */
  maxHeldBytes: number;
  /** Nothing to read this long without the echo, and the flush gives up. */
  quietMs: number;
  /** The channel was congested within this long before the key: output was backed up. */
  backedUpMs: number;
}

export interface OutputFlowOptions {
  minHoldMs: number;
  maxHoldMs: number;
  /** The piece size a hold aims at. */
  targetReadBytes: number;
  /** Flush what the engine holds after an interrupt key (`--flush-on-interrupt`); undefined: never. */
  interrupt?: InterruptFlushOptions;
}

/**
 * The engine's pipeline held 0.83–1.18 MB ahead of the echo with a bare reader here, and up to 2.04 MB
 * behind Chromium with both cores busy (a flush that gives up at its maximum drops nothing, so the
 * flood runs on: seen once in CI at 2 MiB), so 4 MiB; a busy engine can pause for tens of ms while it
 * drains, hence 100 ms of quiet before giving up.
 */
export const DEFAULT_INTERRUPT_FLUSH: InterruptFlushOptions = {
  maxHeldBytes: 4 * 1024 * 1024,
  quietMs: 100,
  backedUpMs: 250,
};

export const DEFAULT_OUTPUT_FLOW: OutputFlowOptions = {
  minHoldMs: 1,
  maxHoldMs: 10,
  targetReadBytes: 32 * 1024,
  interrupt: DEFAULT_INTERRUPT_FLUSH,
};

/** The clock the flow reads; a test replaces it. */
export type Clock = () => number;

export class OutputFlow {
  readonly #source: OutputSource;
  readonly #sink: OutputSink;
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
  /** When the channel was last congested; -Infinity before. */
  #congestedAtMs = -Infinity;
  /** A flush after an interrupt key is looking for the echo. */
  #flush: InterruptFlush | undefined;
  #quiet: NodeJS.Timeout | undefined;

  constructor(
    source: OutputSource,
    sink: OutputSink,
    options: OutputFlowOptions = DEFAULT_OUTPUT_FLOW,
    now: Clock = () => performance.now(),
  ) {
    this.#source = source;
    this.#sink = sink;
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
    this.#congestedAtMs = this.#now();
    this.#pump();
  }

  /** Input was written to the shell: its echo must not wait. */
  inputWritten(): void {
    this.#echoDue = true;
    this.#source.pace?.(false);
    this.#endHold();
  }

  /**
   * The interrupt key went to the shell: if output was backed up, what the engine holds from before it
   * is flushed (see InterruptFlush).
   */
  interrupted(): void {
    const flush = this.#options.interrupt;
    if (!flush || this.#flush || !this.#started || this.#closed) return;
    if (!this.#congested && this.#now() - this.#congestedAtMs > flush.backedUpMs) return;
    this.#flush = new InterruptFlush(flush.maxHeldBytes);
    this.#source.pace?.(false);
    this.#armQuiet();
    this.#endHold();
    this.#pump();
  }

  /** The stream ended: a flush still looking for the echo hands on what it read. */
  ended(): void {
    this.#giveUpFlush();
  }

  /** True while output may be read now: a flush reads even through congestion and holds. */
  get reading(): boolean {
    if (!this.#started || this.#closed) return false;
    return this.#flush !== undefined || (!this.#congested && !this.#hold);
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
    clearTimeout(this.#quiet);
    this.#flush = undefined;
  }

  #pump(): void {
    while (this.reading) {
      const chunk = this.#source.read();
      if (chunk === null) return; // 'readable' comes when there is more
      if (this.#flush) this.#flushing(this.#flush, chunk);
      else {
        this.#sink.deliver(chunk);
        this.#afterRead(chunk.length);
      }
    }
  }

  #flushing(flush: InterruptFlush, chunk: Buffer): void {
    const step = flush.take(chunk);
    if (step.kind === 'holding') {
      this.#armQuiet();
      return;
    }
    this.#endFlush();
    if (step.kind === 'found') {
      this.#sink.flushed(step.dropped);
      this.#sink.deliver(step.rest);
    } else {
      for (const held of step.held) this.#sink.deliver(held);
    }
  }

  #armQuiet(): void {
    clearTimeout(this.#quiet);
    const quietMs = this.#options.interrupt?.quietMs ?? 0;
    this.#quiet = setTimeout(() => {
      this.#giveUpFlush();
      this.#pump();
    }, quietMs);
  }

  /** No echo came: what the flush read goes on in order, nothing dropped. */
  #giveUpFlush(): void {
    const flush = this.#flush;
    if (!flush) return;
    this.#endFlush();
    for (const held of flush.release()) this.#sink.deliver(held);
  }

  #endFlush(): void {
    clearTimeout(this.#quiet);
    this.#quiet = undefined;
    this.#flush = undefined;
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
