/**
 * The `terminal` data channel of one session: decodes and validates what the browser sends, encodes what
 * the agent sends in the browser's encoding (JSON for text, msgpack for binary), frames output as whole
 * UTF-8 characters in JSON mode, and reports congestion so the PTY can be paused.
 *
 * What a browser can make the agent hold is bounded in bytes: output pauses the PTY past the high-water
 * mark (and, for a browser that acks, past the ack window: AckWindow), and replies (pong, error), which a browser can provoke at its message rate, are dropped while the
 * send buffer is past that mark. Only messages the channel accepts refresh the session's idle clock.
 *
 * Every `output` carries its `offset`: the session's output bytes through the end of its data. A channel
 * that resumes a session (issue 13) starts counting where the browser's last one ended.
 */
import { ErrorCodes, TermgateError, toErrorData, type ErrorData } from '../common/errors.js';
import {
  decodeInbound,
  encodeOutbound,
  type Encoding,
  type OutboundMessage,
  type SessionMessage,
} from '../common/protocol/terminal-messages.js';
import { StatSlot } from '../common/protocol/session-stats.js';
import { RateLimiter } from '../common/RateLimiter.js';
import { SafeEmitter } from '../common/SafeEmitter.js';
import { AckWindow } from './AckWindow.js';
import type { DataChannel } from './native-addon.js';
import { jsonOutputText, MSGPACK_OUTPUT_OVERHEAD, msgpackOutputFrame } from './output-frames.js';
import { completeUtf8Length, utf8CutBefore } from './utf8.js';

/** RFC 8841: what a peer whose SDP names no `max-message-size` accepts. */
const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024;

/** Messages a browser can provoke at will; they are the first to go when it does not read. */
const REPLY_TYPES = new Set<OutboundMessage['type']>(['pong', 'error']);

export interface TerminalChannelOptions {
  maxMessageBytes: number;
  outputChunkBytes: number;
  highWaterMark: number;
  lowWaterMark: number;
  /** Messages the browser may send per second; past it messages are dropped with one error. */
  maxMessagesPerSecond: number;
  /** Unacknowledged output bytes a browser that acks may have in flight (AckWindow). */
  ackWindowBytes: number;
}

/** Where a channel of a resumed session starts: the browser's last offset, and how it speaks. */
export interface ChannelStart {
  offset: number;
  encoding: Encoding;
}

export interface TerminalChannelEvents {
  open: [];
  message: [message: SessionMessage];
  /** Handling a message threw (a bug, caught here); the browser got TG_ERR_INTERNAL. */
  fault: [error: ErrorData];
  /** The buffered amount fell below the low-water mark, or an ack opened the window: output may flow. */
  drain: [];
  /** The browser acknowledged output through `offset` (a valid ack). */
  acked: [offset: number];
  /**
   * The open channel refused a message larger than the browser's max-message-size: what follows could
   * not arrive complete and in order, so no more output is sent and the session must end, saying why.
   */
  refused: [error: ErrorData];
  close: [];
}

export class TerminalChannel extends SafeEmitter<TerminalChannelEvents> {
  // The reference itself matters: an unreferenced native channel is collected and reset under our feet.
  readonly #dc: DataChannel;
  readonly #options: TerminalChannelOptions;
  readonly #stats: Float64Array;
  #encoding: Encoding;
  /** Bytes of an incomplete UTF-8 character held back from the last output chunk (JSON mode). */
  #carry: Buffer | undefined;
  /** Counts the output sent (each message's `offset`) and, for a browser that acks, bounds what is in flight. */
  readonly #window: AckWindow;
  #closed = false;
  /** A message too large for the browser was refused while the channel was open (the `refused` event). */
  #sendRefused = false;
  /** The browser's largest message, read once the channel is open (see #messageLimit). */
  #limit: number | undefined;
  readonly #limiter: RateLimiter;
  /** When the browser was last told it is over the rate; within a second, refusals are silent. */
  #rateErrorAtMs = -Infinity;

