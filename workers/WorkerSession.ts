/**
 * One terminal session inside a worker: the wiring between the main thread's channel on the session's
 * port, the browser's side (BrowserLink: peer and `terminal` channel) and the PTY side (PtyAttachment),
 * and the one place a session's resources are released, in order (see LIFECYCLE.md).
 */
import type Docker from 'dockerode';
import { Channel, portEndpoint } from '../common/Channel.js';
import { ErrorCodes, TermgateError, toErrorData, type ErrorData } from '../common/errors.js';
import { StatSlot, statsView } from '../common/protocol/session-stats.js';
import type {
  CloseReason,
  MainToSession,
  SessionResult,
  SessionTask,
  SessionToMain,
} from '../common/protocol/worker-messages.js';
import { dispatchBrowserMessage, type BrowserMessageTargets } from './browser-message-dispatch.js';
import { BrowserLink } from './BrowserLink.js';
import { HandlerFaults } from './HandlerFaults.js';
import type { Addon } from './native-addon.js';
import { OutputBackpressure } from './OutputBackpressure.js';
import type { WorkerLogger } from './pool-line.js';
import { PtyAttachment } from './PtyAttachment.js';
import { RemoteCandidates } from './RemoteCandidates.js';
import { SessionNotices } from './SessionNotices.js';
import { shellOpener } from './shell-opener.js';

/** Input bytes kept while a resize is in flight (a resize takes milliseconds; typing is slower). */
const MAX_INPUT_HELD_FOR_RESIZE_BYTES = 64 * 1024;

export class WorkerSession {
  readonly #task: SessionTask;
  readonly #addon: Addon;
  readonly #log: WorkerLogger;
  readonly #stats: Float64Array;
  readonly #main: Channel<SessionToMain, MainToSession>;
  readonly #notices: SessionNotices;
  readonly #faults: HandlerFaults;
  readonly #pty: PtyAttachment;
  readonly #output: OutputBackpressure;
  #link: BrowserLink | undefined;
  readonly #remoteCandidates = new RemoteCandidates();
  #result: Promise<SessionResult> | undefined;
  #finish!: (result: SessionResult) => void;
  readonly #finished = new Promise<SessionResult>((resolve) => (this.#finish = resolve));

  constructor(task: SessionTask, addon: Addon, docker: Docker, log: WorkerLogger) {
    const { settings } = task;
    this.#task = task;
    this.#addon = addon;
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
      maxHeldInputBytes: MAX_INPUT_HELD_FOR_RESIZE_BYTES,
    });
    this.#pty.on('tell', (message) => this.#link?.tell(message));
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
    });
  }

  /** Serves the main thread until the session closes; resolves with why it ended. */
  run(): Promise<SessionResult> {
    this.#main
      .handle('offer', ({ sdp }) => ({ sdp: this.#answer(sdp) }))
      .on('remote-candidate', (ice) => this.#remoteCandidates.add(ice))
      .on('close', ({ reason }) => void this.close(reason));
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
    if (this.#link) throw new TermgateError(ErrorCodes.INTERNAL, 'this session already answered an offer');
    const link = new BrowserLink(this.#addon, {
      name: `session-${this.#task.sessionId}`,
      settings: this.#task.settings,
      stats: this.#stats,
    });
    this.#link = link;
    this.#wire(link);
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

  #wire(link: BrowserLink): void {
    link.on('local-candidate', (candidate) => this.#notices.localCandidate(candidate));
    link.on('peer-state', (state) => this.#notices.peerState(state, this.#pty.alive));
    link.on('ready', () => this.#pty.browserReady());
    link.on('path', (path) => this.#notices.path(path));
    const targets: BrowserMessageTargets = {
      pty: this.#pty,
      pong: () => link.send({ type: 'pong' }),
      close: () => void this.close('browser-closed'),
    };
    link.on('message', (message) => this.#faults.guard(() => dispatchBrowserMessage(message, targets)));
    link.on('drain', () => this.#output.drained());
    link.on('fault', (error) => this.#faults.count(error));
    link.on('ended', (reason) => void this.close(reason));
  }
}
