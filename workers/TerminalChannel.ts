/**
 * The `terminal` data channel of one session: decodes and validates what the browser sends, encodes what
 * the agent sends in the browser's encoding (JSON for text, msgpack for binary), frames output as whole
 * UTF-8 characters in JSON mode, and reports congestion so the PTY can be paused.
 */
import { ErrorCodes, toErrorData, type ErrorData } from '../src/errors.js';
import {
  decodeInbound,
  encodeOutbound,
  type Encoding,
  type InboundMessage,
  type OutboundMessage,
} from '../src/protocol/terminal-messages.js';
import { StatSlot } from '../src/protocol/session-stats.js';
import { RateLimiter } from '../src/routing/RateLimiter.js';
import { SafeEmitter } from '../src/SafeEmitter.js';
import type { DataChannel } from './native-addon.js';
import { completeUtf8Length, utf8Chunks } from './utf8.js';

/** Output arriving within this long of the last flush is treated as a stream and batched. */
const STREAM_WINDOW_MS = 2;

export interface TerminalChannelOptions {
  maxMessageBytes: number;
  outputChunkBytes: number;
  highWaterMark: number;
  lowWaterMark: number;
  /** Messages the browser may send per second; past it messages are dropped with one error. */
  maxMessagesPerSecond: number;
}

export interface TerminalChannelEvents {
  open: [];
  message: [message: InboundMessage];
  /** A message was refused; the browser has already been told. */
  'protocol-error': [error: ErrorData];
  /** The buffered amount fell below the low-water mark. */
  drain: [];
  close: [];
}

export class TerminalChannel extends SafeEmitter<TerminalChannelEvents> {
  // The reference itself matters: an unreferenced native channel is collected and reset under our feet.
  readonly #dc: DataChannel;
  readonly #options: TerminalChannelOptions;
  readonly #stats: Float64Array;
  #encoding: Encoding = 'json';
  /** Bytes of an incomplete UTF-8 character held back from the last output chunk (JSON mode). */
  #carry: Buffer | undefined;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  #lastFlushMs = -Infinity;
  #closed = false;
  readonly #limiter: RateLimiter;
  /** In a rate-limited episode: the browser was told once, later messages are dropped silently. */
  #limited = false;

