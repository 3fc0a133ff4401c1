/**
 * Lets the kernel gather a streaming exec's small writes, so Node reads them in one piece. The engine
 * relays each PTY read as one write on the exec's socket (`yes` lines as ~470-byte writes, `seq` as
 * ~130-byte ones), and a reader that keeps up takes each with a read of its own: a syscall, a buffer and
 * a JavaScript callback per write, the larger part of the agent's CPU per MB for line output. While
 * output streams, each read of the socket is followed by a short pause of the socket (`readStop`), and
 * the writes that arrive meanwhile are taken by one read when it starts again.
 *
 * The pause is short on purpose: during it only the socket holds the output, and with small writes it
 * is full after ~14 KB (its limit counts each write's overhead), after which the engine, and the
 * program, wait. So each pause aims at `targetReadBytes` for the next read, from the rate the last read
 * showed, within `minPauseMs` and `maxPauseMs`; OutputFlow still gathers the larger pieces for the
 * channel in Node's buffer. A read of four times the target or more found a backlog (the engine's
 * pipeline had filled, as after a Ctrl-C): reading goes on without a pause until it is drained.
 *
 * Measured with a bare dockerode reader on this 2-core host, three rounds: a fixed 1 ms pause read `seq`
 * in 1.6–2.2 KiB pieces at 31–45 ms of CPU per MB, 3 ms in 4.6–5.5 KiB at 17–31 ms, at the same MB/s;
 * `yes` lines 3.6–4.5 KiB at 15–23 ms against 12–13 KiB at 9–10 ms. These bounds (an 8 KiB aim, 1–4 ms),
 * two rounds against the fixed 1 ms: `seq` in 5.8–6.4 KiB reads at 20 ms per MB (32–58), `yes` lines in
 * 8.4–8.6 KiB at 9.3–9.7 ms (15–16).
 *
 * What must not wait: a keystroke's echo. `streaming = false` (input was written) ends a pause at once
 * and stops pacing until output streams again.
 *
 * Node's socket keeps its own `reading` flag: a pause leaves it set (so a `read()` meanwhile does not
 * start reading again), and a pause is not taken, or not ended, while Node itself has stopped reading
 * (its buffer is full, or the stream is paused by its owner).
 */
import type { Duplex } from 'node:stream';
import { aimedWait } from './aimed-wait.js';

/** The part of a socket's libuv handle the pacer uses. */
interface ReadHandle {
  reading: boolean;
  readStop(): number;
  readStart(): number;
}

interface PushingStream {
  push(chunk: unknown, encoding?: BufferEncoding): boolean;
  destroyed: boolean;
  _handle?: unknown;
}

export interface PaceOptions {
  minPauseMs: number;
  maxPauseMs: number;
  /** The read size a pause aims at. */
  targetReadBytes: number;
}

export const DEFAULT_PACE: PaceOptions = { minPauseMs: 1, maxPauseMs: 4, targetReadBytes: 8 * 1024 };

export class SocketReadPacer {
  readonly #stream: PushingStream;
  readonly #handle: ReadHandle | undefined;
  readonly #options: PaceOptions;
  #lastReadMs = -Infinity;
  #streaming = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Paces `stream`'s reads if it is a socket with a handle; any other stream is read as it comes. */
  constructor(stream: Duplex, options: PaceOptions = DEFAULT_PACE) {
    this.#stream = stream;
    this.#options = options;
    this.#handle = readHandle(this.#stream._handle);
    if (!this.#handle || options.maxPauseMs <= 0) return;
    const push = this.#stream.push.bind(stream);
    this.#stream.push = (chunk, encoding) => {
      const more = push(chunk, encoding);
      if (chunk !== null) this.#afterRead(byteLength(chunk));
      return more;
    };
  }

  /**
   * The pause after a read of `bytes` that came `sinceLastMs` after the one before: long enough for
   * `targetReadBytes` at the rate it showed, none after a backlog.
   */
  pauseFor(bytes: number, sinceLastMs: number): number {
    const { minPauseMs: minMs, maxPauseMs: maxMs, targetReadBytes: targetBytes } = this.#options;
    if (bytes >= 4 * targetBytes) return 0;
    return aimedWait(bytes, sinceLastMs, { minMs, maxMs, targetBytes });
  }

  /**
   * Output streams (true), or input was written and its echo must be read the moment it comes (false):
   * only streaming output is paced.
   */
  set streaming(on: boolean) {
    this.#streaming = on;
    if (!on) this.#resume();
  }

  /** Ends a pause and pacing; the socket is left to its owner. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#resume();
  }

  #afterRead(bytes: number): void {
    const now = performance.now();
    const sinceLastMs = now - this.#lastReadMs;
    this.#lastReadMs = now;
    const handle = this.#handle!;
    if (!this.#streaming || this.#closed || this.#timer || !handle.reading) return;
    const pauseMs = this.pauseFor(bytes, sinceLastMs);
    if (pauseMs <= 0) return;
    handle.readStop();
    this.#timer = setTimeout(() => this.#resume(), pauseMs);
  }

  #resume(): void {
    if (!this.#timer) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const handle = this.#handle!;
    // Node stopped reading itself meanwhile, or the socket is gone: its own logic starts it again.
    if (handle.reading && !this.#stream.destroyed && this.#stream._handle === handle) handle.readStart();
  }
}

function byteLength(chunk: unknown): number {
  return chunk instanceof Uint8Array
    ? chunk.length
    : typeof chunk === 'string'
      ? Buffer.byteLength(chunk)
      : 0;
}

function readHandle(handle: unknown): ReadHandle | undefined {
  const h = handle as Partial<ReadHandle> | undefined;
  return h && typeof h.readStop === 'function' && typeof h.readStart === 'function' && 'reading' in h
    ? (h as ReadHandle)
    : undefined;
}
