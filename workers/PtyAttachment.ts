/**
 * The PTY side of one session: which shell the terminal is attached to, and the order of everything that
 * reaches it. A session starts its first PTY at the answer, before the browser is there; `connect_pty`
 * moves it to another container (one request at a time, each authorized by the main thread); the shell
 * may exit. Through all of that:
 *
 * - the output of a PTY is read only once the browser is there and `pty_connected` has gone out, so the
 *   first prompt is not lost;
 * - a PTY that opens after a newer one was asked for, or after the session closed, is ended unseen;
 * - input typed while a resize is applied waits behind it (bounded), so "resize, then run stty" sees the
 *   new size; a resize that arrives while a PTY opens is applied once it has;
 * - `close()` waits for opens under way, so no shell started during a close outlives the session;
 * - a shell whose container stopped is told as `container-stopped`, not `shell-exited`: the session
 *   lives on, and a `connect_pty` to the same container attaches again once it runs (same peer).
 *
 * Messages for the browser leave through `tell` (PTY news, held by the link until it is ready) and
 * `refuse` (a browser message that could not be served); output through `output`.
 */
import { ErrorCodes, toErrorData, type ErrorData } from '../common/errors.js';
import { SafeEmitter } from '../common/SafeEmitter.js';
import type { OutboundMessage } from '../common/protocol/terminal-messages.js';
import type { PtyTarget } from '../common/protocol/worker-messages.js';
import type { PtyExitReason } from './container-liveness.js';
import type { PtyBridge, PtyCloseOutcome } from './PtyBridge.js';
import { ResizeQueue, type Size } from './ResizeQueue.js';

/** What the attachment uses of a PtyBridge (a unit test gives it a fake). */
export type Pty = Pick<
  PtyBridge,
  | 'container'
  | 'alive'
  | 'write'
  | 'resize'
  | 'readOutput'
  | 'pause'
  | 'resume'
  | 'close'
  | 'on'
  | 'removeAllListeners'
>;

export interface PtyAttachmentOptions {
  /** Starts a shell in the target container behind a PTY of the given size. */
  open: (target: PtyTarget, size: Size) => Promise<Pty>;
  /** Asks the main thread whether the terminal may move to `container` (connect_pty). */
  authorize: (container: string) => Promise<PtyTarget>;
  /** Receives the output of the PTY attached now. */
  output: (chunk: Buffer) => void;
  /** Output written before a Ctrl-C was dropped (InterruptFlush). */
  flushed: (bytes: number) => void;
  /** Input bytes held behind a resize before more is refused. */
  maxHeldInputBytes: number;
}

export interface PtyAttachmentEvents {
  /** A message about the PTY for the browser (`pty_connected`, `pty_disconnected`, a PTY `error`). */
  tell: [message: OutboundMessage];
  /** A browser message could not be served (no PTY, input overflow, connect_pty refused). */
  refuse: [error: ErrorData];
  /** A PTY could not be opened or resized. */
  failed: [error: ErrorData];
  /** A PTY is attached and the browser told: output flows. */
  attached: [container: string];
  /** The attached PTY went away. */
  detached: [reason: DetachReason];
  /** A shell could not be seen or ended from the host. */
  'cleanup-failed': [error: ErrorData];
}

/** Why a PTY went away: another replaced it, or it ended on its own (see container-liveness.ts). */
export type DetachReason = 'replaced' | PtyExitReason;

const DEFAULT_SIZE: Size = { cols: 80, rows: 24 };

export class PtyAttachment extends SafeEmitter<PtyAttachmentEvents> {
  readonly #o: PtyAttachmentOptions;
  readonly #resizes: ResizeQueue;
  #pty: Pty | undefined;
  /** Bumped on every PTY change so a slow open that lost the race is discarded. */
  #generation = 0;
  /** PTY opens under way: `close()` waits for them. */
  readonly #opens = new Set<Promise<void>>();
  #size: Size = DEFAULT_SIZE;
  #browserReady = false;
  #connecting = false;
  #inputRefused = false;
  #closed: Promise<void> | undefined;

