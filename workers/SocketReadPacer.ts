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
 * program, wait. OutputFlow still gathers the larger pieces for the channel in Node's buffer.
 *
 * What must not wait: a keystroke's echo. `streaming = false` (input was written) ends a pause at once
 * and stops pacing until output streams again.
 *
 * Node's socket keeps its own `reading` flag: a pause leaves it set (so a `read()` meanwhile does not
 * start reading again), and a pause is not taken, or not ended, while Node itself has stopped reading
 * (its buffer is full, or the stream is paused by its owner).
 */
import type { Duplex } from 'node:stream';

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

export class SocketReadPacer {
  readonly #stream: PushingStream;
  readonly #handle: ReadHandle | undefined;
  readonly #pauseMs: number;
  #streaming = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Paces `stream`'s reads if it is a socket with a handle; any other stream is read as it comes. */
  constructor(stream: Duplex, pauseMs: number) {
    this.#stream = stream;
    this.#pauseMs = pauseMs;
    this.#handle = readHandle(this.#stream._handle);
    if (!this.#handle || pauseMs <= 0) return;
    const push = this.#stream.push.bind(stream);
    this.#stream.push = (chunk, encoding) => {
      const more = push(chunk, encoding);
      if (chunk !== null) this.#afterRead();
      return more;
    };
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

  #afterRead(): void {
    const handle = this.#handle!;
    if (!this.#streaming || this.#closed || this.#timer || !handle.reading) return;
    handle.readStop();
    this.#timer = setTimeout(() => this.#resume(), this.#pauseMs);
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

function readHandle(handle: unknown): ReadHandle | undefined {
  const h = handle as Partial<ReadHandle> | undefined;
  return h && typeof h.readStop === 'function' && typeof h.readStart === 'function' && 'reading' in h
    ? (h as ReadHandle)
    : undefined;
}