  constructor(
    dc: DataChannel,
    options: TerminalChannelOptions,
    stats: Float64Array,
    start: ChannelStart = { offset: 0, encoding: 'json' },
  ) {
    super();
    this.#dc = dc;
    this.#encoding = start.encoding;
    this.#options = options;
    this.#stats = stats;
    this.#limiter = new RateLimiter(options.maxMessagesPerSecond);
    this.#window = new AckWindow(options.ackWindowBytes, start.offset);
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

  /**
   * True while more than the high-water mark waits in the channel's send buffer, or the browser acks and
   * its window of unacknowledged output is full.
   */
  get congested(): boolean {
    return this.isOpen && (this.#window.full || this.#dc.bufferedAmount() > this.#options.highWaterMark);
  }

  /** Bytes waiting in the channel's send buffer (0 once it is closed). */
  get bufferedAmount(): number {
    if (!this.isOpen) return 0;
    try {
      return this.#dc.bufferedAmount();
    } catch {
      return 0;
    }
  }

  /**
   * Sends one protocol message; false if the channel is gone or a reply was dropped because the browser
   * is not reading (never throws: a throw inside a native callback aborts the process).
   */
  send(message: OutboundMessage): boolean {
    if (!this.isOpen) return false;
    if (REPLY_TYPES.has(message.type) && this.bufferedAmount > this.#options.highWaterMark) {
      this.#stats[StatSlot.repliesDropped]! += 1;
      return false;
    }
    const encoded = encodeOutbound(message, this.#encoding);
    try {
      this.#dc[typeof encoded === 'string' ? 'sendMessage' : 'sendMessageBinary'](encoded as never);
    } catch (err) {
      this.#onSendFailed(encoded, err);
      return false;
    }
    this.#stats[StatSlot.messagesToBrowser]! += 1;
    return true;
  }

  /**
   * Sends terminal output now: one message per read (PtyBridge already gathers a stream's small reads
   * into large ones), split at `outputChunkBytes` and within the largest message the browser accepts,
   * and in JSON mode only whole UTF-8 characters (an incomplete one at the end waits for the rest).
   */
  sendOutput(chunk: Buffer): void {
    if (!this.isOpen || this.#sendRefused) return;
    let bytes = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk;
    this.#carry = undefined;
    const json = this.#encoding === 'json';
    if (json) {
      const complete = completeUtf8Length(bytes);
      if (complete < bytes.length) this.#carry = Buffer.from(bytes.subarray(complete));
      bytes = bytes.subarray(0, complete);
    }
    const limit = this.#messageLimit();
    const max = Math.max(1, Math.min(this.#options.outputChunkBytes, limit - MSGPACK_OUTPUT_OVERHEAD));
    for (let start = 0; start < bytes.length;) {
      const end = json
        ? this.#sendJsonPiece(bytes, start, max, limit)
        : this.#sendMsgpackPiece(bytes, start, max);
      if (end < 0) return;
      start = end;
    }
  }

  /**
   * The largest message the browser accepts (its SDP's `a=max-message-size`, 64 KiB when it gives none):
   * libdatachannel refuses a larger one outright.
   */
  #messageLimit(): number {
    if (this.#limit === undefined) {
      try {
        this.#limit = this.#dc.maxMessageSize();
      } catch {
        return DEFAULT_MAX_MESSAGE_SIZE;
      }
    }
    return this.#limit;
  }

  /** One msgpack `output` of up to `max` bytes from `start`; where it ended, or -1 if the send failed. */
  #sendMsgpackPiece(bytes: Buffer, start: number, max: number): number {
    const end = Math.min(bytes.length, start + max);
    const frame = msgpackOutputFrame(bytes.subarray(start, end), this.#window.sent + end - start);
    return this.#sendOutputMessage(frame, end - start) ? end : -1;
  }

  /**
   * One JSON `output` of up to `max` bytes from `start`, whole characters, its text within `limit`:
   * escaping can make the text up to six times the bytes (a control byte becomes `\u00XX`, as a binary
   * file's bytes do), so a piece whose text is too large is halved until it fits.
   */
  #sendJsonPiece(bytes: Buffer, start: number, max: number, limit: number): number {
    let end = utf8CutBefore(bytes, start, max);
    let text = jsonOutputText(bytes.subarray(start, end), this.#window.sent + end - start);
    // A UTF-16 unit is at most 3 bytes of UTF-8: most texts need no measuring.
    while (text.length * 3 > limit && Buffer.byteLength(text) > limit && end - start > 4) {
      end = utf8CutBefore(bytes, start, Math.ceil((end - start) / 2));
      text = jsonOutputText(bytes.subarray(start, end), this.#window.sent + end - start);
    }
    return this.#sendOutputMessage(text, end - start) ? end : -1;
  }

  /** Sends one encoded `output` carrying `length` bytes of output; false if the channel refused it. */
  #sendOutputMessage(encoded: string | Buffer, length: number): boolean {
    try {
      if (typeof encoded === 'string') this.#dc.sendMessage(encoded);
      else this.#dc.sendMessageBinary(encoded);
    } catch (err) {
      this.#onSendFailed(encoded, err);
      return false;
    }
    // Counted once sent: bytes a closing channel refused are the replay buffer's to send again.
    this.#window.advance(length);
    this.#stats[StatSlot.messagesToBrowser]! += 1;
    this.#stats[StatSlot.bytesToBrowser]! += length;
    // A shell that is working keeps its session: output counts as activity, replies do not.
    this.#stats[StatSlot.lastActivityMs] = Date.now();
    return true;
  }

  /**
   * A send that failed. Most fail because the channel or its transport is closing, which the browser's
   * drop or close ends anyway (and the replay buffer sends the output again on resume); the status may
   * still say open for a moment then. A message larger than the browser accepts is refused by a channel
   * that stays open: a gap in the output unless the session ends, so the first one is reported and no
   * output follows it.
   */
  #onSendFailed(encoded: string | Buffer, err: unknown): void {
    const size = typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.length;
    if (size <= this.#messageLimit() || this.#sendRefused || !this.isOpen) return;
    this.#sendRefused = true;
    const reason = err instanceof Error ? err.message : String(err);
    this.safeEmit('refused', {
      code: ErrorCodes.OUTPUT_REFUSED,
      message: `the browser's channel refused a message of ${size} bytes (it accepts up to ${this.#messageLimit()}): ${reason}`,
    });
  }

  /** Tells the browser about a refused message and counts it. */
  sendError(error: ErrorData): void {
    this.#stats[StatSlot.protocolErrors]! += 1;
    this.send({ type: 'error', code: error.code, message: error.message });
  }

  /**
   * Resolves once the send buffer is empty, or after `timeoutMs`. Only used as the session ends, so the
   * low-water event is moved to zero: it fires when the last byte has left.
   */
  async flushed(timeoutMs: number): Promise<void> {
    if (this.bufferedAmount === 0) return;
    this.#dc.setBufferedAmountLowThreshold(0);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off('drain', done);
        this.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.on('drain', done);
      this.on('close', done);
    });
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

  /** The native onMessage callback: nothing may escape it (a throw there aborts the process). */
  #onMessage(raw: unknown): void {
    if (this.#closed) return;
    try {
      this.#receive(raw);
    } catch (err) {
      // A bug on this boundary costs this message, not the process or the session.
      try {
        const error = toErrorData(err);
        this.safeEmit('fault', error);
        this.send({ type: 'error', code: error.code, message: error.message });
      } catch {
        // Reporting failed too; dropping the message is all that is left.
      }
    }
  }

  #receive(raw: unknown): void {
    const input = toInput(raw);
    this.#stats[StatSlot.messagesFromBrowser]! += 1;
    // Flow control is outside the message rate. A fast stream's acks (one per 32 KiB: a thousand a second
    // at 33 MB/s) would otherwise use up the rate, and the keystroke typed right after it (a Ctrl-C) would
    // be dropped; and an ack dropped while the window is full stalls the session for good, the browser
    // having nothing new to acknowledge. Only an ack that moves the window well on (AckWindow.movesOn) is
    // exempt, so a flood of them costs less than the output they acknowledge.
    const small = this.#decodeSmall(input);
    if (small?.message.type === 'ack' && this.#window.movesOn(small.message.offset)) {
      this.#accept(small.encoding);
      this.#ack(small.message.offset);
      return;
    }
    // A flood (pings or anything else) costs the worker's other sessions; cap one session's share.
    const now = performance.now();
    if (!this.#limiter.tryTake(now)) {
      this.#refuseOverRate(now);
      return;
    }
    const decoded = small ?? this.#decode(input);
    if (!decoded) return;
    const { message, encoding } = decoded;
    this.#accept(encoding);
    if (message.type === 'ack') {
      this.#ack(message.offset);
      return;
    }
    if (message.type === 'input') {
      this.#stats[StatSlot.bytesFromBrowser]! +=
        typeof message.data === 'string' ? Buffer.byteLength(message.data) : message.data.byteLength;
    }
    this.safeEmit('message', message);
  }

  /**
   * A message small enough to be an ack, decoded (undefined for anything else, or if it does not decode:
   * `#decode` then says why). Decoded once: a keystroke is not decoded again past the rate.
   */
  #decodeSmall(input: string | Buffer | undefined): DecodedMessage | undefined {
    const limit = Math.min(MAX_ACK_BYTES, this.#options.maxMessageBytes);
    // A JSON string's length never exceeds its UTF-8 size: a long one is not measured in bytes here.
    if (input === undefined || (typeof input === 'string' ? input.length : input.byteLength) > limit)
      return undefined;
    try {
      return decodeInbound(input, limit);
    } catch {
      return undefined;
    }
  }

  /** Decodes a message, or tells the browser why it cannot be. */
  #decode(input: string | Buffer | undefined): DecodedMessage | undefined {
    try {
      if (input === undefined)
        throw new TermgateError(ErrorCodes.INVALID_MESSAGE, 'message is neither text nor binary');
      return decodeInbound(input, this.#options.maxMessageBytes);
    } catch (err) {
      // A binary message that fails to decode still tells us how the browser speaks.
      if (input !== undefined) this.#switchEncoding(typeof input === 'string' ? 'json' : 'msgpack');
      this.sendError(toErrorData(err, ErrorCodes.INVALID_MESSAGE));
      return undefined;
    }
  }

  /** Only an accepted message keeps the session from going idle: refused ones do not buy time. */
  #accept(encoding: Encoding): void {
    this.#stats[StatSlot.lastActivityMs] = Date.now();
    this.#switchEncoding(encoding);
  }

  /**
   * A message over the rate is dropped. The browser is told at most once a second, so a flood is never
   * answered by a flood, however long it lasts (the bucket lets one message through now and then, which
   * must not restart the telling).
   */
  #refuseOverRate(now: number): void {
    this.#stats[StatSlot.protocolErrors]! += 1;
    if (now - this.#rateErrorAtMs < 1000) return;
    this.#rateErrorAtMs = now;
    this.send({
      type: 'error',
      code: ErrorCodes.RATE_LIMITED,
      message: `more than ${this.#options.maxMessagesPerSecond} messages a second; messages are dropped until the rate falls`,
    });
  }

  /** The browser consumed output through `offset`: a window that opens lets output flow again. */
  #ack(offset: number): void {
    const wasFull = this.#window.full;
    try {
      this.#window.ack(offset);
    } catch (err) {
      this.sendError(toErrorData(err, ErrorCodes.INVALID_ACK));
      return;
    }
    this.safeEmit('acked', offset);
    if (wasFull && !this.congested) this.safeEmit('drain');
  }

  /** The agent answers in the encoding of the browser's latest message. */
  #switchEncoding(encoding: Encoding): void {
    if (encoding === this.#encoding) return;
    this.#encoding = encoding;
    // Bytes held for a whole character are sent raw once the browser speaks binary; in JSON they wait.
    if (encoding === 'msgpack' && this.#carry) {
      const carry = this.#carry;
      this.#carry = undefined;
      this.#sendMsgpackPiece(carry, 0, carry.length);
    }
  }
}

/** What node-datachannel hands over: a string, a Buffer or an ArrayBuffer; anything else is refused. */
function toInput(raw: unknown): string | Buffer | undefined {
  if (typeof raw === 'string' || Buffer.isBuffer(raw)) return raw;
  if (raw instanceof ArrayBuffer) return Buffer.from(raw);
  if (ArrayBuffer.isView(raw)) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  return undefined;
}

/** The largest encoded `ack` ({"type":"ack","offset":9007199254740991} is 40 bytes in JSON). */
const MAX_ACK_BYTES = 64;

type DecodedMessage = ReturnType<typeof decodeInbound>;
