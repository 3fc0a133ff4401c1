/**
 * One terminal session inside a worker: the wiring between the main thread's channel on the session's
 * port, the browser's side (BrowserLink: peer and `terminal` channel) and the PTY side (PtyAttachment),
 * and the one place a session's resources are released, in order (see LIFECYCLE.md).
 *
 * Resume (issue 13, with `--resume-grace` > 0): once its browser has had `pty_connected` (and with it the
 * resume token), a session whose connection drops without a `close` is `disconnected`, not ended: the
 * shell keeps running and its output goes to the replay buffer (the shell pauses when it is full) for the
 * grace. A resume offer with the token reattaches a new link: `ready`, `pty_connected` (the same token),
 * the bytes after the browser's `resume_offset`, then live output. The grace's end closes the session
 * (`resume-expired`) like any other end.
 */
import type Docker from 'dockerode';
import type { OutboundMessage } from '../common/protocol/terminal-messages.js';
import { Channel, portEndpoint } from '../common/Channel.js';
import { ErrorCodes, TermgateError, toErrorData, type ErrorData } from '../common/errors.js';
import { StatSlot, statsView } from '../common/protocol/session-stats.js';
import type {
  CloseReason,
  MainToSession,
  ResumeRequest,
  SessionResult,
  SessionTask,
  SessionToMain,
} from '../common/protocol/worker-messages.js';
import { dispatchBrowserMessage, type BrowserMessageTargets } from './browser-message-dispatch.js';
import { BrowserLink, type LinkEnd } from './BrowserLink.js';
import { HandlerFaults } from './HandlerFaults.js';
import type { Addon } from './native-addon.js';
import type { IceCheckSigner } from './Peer.js';
import { OutputBackpressure } from './OutputBackpressure.js';
import type { WorkerLogger } from './pool-line.js';
import { PtyAttachment } from './PtyAttachment.js';
import { RemoteCandidates } from './RemoteCandidates.js';
import { ReplayBuffer } from './ReplayBuffer.js';
import { ResumeToken } from './ResumeToken.js';
import { SessionNotices } from './SessionNotices.js';
import { shellOpener } from './shell-opener.js';
import type { ChannelStart } from './TerminalChannel.js';

/** Input bytes kept while a resize is in flight (a resize takes milliseconds; typing is slower). */
const MAX_INPUT_HELD_FOR_RESIZE_BYTES = 64 * 1024;

export class WorkerSession {
  readonly #task: SessionTask;
  readonly #addon: Addon;
  readonly #iceChecks: IceCheckSigner | undefined;
  readonly #log: WorkerLogger;
  readonly #stats: Float64Array;
  readonly #main: Channel<SessionToMain, MainToSession>;
  readonly #notices: SessionNotices;
  readonly #faults: HandlerFaults;
  readonly #pty: PtyAttachment;
  readonly #output: OutputBackpressure;
  #link: BrowserLink | undefined;
  #answered = false;
  readonly #remoteCandidates = new RemoteCandidates();
  /** Output kept for a resume; undefined when resume is off (`--resume-grace 0`). */
  readonly #replay: ReplayBuffer | undefined;
  readonly #token = new ResumeToken();
  /** A browser was told the token (a `pty_connected` went out): from now on a drop is not an end. */
  #resumable = false;
  /** The grace of a disconnected session. */
  #graceTimer: NodeJS.Timeout | undefined;
  /** The encoding of the browser that dropped: its resumed channel starts in it. */
  #encodingAtDrop: ChannelStart['encoding'] = 'json';
  #result: Promise<SessionResult> | undefined;
  #finish!: (result: SessionResult) => void;
  readonly #finished = new Promise<SessionResult>((resolve) => (this.#finish = resolve));