  constructor(options: PtyAttachmentOptions) {
    super();
    this.#o = options;
    this.#resizes = new ResizeQueue({
      maxHeldBytes: options.maxHeldInputBytes,
      apply: (size) => this.#pty?.resize(size.cols, size.rows) ?? Promise.resolve(),
      onError: (err) => this.#fail(toErrorData(err, ErrorCodes.PTY_FAILED)),
      release: (data) => this.write(data),
    });
  }

  /** True while a PTY is attached and its shell runs. */
  get alive(): boolean {
    return this.#pty?.alive ?? false;
  }

  get size(): Size {
    return this.#size;
  }

  /** The container of the attached PTY, if one is. */
  get container(): string | undefined {
    return this.#pty?.container;
  }

  /** Opens a PTY into `target` and attaches it in place of the current one (told as `replaced`). */
  attach(target: PtyTarget, size: Size = this.#size): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const opening = this.#open(target, size).finally(() => this.#opens.delete(opening));
    this.#opens.add(opening);
    return opening;
  }

  /** connect_pty: one at a time; the main thread authorizes, then the PTY opens. */
  async connect(container: string, size: Partial<Size>): Promise<void> {
    if (this.#connecting) {
      this.safeEmit('refuse', {
        code: ErrorCodes.PTY_BUSY,
        message: 'a connect_pty is already in progress for this session; wait for pty_connected or an error',
      });
      return;
    }
    this.#connecting = true;
    try {
      const target = await this.#o.authorize(container);
      await this.attach(target, { cols: size.cols ?? this.#size.cols, rows: size.rows ?? this.#size.rows });
    } catch (err) {
      if (!this.#closed) this.safeEmit('refuse', toErrorData(err));
    } finally {
      this.#connecting = false;
    }
  }

  /** The browser is there: the attached PTY is announced and read, and so is every later one. */
  browserReady(): void {
    if (this.#browserReady) return;
    this.#browserReady = true;
    if (this.#pty) this.#announce(this.#pty);
  }

  /** Input for the shell: held behind a resize, refused when nothing reads it. */
  write(data: string | Uint8Array): void {
    if (this.#resizes.busy) {
      if (!this.#resizes.hold(data)) this.#refuseInput();
      return;
    }
    if (!this.#pty?.alive) {
      this.safeEmit('refuse', {
        code: ErrorCodes.PTY_NOT_CONNECTED,
        message: 'no terminal is connected; send connect_pty',
      });
      return;
    }
    if (this.#pty.write(data)) this.#inputRefused = false;
    else this.#refuseInput();
  }

  /** Resizes through the engine (an HTTP call), coalesced; input waits meanwhile (see ResizeQueue). */
  resize(cols: number, rows: number): void {
    this.#size = { cols, rows };
    if (this.#pty) this.#resizes.request(this.#size);
  }

  /** Stops reading output: the browser's buffer is full. */
  pause(): void {
    this.#pty?.pause();
  }

  resume(): void {
    this.#pty?.resume();
  }

  /**
   * Ends the attached shell and any being opened. Output stops at once (nothing may follow a goodbye);
   * resolves once every shell is gone. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#resizes.close();
    this.#generation++;
    const pty = this.#pty;
    this.#pty = undefined;
    pty?.removeAllListeners('data');
    this.#closed = (async () => {
      // An open still under way sees the new generation and ends its own shell; wait for that too.
      const [outcome] = await Promise.all([pty?.close(), ...this.#opens]);
      if (outcome) this.#reportCleanup(outcome);
    })();
    return this.#closed;
  }

  async #open(target: PtyTarget, size: Size): Promise<void> {
    const generation = ++this.#generation;
    // A resize that arrives while the exec is being created replaces this object; it must not be lost.
    const sizeAtStart = this.#size;
    await this.#detach('replaced');
    let pty: Pty;
    try {
      pty = await this.#o.open(target, size);
    } catch (err) {
      if (generation === this.#generation) this.#fail(toErrorData(err, ErrorCodes.PTY_FAILED));
      return;
    }
    if (generation !== this.#generation || this.#closed) {
      this.#reportCleanup(await pty.close());
      return;
    }
    this.#pty = pty;
    if (this.#size === sizeAtStart) this.#size = size;
    else this.resize(this.#size.cols, this.#size.rows);
    pty.on('data', (chunk) => this.#o.output(chunk));
    pty.on('flushed', (bytes) => this.#o.flushed(bytes));
    pty.on('exit', (reason) => void this.#onExit(pty, reason));
    if (this.#browserReady) this.#announce(pty);
  }

  /** Tells the browser, then lets the output flow: the first prompt is read after `pty_connected`. */
  #announce(pty: Pty): void {
    this.safeEmit('tell', { type: 'pty_connected', container: pty.container });
    this.safeEmit('attached', pty.container);
    pty.readOutput();
  }

  async #onExit(pty: Pty, reason: PtyExitReason): Promise<void> {
    if (this.#pty === pty) await this.#detach(reason);
  }

  async #detach(reason: DetachReason): Promise<void> {
    const pty = this.#pty;
    if (!pty) return;
    this.#pty = undefined;
    this.safeEmit('detached', reason);
    this.#reportCleanup(await pty.close());
    this.safeEmit('tell', { type: 'pty_disconnected', reason });
  }

  #fail(error: ErrorData): void {
    this.safeEmit('failed', error);
    this.safeEmit('tell', { type: 'error', code: error.code, message: error.message });
  }

  /** Tells the browser once per overflow episode, not once per keystroke. */
  #refuseInput(): void {
    if (this.#inputRefused) return;
    this.#inputRefused = true;
    this.safeEmit('refuse', {
      code: ErrorCodes.INPUT_OVERFLOW,
      message: 'the shell is not reading its input; input was dropped until it catches up',
    });
  }

  #reportCleanup(outcome: PtyCloseOutcome): void {
    if (outcome.error) this.safeEmit('cleanup-failed', outcome.error);
  }
}
