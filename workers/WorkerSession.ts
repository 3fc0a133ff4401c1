/**
 * One terminal session inside a worker: the peer, its `terminal` channel and the PTY behind it, and the
 * session's port to the main thread. It owns all three and releases them in `close()`, the one place a
 * session's resources are freed (see LIFECYCLE.md).
 */
import type { MessagePort } from 'node:worker_threads';
import type Docker from 'dockerode';
import { ErrorCodes, toErrorData, type ErrorData } from '../src/errors.js';
import { StatSlot, statsView } from '../src/protocol/session-stats.js';
import {
  TERMINAL_CHANNEL_LABEL,
  type InboundMessage,
  type OutboundMessage,
} from '../src/protocol/terminal-messages.js';
import type {
  CloseReason,
  MainToWorker,
  SessionResult,
  SessionState,
  SessionTask,
  WorkerToMain,
} from '../src/protocol/worker-messages.js';
import type { Addon, DataChannel } from './native-addon.js';
import { Peer, type PeerState } from './Peer.js';
import { PtyBridge } from './PtyBridge.js';
import { TerminalChannel } from './TerminalChannel.js';

/** How long a closing session waits for its last messages to leave the channel. */
const CLOSE_FLUSH_MS = 5000;
/**
 * How long a closed channel's peer stays up so SCTP can deliver what it still holds. Measured: 250 ms
 * got every goodbye through behind three floods on a loaded 2-core host; twice that leaves a margin.
 */
const CLOSE_LINGER_MS = 500;
/** Input messages kept while a resize is in flight (a resize takes milliseconds; typing is slower). */
const MAX_INPUT_HELD_FOR_RESIZE = 256;
/** PTY news kept for a channel that is not open yet: an error or a goodbye, never output. */
const MAX_HELD_FOR_CHANNEL = 4;
const DEFAULT_COLS = 80;
const DEFAULT_ROWS = 24;
/**
 * A peer that stays 'disconnected' this long is treated as gone ('peer-failed'): a browser that vanished
 * without a close (tab killed, network cut) must not hold a root shell until the idle timeout.
 */
const DISCONNECTED_GRACE_MS = 10_000;

export class WorkerSession {
  readonly #task: SessionTask;
  readonly #docker: Docker;
  readonly #port: MessagePort;
  readonly #stats: Float64Array;
  readonly #peer: Peer;
  #channel: TerminalChannel | undefined;
  #pty: PtyBridge | undefined;
  /** Bumped on every PTY change so a slow open that lost the race is discarded. */
  #ptyGeneration = 0;
  #size = { cols: DEFAULT_COLS, rows: DEFAULT_ROWS };
  #inputRefused = false;
  /** The channel is open and `ready` was sent. */
  #ready = false;
  #heldForChannel: OutboundMessage[] = [];
  #resizesInFlight = 0;
  #inputHeldForResize: Array<string | Uint8Array> = [];
  #nextRequestId = 1;
  readonly #ptyRequests = new Map<number, { cols: number; rows: number }>();
  #result: Promise<SessionResult> | undefined;
  #disconnectedTimer: NodeJS.Timeout | undefined;
  #setupTimer: NodeJS.Timeout | undefined;
  #finish!: (result: SessionResult) => void;
  readonly #finished: Promise<SessionResult>;