  constructor(
    task: SessionTask,
    addon: Addon,
    docker: Docker,
    log: WorkerLogger,
    iceChecks?: IceCheckSigner,
  ) {
    const { settings } = task;
    this.#task = task;
    this.#addon = addon;
    this.#iceChecks = iceChecks;
    this.#log = log.child({ session: task.sessionId });
    this.#stats = statsView(task.stats);
    this.#stats[StatSlot.lastActivityMs] = Date.now();
    this.#main = new Channel(portEndpoint(task.port), {
      onListenerError: (_method, err) => this.#faults.count(toErrorData(err)),
    });
    this.#notices = new SessionNotices(this.#main, this.#stats, () => this.closing);
    this.#faults = new HandlerFaults(this.#stats, (error) => this.#notices.handlerFault(error));
    this.#pty = new PtyAttachment({
      open: shellOpener(docker, task),
      authorize: (container) =>
        this.#main.request('pty', { container }, { timeoutMs: 2 * settings.dockerTimeoutMs }),
      output: (chunk) => this.#output.forward(chunk),
      flushed: (bytes) => (this.#stats[StatSlot.outputFlushed]! += bytes),
      maxHeldInputBytes: MAX_INPUT_HELD_FOR_RESIZE_BYTES,
    });
    this.#replay = settings.resumeGraceMs > 0 ? new ReplayBuffer(settings.replayBufferBytes) : undefined;
    this.#pty.on('tell', (message) => this.#link?.tell(this.#withToken(message)));
    this.#pty.on('refuse', (error) => this.#link?.sendError(error));
    this.#pty.on('failed', (error) => {
      this.#stats[StatSlot.ptyErrors]! += 1;
      this.#log.warn({ code: error.code, err: error.message }, 'pty failed');
    });
    this.#pty.on('attached', (container) => this.#notices.ptyOpened(container));
    this.#pty.on('detached', () => this.#output.ptyDetached());
    this.#pty.on('cleanup-failed', (error) => this.#notices.cleanupFailed(error));
    this.#output = new OutputBackpressure({
      producer: this.#pty,
      stats: this.#stats,
      slowConsumerTimeoutMs: settings.slowConsumerTimeoutMs,
      onSlowConsumer: (error) => void this.close('slow-consumer', error),
      replay: this.#replay,
    });
  }

  /** Serves the main thread until the session closes; resolves with why it ended. */
  run(): Promise<SessionResult> {
    this.#main
      .handle('offer', ({ sdp, resume }) => ({ sdp: resume ? this.#resume(sdp, resume) : this.#answer(sdp) }))
      .on('remote-candidate', (ice) => this.#remoteCandidates.add(ice))
      .on('close', ({ reason }) => void this.close(reason))
      .on('browser-gone', () => this.#browserGone());
    return this.#finished;
  }

  /** Ends the session: PTY (and its shell), channel, peer, port. Idempotent. */
  close(reason: CloseReason, error?: ErrorData): Promise<SessionResult> {
    this.#result ??= this.#close(reason, error);
    return this.#result;
  }

  get closing(): boolean {
    return this.#result !== undefined;
  }

  async #close(reason: CloseReason, error?: ErrorData): Promise<SessionResult> {
    clearTimeout(this.#graceTimer);
    this.#output.close();
    // No output may follow the goodbye: the PTY side stops its output before the goodbye goes out, and
    // the goodbye is flushed before the peer goes, so the browser learns why its session ended.
    const ptyClosed = this.#pty.close();
    const link = this.#link;
    const goodbye = reason !== 'browser-closed' && link?.sayGoodbye(reason) === true;
    await ptyClosed;
    // A slow consumer will not take the goodbye either: it is queued, but not waited for.
    if (goodbye && reason !== 'slow-consumer') await link.flush();
    link?.close();
    this.#main.notify('state', { state: 'closed' });
    this.#main.close();
    this.#task.port.close();
    const result: SessionResult = error ? { reason, error } : { reason };
    this.#log.debug({ reason, code: error?.code }, 'session ended');
    this.#finish(result);
    return result;
  }

  /** The browser's offer: a peer answers it, and the first shell starts while the connection is set up. */
  #answer(offerSdp: string): string {
    if (this.#answered)
      throw new TermgateError(ErrorCodes.INTERNAL, 'this session already answered an offer');
    this.#answered = true;
    const link = this.#newLink(() => this.#pty.browserReady());
    this.#output.sendTo(link);
    let sdp: string;
    try {
      sdp = link.answer(offerSdp);
    } catch (err) {
      const error = toErrorData(err, ErrorCodes.BAD_SDP);
      void this.close('offer-failed', error);
      throw TermgateError.fromData(error);
    }
    this.#remoteCandidates.answered(link);
    // The exec is created while ICE, DTLS and SCTP run: it is the slow half of a setup, and this way
    // the channel opening and the shell starting overlap instead of following each other.
    const { container, containerId } = this.#task;
    void this.#pty.attach({ container, containerId });
    return sdp;
  }

  /**
   * A resume offer: a new link for the same shell, once the token and the offset check out. A link still
   * up (a reload the agent has not noticed yet) gives way to it. Output keeps going to the replay buffer
   * until the new channel is open.
   */
  #resume(offerSdp: string, request: ResumeRequest): string {
    this.#checkResume(request);
    if (this.#link) this.#disconnect();
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    const start: ChannelStart = { offset: request.offset, encoding: this.#encodingAtDrop };
    const link = this.#newLink(() => this.#resumed(link, request.offset), start);
    let sdp: string;
    try {
      sdp = link.answer(offerSdp);
    } catch (err) {
      this.#disconnect(); // the session waits for another try, as before this offer
      throw TermgateError.fromData(toErrorData(err, ErrorCodes.BAD_SDP));
    }
    this.#remoteCandidates.answered(link);
    this.#log.debug({ offset: request.offset }, 'resume answered');
    return sdp;
  }

  /** Refuses a resume offer that does not present this session's token, or asks for bytes no longer kept. */
  #checkResume({ token, offset }: ResumeRequest): void {
    if (!this.#replay || !this.#resumable || this.closing || !this.#token.matches(token)) {
      throw new TermgateError(
        ErrorCodes.RESUME_REFUSED,
        'this session cannot be resumed with that token (wrong token, resume off, or not yet connected)',
      );
    }
    if (!this.#replay.has(offset)) {
      const { start, end } = this.#replay;
      throw new TermgateError(
        ErrorCodes.RESUME_OFFSET_OUT_OF_RANGE,
        `output from offset ${offset} is not kept: the replay buffer holds ${start} to ${end}`,
      );
    }
  }

  /** The resumed browser's channel is open: it is told its terminal, then gets what it missed, then live output. */
  #resumed(link: BrowserLink, offset: number): void {
    const container = this.#pty.container;
    if (container !== undefined)
      link.tell({ type: 'pty_connected', container, resume_token: this.#token.value });
    this.#output.resumeTo(link, offset);
    this.#log.debug({ offset, replayed: (this.#replay?.end ?? offset) - offset }, 'session resumed');
  }

  /**
   * The browser is gone without a close: the link goes, the shell stays for the grace, its output is
   * kept for a resume.
   */
  #disconnect(): void {
    const link = this.#link;
    this.#link = undefined;
    if (link) {
      this.#encodingAtDrop = link.encoding;
      link.close();
    }
    this.#remoteCandidates.detached();
    this.#output.detach();
    this.#notices.peerState('disconnected', this.#pty.alive);
    this.#graceTimer ??= setTimeout(
      () => void this.close('resume-expired'),
      this.#task.settings.resumeGraceMs,
    );
    this.#log.debug({ graceMs: this.#task.settings.resumeGraceMs }, 'browser dropped; waiting for a resume');
  }

  /** The link ended: a browser that holds the token may come back, else the session ends. */
  #linkEnded(link: BrowserLink, reason: LinkEnd): void {
    if (link !== this.#link) return;
    if (this.#replay && this.#resumable && !this.closing) this.#disconnect();
    else void this.close(reason);
  }

  /** The browser's channel refused a message: it is told why (a short one may still pass), then it ends. */
  #sendRefused(link: BrowserLink, error: ErrorData): void {
    this.#log.warn({ code: error.code, err: error.message }, "the browser's channel refused a message");
    link.send({ type: 'error', code: error.code, message: error.message });
    void this.close('peer-failed', error);
  }

  /** The browser left the cloud without a close (a reload): a drop if resumable, else the cloud's end. */
  #browserGone(): void {
    if (!this.#replay || !this.#resumable || this.closing) void this.close('cloud-disconnect');
    else if (this.#link) this.#disconnect();
  }

  /** `pty_connected` carries the resume token; once one has gone out on an open channel, a drop is resumable. */
  #withToken(message: OutboundMessage): OutboundMessage {
    if (message.type !== 'pty_connected' || !this.#replay) return message;
    if (this.#link?.ready) this.#resumable = true;
    return { ...message, resume_token: this.#token.value };
  }

  #newLink(onReady: () => void, start?: ChannelStart): BrowserLink {
    const link = new BrowserLink(this.#addon, {
      name: `session-${this.#task.sessionId}`,
      settings: this.#task.settings,
      stats: this.#stats,
      ...(start && { start }),
      iceChecks: this.#iceChecks,
    });
    this.#link = link;
    this.#wire(link, onReady);
    return link;
  }

  #wire(link: BrowserLink, onReady: () => void): void {
    link.on('local-candidate', (candidate) => this.#notices.localCandidate(candidate));
    link.on('peer-state', (state) => this.#notices.peerState(state, this.#pty.alive));
    link.on('ready', onReady);
    link.on('path', (path) => this.#notices.path(path));
    const targets: BrowserMessageTargets = {
      pty: this.#pty,
      pong: () => link.send({ type: 'pong' }),
      close: () => void this.close('browser-closed'),
    };
    link.on('message', (message) => this.#faults.guard(() => dispatchBrowserMessage(message, targets)));
    link.on('drain', () => this.#output.drained());
    // What a browser that acks has shown need not be kept for a resume: the ring holds only the rest.
    link.on('acked', (offset) => this.#replay?.acknowledge(offset));
    link.on('fault', (error) => this.#faults.count(error));
    link.on('refused', (error) => this.#sendRefused(link, error));
    link.on('ended', (reason) => this.#linkEnded(link, reason));
  }
}
