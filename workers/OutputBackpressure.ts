/**
 * Backpressure on a session's output, from the PTY to the browser. Output goes to the browser's channel
 * as it comes; once the channel's send buffer is past its high-water mark the PTY is paused (each pause
 * counted), and it is resumed when the buffer drains below the low-water mark. A buffer that stays full
 * for the slow-consumer timeout ends the session (SlowConsumerWatch): a browser that takes nothing must
 * not hold a root shell and a high-water mark of memory.
 *
 * With a replay buffer (resume, issue 13) every chunk sent is kept there too. When the browser drops
 * (`detach`) output is only kept, and the PTY is paused once the buffer is full: the shell blocks, nothing
 * is lost. A resumed browser (`resumeTo`) gets what it missed from the buffer, then live output.
 */
import { ErrorCodes, type ErrorData } from '../common/errors.js';
import { StatSlot } from '../common/protocol/session-stats.js';
import type { ReplayBuffer } from './ReplayBuffer.js';
import { SlowConsumerWatch } from './SlowConsumerWatch.js';

/** Where output goes: the browser's side (BrowserLink). */
export interface OutputSink {
  sendOutput(chunk: Buffer): void;
  /** True while the send buffer is past the high-water mark (or an acking browser's window is full). */
  readonly congested: boolean;
}

/** Where it comes from: the PTY side (PtyAttachment). */
export interface OutputProducer {
  pause(): void;
  resume(): void;
}

export interface OutputBackpressureOptions {
  producer: OutputProducer;
  /** The session's counters (session-stats.ts). */
  stats: Float64Array;
  /** How long a paused output may stay paused before the browser counts as gone. */
  slowConsumerTimeoutMs: number;
  /** The browser took nothing for the timeout: the session should end with this error. */
  onSlowConsumer: (error: ErrorData) => void;
  /** Where output is kept for a resume; none when resume is off. */
  replay?: ReplayBuffer | undefined;
}

export class OutputBackpressure {
  readonly #producer: OutputProducer;
  readonly #stats: Float64Array;
  readonly #watch: SlowConsumerWatch;
  readonly #replay: ReplayBuffer | undefined;
  #sink: OutputSink | undefined;
  #closed = false;

  constructor(options: OutputBackpressureOptions) {
    const { slowConsumerTimeoutMs: timeoutMs } = options;
    this.#producer = options.producer;
    this.#stats = options.stats;
    this.#replay = options.replay;
    this.#watch = new SlowConsumerWatch(timeoutMs, () =>
      options.onSlowConsumer({
        code: ErrorCodes.SLOW_CONSUMER,
        message: `the browser took none of the session's output for ${timeoutMs / 1000} s`,
      }),
    );
  }

  /** Output goes to `sink` from now on; before there is one (no offer answered yet) it is dropped. */
  sendTo(sink: OutputSink): void {
    this.#sink = sink;
  }

  /** A chunk of the PTY's output. */
  forward(chunk: Buffer): void {
    if (this.#closed) return;
    this.#replay?.append(chunk);
    const sink = this.#sink;
    if (!sink) {
      if (this.#replay?.full) this.#producer.pause();
      return;
    }
    sink.sendOutput(chunk);
    this.#checkCongestion(sink);
  }

  /**
   * The browser dropped and may come back: output is kept from now on, none is sent, and the PTY is read
   * until the replay buffer is full. Only with a replay buffer.
   */
  detach(): void {
    this.#sink = undefined;
    this.#replay?.pin();
    this.#watch.drained();
    if (this.#replay?.full) this.#producer.pause();
    else this.#producer.resume();
  }

  /**
   * A resumed browser whose last output ended at `offset` (checked with `ReplayBuffer.has`): the bytes
   * after it go out now, then live output.
   */
  resumeTo(sink: OutputSink, offset: number): void {
    const replay = this.#replay;
    if (!replay || this.#closed) return;
    this.#sink = sink;
    for (const piece of replay.since(offset)) sink.sendOutput(piece);
    replay.unpin();
    if (!this.#checkCongestion(sink)) this.#producer.resume();
  }

  /** Pauses the PTY while the sink's buffer is past its high-water mark; true if it is. */
  #checkCongestion(sink: OutputSink): boolean {
    if (!sink.congested) return false;
    this.#stats[StatSlot.backpressurePauses]! += 1;
    this.#producer.pause();
    this.#watch.congested();
    return true;
  }

  /**
   * The send buffer fell below the low-water mark, or an ack opened the window: the PTY is read again,
   * unless the other of the two still holds it.
   */
  drained(): void {
    if (this.#sink?.congested) return;
    this.#watch.drained();
    this.#producer.resume();
  }

  /** The attached PTY went away. The next one starts unpaused, so the old one's clock does not carry over. */
  ptyDetached(): void {
    this.#watch.drained();
  }

  /** Stops the clock; no output goes out after this (none may follow the goodbye). Idempotent. */
  close(): void {
    this.#closed = true;
    this.#watch.close();
  }
}