  constructor(task: SessionTask, addon: Addon, docker: Docker) {
    this.#task = task;
    this.#docker = docker;
    this.#port = task.port;
    this.#stats = statsView(task.stats);
    this.#stats[StatSlot.lastActivityMs] = Date.now();
    this.#finished = new Promise((resolve) => (this.#finish = resolve));
    this.#peer = new Peer(addon, {
      name: `session-${task.sessionId}`,
      iceServers: task.settings.iceServers,
      bindAddress: task.settings.bindAddress,
      portRangeBegin: task.settings.portRangeBegin,
      portRangeEnd: task.settings.portRangeEnd,
      // Advertise more than we accept, so an oversize message reaches us and gets a clear error back
      // instead of failing inside the browser's send().
      maxMessageSize: Math.min(task.settings.maxMessageBytes * 4, 16 * 1024 * 1024),
    });
    this.#peer.on('local-candidate', (candidate, mid) =>
      this.#post({ type: 'local-candidate', candidate, mid }),
    );
    this.#peer.on('state', (state) => this.#onPeerState(state));
    this.#peer.on('data-channel', (dc) => this.#onDataChannel(dc));
  }

  /** Answers the offer and runs until the session closes; resolves with why it ended. */
  run(): Promise<SessionResult> {
    try {
      const sdp = this.#peer.answer(this.#task.offerSdp);
      this.#post({ type: 'answer', sdp });
      // The shell below starts before the browser is there; a browser that never arrives must not keep it.
      this.#setupTimer = setTimeout(() => {
        if (!this.#ready) void this.close('peer-failed');
      }, this.#task.settings.setupTimeoutMs);
      // The exec is created while ICE, DTLS and SCTP run: it is the slow half of a setup, and this way
      // the channel opening and the shell starting overlap instead of following each other.
      void this.#openPty(this.#task.container, this.#size);
    } catch (err) {
      const error = toErrorData(err, ErrorCodes.BAD_SDP);
      this.#post({ type: 'offer-failed', error });
      void this.close('offer-failed', error);
      return this.#finished;
    }
    // Attached after the answer so candidates that were queued on the port meet a remote description.
    this.#port.on('message', (message: MainToWorker) => this.#onMainMessage(message));
    return this.#finished;
  }

  /** Ends the session: PTY (and its shell), channel, peer, port. Idempotent. */
  close(reason: CloseReason, error?: ErrorData): Promise<SessionResult> {
    this.#result ??= this.#close(reason, error);
    return this.#result;
  }

  async #close(reason: CloseReason, error?: ErrorData): Promise<SessionResult> {
    clearTimeout(this.#disconnectedTimer);
    clearTimeout(this.#setupTimer);
    this.#ptyGeneration++;
    const pty = this.#pty;
    this.#pty = undefined;
    // No output may follow the goodbye; the goodbye is flushed and the channel closed in order (its
    // stream reset queued behind the data) before the peer goes, so the browser learns why it ended.
    pty?.removeAllListeners('data');
    const goodbye = this.#channel?.isOpen && reason !== 'browser-closed';
    if (goodbye) this.#channel!.send({ type: 'pty_disconnected', reason });
    await pty?.close();
    if (goodbye) {
      await this.#channel!.flushed(CLOSE_FLUSH_MS);
      await this.#channel!.closeGracefully(CLOSE_FLUSH_MS);
      await this.#peer.linger(CLOSE_LINGER_MS);
    }
    this.#channel?.close();
    this.#peer.close();
    this.#post({ type: 'state', state: 'closed' });
    this.#port.close();
    const result: SessionResult = error ? { reason, error } : { reason };
    this.#finish(result);
    return result;
  }

  get closing(): boolean {
    return this.#result !== undefined;
  }

  #post(message: WorkerToMain): void {
    if (this.closing && message.type !== 'state') return;
    this.#port.postMessage(message);
  }

  #setState(state: SessionState): void {
    this.#post({ type: 'state', state });
  }

  #onMainMessage(message: MainToWorker): void {
    switch (message.type) {
      case 'remote-candidate':
        this.#peer.addRemoteCandidate(message.candidate, message.mid);
        break;
      case 'close':
        void this.close(message.reason);
        break;
      case 'pty-grant': {
        const size = this.#ptyRequests.get(message.requestId);
        this.#ptyRequests.delete(message.requestId);
        if (size) void this.#openPty(message.container, size);
        break;
      }
      case 'pty-deny':
        this.#ptyRequests.delete(message.requestId);
        this.#channel?.sendError(message.error);
        break;
      default:
        message satisfies never;
    }
  }

  #onPeerState(state: PeerState): void {
    if (state !== 'disconnected') {
      clearTimeout(this.#disconnectedTimer);
      this.#disconnectedTimer = undefined;
    }
    if (state === 'connecting') this.#setState('connecting');
    else if (state === 'disconnected') {
      this.#setState('disconnected');
      this.#disconnectedTimer ??= setTimeout(() => void this.close('peer-failed'), DISCONNECTED_GRACE_MS);
    } else if (state === 'connected' && this.#pty?.alive) this.#setState('connected');
    else if (state === 'failed') void this.close('peer-failed');
    else if (state === 'closed') void this.close('browser-closed');
  }

  #onDataChannel(dc: DataChannel): void {
    if (dc.getLabel() !== TERMINAL_CHANNEL_LABEL || this.#channel) {
      dc.close(); // only one terminal channel per session
      return;
    }
    const channel = new TerminalChannel(dc, this.#task.settings, this.#stats);
    this.#channel = channel;
    channel.on('open', () => this.#onChannelOpen());
    channel.on('message', (message) => this.#onBrowserMessage(message));
    channel.on('drain', () => this.#pty?.resume());
    channel.on('close', () => void this.close('browser-closed'));
    // libdatachannel may deliver a channel that is already open.
    if (dc.isOpen()) this.#onChannelOpen();
  }

  #onChannelOpen(): void {
    // libdatachannel may report a channel open twice (callback and already-open check).
    if (!this.#channel || this.closing || this.#ready) return;
    this.#ready = true;
    clearTimeout(this.#setupTimer);
    this.#channel.send({ type: 'ready' });
    const held = this.#heldForChannel;
    this.#heldForChannel = [];
    for (const message of held) this.#channel.send(message);
    if (this.#pty) this.#connectPty(this.#pty);
  }

  /** PTY news for the browser; what happens before the channel is open waits for it (a few at most). */
  #tell(message: OutboundMessage): void {
    if (this.#ready) this.#channel?.send(message);
    else if (this.#heldForChannel.length < MAX_HELD_FOR_CHANNEL) this.#heldForChannel.push(message);
  }

  /** The browser is there and the shell is running: announce it and let the output flow. */
  #connectPty(pty: PtyBridge): void {
    this.#announcePty(pty);
    pty.readOutput();
  }

  /** Tells the browser and the main thread that a PTY is live. */
  #announcePty(pty: PtyBridge): void {
    this.#channel?.send({ type: 'pty_connected', container: pty.container });
    this.#post({ type: 'pty-opened', container: pty.container });
    this.#setState('connected');
  }

  #onBrowserMessage(message: InboundMessage): void {
    switch (message.type) {
      case 'input':
        this.#writeInput(message.data);
        break;
      case 'resize':
        this.#resize(message.cols, message.rows);
        break;
      case 'ping':
        this.#channel?.send({ type: 'pong' });
        break;
      case 'close':
        void this.close('browser-closed');
        break;
      case 'connect_pty': {
        const requestId = this.#nextRequestId++;
        const size = { cols: message.cols ?? this.#size.cols, rows: message.rows ?? this.#size.rows };
        this.#ptyRequests.set(requestId, size);
        this.#post({ type: 'pty-request', requestId, container: message.container });
        break;
      }
      default:
        message satisfies never;
    }
  }

  /**
   * Resizes through the engine (an HTTP call) while input goes straight down the exec stream; input that
   * arrives meanwhile waits, so "resize, then run stty" sees the new size.
   */
  #resize(cols: number, rows: number): void {
    this.#size = { cols, rows };
    const pty = this.#pty;
    if (!pty) return;
    this.#resizesInFlight++;
    pty
      .resize(cols, rows)
      .catch((err: unknown) => this.#channel?.sendError(toErrorData(err)))
      .finally(() => {
        if (--this.#resizesInFlight > 0) return;
        const held = this.#inputHeldForResize;
        this.#inputHeldForResize = [];
        for (const data of held) this.#writeInput(data);
      });
  }

  #writeInput(data: string | Uint8Array): void {
    if (this.#resizesInFlight > 0 && this.#inputHeldForResize.length < MAX_INPUT_HELD_FOR_RESIZE) {
      this.#inputHeldForResize.push(data);
      return;
    }
    if (!this.#pty?.alive) {
      this.#channel?.sendError({
        code: ErrorCodes.PTY_NOT_CONNECTED,
        message: 'no terminal is connected; send connect_pty',
      });
      return;
    }
    if (this.#pty.write(data)) {
      this.#inputRefused = false;
      return;
    }
    // Tell the browser once per overflow episode, not once per keystroke.
    if (!this.#inputRefused) {
      this.#inputRefused = true;
      this.#channel?.sendError({
        code: ErrorCodes.INPUT_OVERFLOW,
        message: 'the shell is not reading its input; input was dropped until it catches up',
      });
    }
  }

  async #openPty(container: string, size: { cols: number; rows: number }): Promise<void> {
    const generation = ++this.#ptyGeneration;
    // A resize that arrives while the exec is being created replaces this object; it must not be lost.
    const sizeAtStart = this.#size;
    await this.#closePty('replaced');
    let pty: PtyBridge;
    try {
      pty = await PtyBridge.open(this.#docker, {
        container,
        shell: this.#task.settings.shell,
        cols: size.cols,
        rows: size.rows,
        maxPendingInputBytes: this.#task.settings.maxPendingInputBytes,
      });
    } catch (err) {
      if (generation !== this.#ptyGeneration) return;
      const error = toErrorData(err, ErrorCodes.PTY_FAILED);
      this.#stats[StatSlot.protocolErrors]! += 1;
      this.#tell({ type: 'error', code: error.code, message: error.message });
      return;
    }
    if (generation !== this.#ptyGeneration || this.closing) {
      await pty.close();
      return;
    }
    this.#pty = pty;
    if (this.#size === sizeAtStart) this.#size = size;
    else this.#resize(this.#size.cols, this.#size.rows);
    pty.on('data', (chunk) => this.#onPtyOutput(chunk));
    pty.on('exit', () => void this.#onPtyExit(pty));
    if (this.#ready) this.#connectPty(pty);
  }

  #onPtyOutput(chunk: Buffer): void {
    const channel = this.#channel;
    if (!channel) return;
    channel.sendOutput(chunk);
    if (channel.congested) {
      this.#stats[StatSlot.backpressurePauses]! += 1;
      this.#pty?.pause();
    }
  }

  async #onPtyExit(pty: PtyBridge): Promise<void> {
    if (this.#pty === pty) await this.#closePty('shell-exited');
  }

  async #closePty(reason: string): Promise<void> {
    const pty = this.#pty;
    if (!pty) return;
    this.#pty = undefined;
    await pty.close();
    this.#tell({ type: 'pty_disconnected', reason });
    this.#post({ type: 'pty-closed', container: pty.container });
  }
}