  constructor(dc: DataChannel, options: TerminalChannelOptions, stats: Float64Array) {
    super();
    this.#dc = dc;
    this.#options = options;
    this.#stats = stats;
    this.#limiter = new RateLimiter(options.maxMessagesPerSecond);
    dc.setBufferedAmountLowThreshold(options.lowWaterMark);
    dc.onOpen(() => this.safeEmit('open'));
    dc.onClosed(() => this.#onRemoteClose());
    dc.onError(() => this.#onRemoteClose());
    dc.onBufferedAmountLow(() => this.safeEmit('drain'));
    dc.onMessage((raw) => this.#onMessage(raw));
  }

  get isOpen(): boolean {
    return !this.#closed && this.#dc.isOpen();
  }

  get encoding(): Encoding {
    return this.#encoding;
  }

  /** True while more than the high-water mark waits in the channel's send buffer. */
  get congested(): boolean {
    return this.isOpen && this.#dc.bufferedAmount() > this.#options.highWaterMark;
  }

  /** Sends one protocol message; false if the channel is gone (never throws: see NOTES on native aborts). */
  send(message: OutboundMessage): boolean {
    if (!this.isOpen) return false;
    // Output queued before this message goes first: order on the channel is the order of events.
    if (message.type !== 'output' && this.#pendingBytes > 0) this.#flushOutput();
    const encoded = encodeOutbound(message, this.#encoding);
    try {
      this.#dc[typeof encoded === 'string' ? 'sendMessage' : 'sendMessageBinary'](encoded as never);
    } catch {
      return false;
    }
    this.#stats[StatSlot.messagesToBrowser]! += 1;
    this.#stats[StatSlot.lastActivityMs] = Date.now();
    return true;
  }

  /**
   * Queues terminal output. A TTY hands over one small read at a time (often a few hundred bytes, one
   * per event-loop turn), and each message has a fixed cost (SCTP framing, encoding, the browser's
   * onmessage). Output after a quiet spell (a keystroke's echo) goes out on the next turn; output that
   * follows output within `STREAM_WINDOW_MS` is a stream and is gathered for up to that long, into
   * messages of up to `outputChunkBytes`.
   */
  sendOutput(chunk: Buffer): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes >= this.#options.outputChunkBytes) this.#flushOutput();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      const streaming = performance.now() - this.#lastFlushMs < STREAM_WINDOW_MS;
      if (streaming) setTimeout(() => this.#flushOutput(), STREAM_WINDOW_MS);
      else setImmediate(() => this.#flushOutput());
    }
  }

  /** Sends queued output, whole UTF-8 characters only in JSON mode. */
  #flushOutput(): void {
    this.#flushScheduled = false;
    if (this.#pendingBytes === 0) return;
    this.#lastFlushMs = performance.now();
    const queued = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    let bytes = this.#carry ? Buffer.concat([this.#carry, queued]) : queued;
    this.#carry = undefined;
    if (this.#encoding === 'json') {
      const complete = completeUtf8Length(bytes);
      if (complete < bytes.length) this.#carry = Buffer.from(bytes.subarray(complete));
      bytes = bytes.subarray(0, complete);
    }
    for (const piece of utf8Chunks(bytes, this.#options.outputChunkBytes)) {
      if (!this.#sendBytes(piece)) return;
    }
  }

  #sendBytes(piece: Buffer): boolean {
    const data = this.#encoding === 'json' ? piece.toString('utf8') : piece;
    if (!this.send({ type: 'output', data })) return false;
    this.#stats[StatSlot.bytesToBrowser]! += piece.length;
    return true;
  }

  /** Tells the browser about a refused message and counts it. */
  sendError(error: ErrorData): void {
    this.#stats[StatSlot.protocolErrors]! += 1;
    this.send({ type: 'error', code: error.code, message: error.message });
  }

  /** Resolves once queued output is sent and the send buffer is empty, or after `timeoutMs`. */
  async flushed(timeoutMs: number): Promise<void> {
    this.#flushOutput();
    const deadline = performance.now() + timeoutMs;
    while (this.isOpen && this.#dc.bufferedAmount() > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * Closes the channel the orderly way: the stream reset is queued behind the data already sent, and
   * the remote's acknowledgement (`onClosed`) means it has everything. Waits at most `timeoutMs`.
   */
  async closeGracefully(timeoutMs: number): Promise<void> {
    if (this.#closed) return;
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    try {
      this.#dc.close();
    } catch {
      // Already closed natively: onClosed has fired or will not.
    }
    await closed;
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#dc.close();
    } catch {
      // Already closed natively.
    }
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #onRemoteClose(): void {
    if (this.#closed) return;
    this.close();
  }

  #onMessage(raw: string | Buffer | ArrayBuffer): void {
    if (this.#closed) return;
    const input = raw instanceof ArrayBuffer ? Buffer.from(raw) : raw;
    this.#stats[StatSlot.messagesFromBrowser]! += 1;
    this.#stats[StatSlot.lastActivityMs] = Date.now();
    // A flood (pings or anything else) costs the worker's other sessions; cap one session's share. The
    // error goes out once per episode, so a flood is never answered by a flood.
    if (!this.#limiter.tryTake()) {
      this.#stats[StatSlot.protocolErrors]! += 1;
      if (!this.#limited) {
        this.#limited = true;
        const error = {
          code: ErrorCodes.RATE_LIMITED,
          message: `more than ${this.#options.maxMessagesPerSecond} messages a second; messages are dropped until the rate falls`,
        };
        this.send({ type: 'error', code: error.code, message: error.message });
        this.safeEmit('protocol-error', error);
      }
      return;
    }
    this.#limited = false;
    try {
      const { message, encoding } = decodeInbound(input, this.#options.maxMessageBytes);
      this.#switchEncoding(encoding);
      if (message.type === 'input') {
        // What follows a keystroke is its echo, not a stream: it goes out on the next turn, unbatched,
        // even when the keystrokes come faster than the stream window (a fast typist, a paste).
        this.#lastFlushMs = -Infinity;
        this.#stats[StatSlot.bytesFromBrowser]! +=
          typeof message.data === 'string' ? Buffer.byteLength(message.data) : message.data.byteLength;
      }
      this.safeEmit('message', message);
    } catch (err) {
      // A binary message that fails to decode still tells us how the browser speaks.
      this.#switchEncoding(typeof input === 'string' ? 'json' : 'msgpack');
      const error = toErrorData(err, ErrorCodes.INVALID_MESSAGE);
      this.sendError(error);
      this.safeEmit('protocol-error', error);
    }
  }

  /** The agent answers in the encoding of the browser's latest message. */
  #switchEncoding(encoding: Encoding): void {
    if (encoding === this.#encoding) return;
    this.#encoding = encoding;
    // Bytes held for a whole character are sent raw once the browser speaks binary; in JSON they wait.
    if (encoding === 'msgpack' && this.#carry) {
      const carry = this.#carry;
      this.#carry = undefined;
      this.#sendBytes(carry);
    }
  }
}
