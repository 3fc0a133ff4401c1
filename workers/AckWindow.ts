/**
 * Flow control by acknowledgement, for browsers that opt in. Each `output` carries `offset`, the count of
 * the session's PTY output bytes through its data; a browser that sends `ack {offset}` says it has
 * consumed (shown) output through there. From its first ack on, the session keeps at most `windowBytes`
 * of unacknowledged output in flight: past it the PTY is paused, as for a full send buffer.
 *
 * Why: a Ctrl-C stops a flood only once everything already in flight has been shown, and the send
 * buffer's high-water mark alone lets megabytes be in flight (the channel's buffer, SCTP's windows, the
 * browser's receive buffer and its terminal's write queue). A browser that never acks (old pages, the
 * design's example browser) keeps today's behaviour.
 *
 * A piece read while the window still had room is sent whole, so the bytes in flight may pass the window
 * by one read (tens of KiB): nothing is held back here.
 */
import { ErrorCodes, TermgateError } from '../common/errors.js';

/** An ack that moves the window on by this much is flow control, never refused for the rate (movesOn). */
export const ACK_STEP_BYTES = 1024;

export class AckWindow {
  readonly #windowBytes: number;
  /** Output bytes sent so far: the offset of the last `output`. */
  #sent = 0;
  #acked = 0;
  /** The browser acks: the window applies. */
  #active = false;

  /** `start`: the offset a resumed session's channel starts at (the browser's last one). */
  constructor(windowBytes: number, start = 0) {
    this.#windowBytes = windowBytes;
    this.#sent = start;
    this.#acked = start;
  }

  /** `bytes` more were sent; returns the offset the `output` carrying them ends at. */
  advance(bytes: number): number {
    this.#sent += bytes;
    return this.#sent;
  }

  get sent(): number {
    return this.#sent;
  }

  /**
   * True if an ack of `offset` moves the window on by ACK_STEP_BYTES or more, or to everything sent: a
   * valid ack that is not a repeat and not a trickle. There are at most as many such acks as KiB of
   * output or output messages, whatever the browser sends.
   */
  movesOn(offset: number): boolean {
    if (offset <= this.#acked || offset > this.#sent) return false;
    return offset - this.#acked >= ACK_STEP_BYTES || offset === this.#sent;
  }

  /** True while the browser acks and the unacknowledged output has reached the window. */
  get full(): boolean {
    return this.#active && this.#sent - this.#acked >= this.#windowBytes;
  }

  /**
   * The browser consumed output through `offset`. Throws TG_ERR_INVALID_ACK for an offset past what was
   * sent or behind an earlier ack (the window is left as it was).
   */
  ack(offset: number): void {
    if (offset > this.#sent) {
      throw new TermgateError(
        ErrorCodes.INVALID_ACK,
        `ack of offset ${offset} is beyond the ${this.#sent} output bytes sent`,
      );
    }
    if (offset < this.#acked) {
      throw new TermgateError(
        ErrorCodes.INVALID_ACK,
        `ack of offset ${offset} goes back behind the earlier ack of ${this.#acked}`,
      );
    }
    this.#acked = offset;
    this.#active = true;
  }
}
