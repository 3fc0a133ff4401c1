/**
 * A browser, played by a real node-datachannel peer on loopback: it offers a `terminal` data channel
 * through the test cloud, trickles its candidates (some before the answer exists), and keeps what the
 * agent sends: every message, and the terminal output as text and as bytes.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import nodeDataChannel from 'node-datachannel';
import { AGENT_CHECKS_FIRST_MS, withoutCandidates } from '../../bench/load/offerer-race.js';
import { AckPacer, DEFAULT_ACK_PACING } from '../../common/AckPacer.js';
import { ModelledScreen } from './modelled-screen.js';
import { TAG_SESSION } from '../../common/process-tags.js';
import type { AnswerMessage } from '../../common/protocol/signaling.js';
import {
  decodeOutbound,
  encodeInbound,
  type Encoding,
  type InboundMessage,
  type OutboundMessage,
} from '../../common/protocol/terminal-messages.js';
import { checkRetryRate } from './retry-rate.js';
import type { TestCloud } from './test-cloud.js';

type PeerConnection = InstanceType<typeof nodeDataChannel.PeerConnection>;
type DataChannel = ReturnType<PeerConnection['createDataChannel']>;

export interface OpenOptions {
  device: string;
  /** The offer's additive `devices` field: more containers the cloud grants this session. */
  devices?: string[];
  sessionId?: string;
  encoding?: Encoding;
  /** Resolve right after the answer, without waiting for `pty_connected`. */
  noWait?: boolean;
  /**
   * Send the browser's candidates as soon as they are gathered, before the answer, as Chromium does.
   * By default they wait until the answer is applied: see `open`.
   */
  trickleBeforeAnswer?: boolean;
  /** Apply the agent's answer this long after it arrived: a setup slower than the agent's idle timeout. */
  answerDelayMs?: number;
  /**
   * Acknowledge the output taken (the `ack` message, as the page does once xterm.js has shown it), which
   * puts the session under the agent's flow-control window.
   */
  ack?: boolean;
  /** Ack once this many more bytes were consumed (AckPacer's `everyBytes`; the page's pacing if unset). */
  ackEveryBytes?: number;
  /**
   * Output counts as consumed (acked) only once a modelled screen has shown it at this rate, as behind a
   * page whose terminal is slower than the program (ModelledScreen). Implies `ack`.
   */
  showsBytesPerSecond?: number;
  /** The largest message this browser accepts (its SDP's `a=max-message-size`); libdatachannel's default if unset. */
  maxMessageSize?: number;
  /** Called with every output chunk; with it set, output is not kept (`output()` stays empty). */
  onOutput?: (bytes: Buffer) => void;
  timeoutMs?: number;
}

/** A resume offer (issue 13): the dropped session's id, its token, and the last output offset received. */
export interface ResumeOptions extends OpenOptions {
  sessionId: string;
  resumeToken: string;
  resumeOffset: number;
}

/** Reports this process's setup retries and fails above the stated rate (run at every peer file's end). */
export function checkSetupRetries(): void {
  if (BrowserPeer.setups === 0) return;
  console.log(`# ${checkRetryRate('test peers', BrowserPeer.setups, BrowserPeer.iceRetries)}`);
}

/** A real offer SDP from a real peer that is closed at once: for payloads that must get past SDP parsing. */
export async function realOfferSdp(): Promise<string> {
  const pc = new nodeDataChannel.PeerConnection('offer-only', { iceServers: [], bindAddress: '127.0.0.1' });
  const dc = pc.createDataChannel('terminal');
  const sdp = await new Promise<string>((resolve) => {
    const local = pc.localDescription();
    if (local) resolve(local.sdp);
    else pc.onLocalDescription((s) => resolve(s));
  });
  dc.close();
  pc.close();
  return sdp;
}

class IceFailure extends Error {
  constructor(
    message: string,
    readonly sessionId: string,
  ) {
    super(message);
  }
}

/** Two failures in a row happen about once in a few thousand setups; three, about once in half a million. */
const MAX_ICE_RETRIES = 2;

export class OfferRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class BrowserPeer {
  readonly sessionId: string;
  readonly encoding: Encoding;
  readonly messages: OutboundMessage[] = [];
  /** The `pty_connected` that `open()` waited for (taken out of `messages`, as `waitFor` does). */
  ptyConnected: OutboundMessage | undefined;
  answer: AnswerMessage | undefined;
  /** Candidates the agent trickled to us. */
  readonly agentCandidates: string[] = [];
  /** Peer and ICE states in the order seen, for diagnosing a session that never opened. */
  readonly states: string[] = [];
  readonly #cloud: TestCloud;
  readonly #pc: PeerConnection;
  readonly #dc: DataChannel;
  #outputChunks: Buffer[] = [];
  #outputBytes = 0;
  #lastOutputAt = 0;
  #tail = Buffer.alloc(0);
  #pendingCandidates: Array<[string, string]> | undefined = [];
  readonly #onOutput: ((bytes: Buffer) => void) | undefined;
  readonly #acks: AckPacer | undefined;
  readonly #screen: ModelledScreen | undefined;
  #waiters = new Set<() => void>();
  #anyMessage = false;
  #closed = false;
  /** The `offset` of the last output message (the resume offset, before any arrived). */
  #lastOffset: number;
  #offsetGaps = 0;
  #firstOutputAt: number | undefined;

  /** Our candidates, held back until the answer unless `trickleBeforeAnswer` is set. */
  #heldCandidates: Array<Record<string, unknown>> | undefined;
  #holdUntilAnswer = false;

  private constructor(cloud: TestCloud, sessionId: string, options: OpenOptions) {
    this.#cloud = cloud;
    this.sessionId = sessionId;
    this.encoding = options.encoding ?? 'json';
    this.#onOutput = options.onOutput;
    if (options.ack || options.showsBytesPerSecond || options.ackEveryBytes) {
      const pacing = {
        ...DEFAULT_ACK_PACING,
        everyBytes: options.ackEveryBytes ?? DEFAULT_ACK_PACING.everyBytes,
      };
      const acks = new AckPacer((offset) => this.send({ type: 'ack', offset }), pacing);
      this.#acks = acks;
      if (options.showsBytesPerSecond) {
        this.#screen = new ModelledScreen(options.showsBytesPerSecond, (offset) => acks.consumed(offset));
      }
    }
    this.#lastOffset = (options as Partial<ResumeOptions>).resumeOffset ?? 0;
    this.#pc = new nodeDataChannel.PeerConnection(`browser-${sessionId}`, {
      iceServers: [],
      bindAddress: '127.0.0.1',
      ...(options.maxMessageSize ? { maxMessageSize: options.maxMessageSize } : {}),
    });
    // Candidates wait at least until the offer is on the wire (a browser's signaling sends the offer
    // first), and unless `trickleBeforeAnswer` is set until the answer is applied.
    this.#heldCandidates = [];
    this.#holdUntilAnswer = !options.trickleBeforeAnswer;
    this.#pc.onLocalCandidate((candidate, mid) => {
      const ice = {
        session_id: sessionId,
        candidate: candidate.replace(/^a=/, ''),
        sdp_mid: mid,
        sdp_mline_index: 0,
      };
      if (this.#heldCandidates) this.#heldCandidates.push(ice);
      else cloud.sendIce(ice);
    });
    cloud.onIce(sessionId, (ice) => {
      this.agentCandidates.push(ice.candidate);
      if (this.#pendingCandidates) this.#pendingCandidates.push([ice.candidate, ice.sdp_mid]);
      else this.#addCandidate(ice.candidate, ice.sdp_mid);
    });
    this.#pc.onStateChange((state) => {
      this.states.push(state);
      this.#wake();
    });
    this.#pc.onIceStateChange((state) => this.states.push(`ice:${state}`));
    this.#dc = this.#pc.createDataChannel('terminal');
    this.#dc.onMessage((raw) => this.#onMessage(raw as string | Buffer));
    // No `onClosed` on purpose. node-datachannel runs each callback kind through its own queue to the
    // JS thread, and after the close callback it drops the message queue: a reader that is behind (a
    // flood) would lose the last messages it had already received, the agent's goodbye among them. A
    // browser delivers every received message before `close`; this peer does too by asking the channel
    // itself (`channelClosed`), woken by the peer's state changes, since the agent ends the peer with it.
  }

  /**
   * Offers a session for `device` and waits for `pty_connected` (unless `noWait`).
   *
   * By default the agent learns where this peer is only once the answer is applied: the offer goes
   * without candidates and the trickled ones are held until then, and the agent's candidates are added
   * a moment after the answer, so that the agent checks first (bench/load/offerer-race.ts). A
   * libdatachannel offerer that the agent's checks reach before it has the answer fails on its own side
   * (README, known issues): 4 to 6 of 800 setups at 20 in flight did when they went at once, none of
   * over 4,000 since they were held.
   *
   * A setup that still fails ICE before any message arrives is tried again under a new session id, at
   * most `MAX_ICE_RETRIES` times, each retry counted in `BrowserPeer.iceRetries`. Any other failure, an
   * agent refusal included, is thrown at once.
   */
  static async open(cloud: TestCloud, options: OpenOptions): Promise<BrowserPeer> {
    BrowserPeer.setups++;
    for (let retry = 0; ; retry++) {
      try {
        return await BrowserPeer.#openRefusedForCapacityAgain(cloud, options, retry);
      } catch (err) {
        if (!(err instanceof IceFailure) || retry === MAX_ICE_RETRIES) throw err;
        BrowserPeer.iceRetries++;
        // As a cloud does when a browser gives up: the failed try's session (its shell, its slot under
        // the per-container limit) ends now, not at the agent's setup timeout.
        cloud.disconnect(err.sessionId);
        await untilSessionShellsGone(err.sessionId);
      }
    }
  }

  /** A retry's slot is released a moment after the failed try's shell ends: a capacity refusal meanwhile is asked again. */
  static async #openRefusedForCapacityAgain(
    cloud: TestCloud,
    options: OpenOptions,
    retry: number,
  ): Promise<BrowserPeer> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const sessionId =
        retry === 0
          ? (options.sessionId ?? `s-${randomUUID()}`)
          : `${options.sessionId ?? 's'}-retry-${randomUUID()}`;
      try {
        return await BrowserPeer.#openOnce(cloud, options, sessionId);
      } catch (err) {
        const full = err instanceof OfferRefused && err.code.startsWith('TG_ERR_CAPACITY');
        if (retry === 0 || !full || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /**
   * Resumes a dropped session on a new peer: an offer with the session's id, token and the last offset
   * received, answered like any offer; waits for `pty_connected` (unless `noWait`). No retry under a new
   * session id: a resume is for this session only. A refusal throws an error whose `code` is the agent's.
   */
  static async resume(cloud: TestCloud, options: ResumeOptions): Promise<BrowserPeer> {
    return BrowserPeer.#openOnce(cloud, options, options.sessionId);
  }

  /** Sessions this process set up with `open()` (first tries), and those that failed ICE and were tried again. */
  static setups = 0;
  static iceRetries = 0;

  static async #openOnce(cloud: TestCloud, options: OpenOptions, sessionId: string): Promise<BrowserPeer> {
    const peer = new BrowserPeer(cloud, sessionId, options);
    try {
      await peer.#negotiate(options, options.timeoutMs ?? 20_000);
      if (!options.noWait) {
        const connected = () => peer.messages.some((m) => m.type === 'pty_connected');
        await peer.until(
          () => connected() || peer.states.includes('failed'),
          'pty_connected',
          options.timeoutMs ?? 20_000,
        );
        if (!connected())
          throw new Error(`the peer failed before pty_connected; states: ${peer.states.join(',')}`);
        peer.ptyConnected = await peer.waitFor((m) => m.type === 'pty_connected');
      }
    } catch (err) {
      peer.close();
      const iceFailed = peer.states.includes('failed') && peer.messages.length === 0 && !peer.#anyMessage;
      throw iceFailed ? new IceFailure(String(err), sessionId) : err;
    }
    return peer;
  }

  async #negotiate(options: OpenOptions, timeoutMs: number): Promise<void> {
    const { device, devices } = options;
    const { resumeToken, resumeOffset } = options as Partial<ResumeOptions>;
    const local = await this.#localOffer(timeoutMs);
    const offer = this.#holdUntilAnswer ? withoutCandidates(local) : local;
    this.offeredAt = performance.now();
    const answered = this.#cloud.offer(
      {
        session_id: this.sessionId,
        device_id: device,
        sdp: offer,
        sdp_type: 'offer',
        ...(devices && { devices }),
        ...(resumeToken !== undefined && { resume_token: resumeToken, resume_offset: resumeOffset }),
      },
      timeoutMs,
    );
    if (!this.#holdUntilAnswer) this.#releaseCandidates();
    const answer = await answered;
    this.answer = answer;
    if (answer.status !== 'success') throw new OfferRefused(answer.code, `offer refused: ${answer.message}`);
    if (options.answerDelayMs) await new Promise((r) => setTimeout(r, options.answerDelayMs));
    if (!this.#holdUntilAnswer) {
      await this.#applyAnswer(answer.sdp);
      this.#addAgentCandidates();
      return;
    }
    // The agent checks first (bench/load/offerer-race.ts): its candidates come a moment later.
    await this.#applyAnswer(withoutCandidates(answer.sdp));
    this.#releaseCandidates();
    setTimeout(() => this.#addAgentCandidates(), AGENT_CHECKS_FIRST_MS).unref();
  }

  #addAgentCandidates(): void {
    const pending = this.#pendingCandidates ?? [];
    this.#pendingCandidates = undefined;
    if (this.#closed) return;
    for (const [candidate, mid] of pending) this.#addCandidate(candidate, mid);
  }

  #releaseCandidates(): void {
    const held = this.#heldCandidates ?? [];
    this.#heldCandidates = undefined;
    for (const ice of held) this.#cloud.sendIce(ice);
  }

  /**
   * Rarely (about 1 run in 40 here) libdatachannel throws "remote candidate without ICE transport" while
   * it reads the candidates embedded in the answer. The description itself may already be applied then
   * (signaling state stable), and the same candidates also arrive trickled; only if it is not applied is
   * a second try, a moment later, needed.
   */
  async #applyAnswer(sdp: string): Promise<void> {
    try {
      this.#pc.setRemoteDescription(sdp, 'answer');
    } catch {
      if (this.#pc.signalingState() !== 'stable') {
        await new Promise((r) => setTimeout(r, 50));
        if (this.#pc.signalingState() !== 'stable') this.#pc.setRemoteDescription(sdp, 'answer');
      }
      // The candidates embedded in the answer may have been dropped with the error: add them again.
      for (const line of sdp.split(/\r?\n/)) {
        if (line.startsWith('a=candidate:')) this.#addCandidate(line.slice(2), '0');
      }
    }
  }

  #localOffer(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const existing = this.#pc.localDescription();
      if (existing) return resolve(existing.sdp);
      const timer = setTimeout(() => reject(new Error('no local offer')), timeoutMs);
      this.#pc.onLocalDescription((sdp) => {
        clearTimeout(timer);
        resolve(sdp);
      });
    });
  }

  #addCandidate(candidate: string, mid: string): void {
    try {
      this.#pc.addRemoteCandidate(candidate, mid);
    } catch {
      // A candidate the native side refuses is not fatal for the test peer either.
    }
  }

  #onMessage(raw: string | Buffer): void {
    this.#anyMessage = true;
    const message = decodeOutbound(raw);
    if (message.type === 'output') {
      const bytes = this.#trackOffset(message);
      // Without a modelled screen this reader has consumed a message once it is handed over.
      if (message.offset !== undefined) {
        if (this.#screen) this.#screen.received(bytes, message.offset);
        else this.#acks?.consumed(message.offset);
      }
    }
    if (message.type === 'output' && this.#onOutput) {
      this.#onOutput(
        typeof message.data === 'string' ? Buffer.from(message.data, 'utf8') : Buffer.from(message.data),
      );
      this.#wake();
      return;
    }
    this.messages.push(message);
    if (message.type === 'output') {
      const bytes =
        typeof message.data === 'string' ? Buffer.from(message.data, 'utf8') : Buffer.from(message.data);
      this.#outputChunks.push(bytes);
      this.#outputBytes += bytes.length;
      const joined = Buffer.concat([this.#tail, bytes]);
      this.#tail = joined.subarray(Math.max(0, joined.length - 512));
    }
    this.#wake();
  }

  /** Each output's offset must follow the last one by the bytes it carries (raw bytes; UTF-8 text here). */
  #trackOffset(message: { data: string | Uint8Array; offset?: number }): number {
    this.#lastOutputAt = performance.now();
    this.#firstOutputAt ??= this.#lastOutputAt;
    const bytes = typeof message.data === 'string' ? Buffer.byteLength(message.data) : message.data.length;
    if (message.offset !== this.#lastOffset + bytes) this.#offsetGaps++;
    this.#lastOffset = message.offset ?? this.#lastOffset + bytes;
    return bytes;
  }

  /** The `offset` of the last output received: where a resume starts. */
  get lastOffset(): number {
    return this.#lastOffset;
  }

  /** Output messages whose `offset` did not follow on from the one before (0 when nothing was lost). */
  get offsetGaps(): number {
    return this.#offsetGaps;
  }

  /** When the offer went out and when the first output arrived (`performance.now()`). */
  offeredAt = 0;
  get firstOutputAt(): number | undefined {
    return this.#firstOutputAt;
  }

  /** The resume token the agent handed out in `pty_connected`. */
  get resumeToken(): string | undefined {
    const connected = this.ptyConnected ?? this.messages.find((m) => m.type === 'pty_connected');
    return connected?.type === 'pty_connected' ? connected.resume_token : undefined;
  }

  #wake(): void {
    for (const waiter of this.#waiters) waiter();
  }

  get channelClosed(): boolean {
    return this.#anyMessage && !this.#dc.isOpen();
  }

  get outputBytes(): number {
    return this.#outputBytes;
  }

  /** When the last output message arrived (`performance.now()`), to time a transfer to its end. */
  get lastOutputAt(): number {
    return this.#lastOutputAt;
  }

  /** The agent's end of the selected candidate pair, `address:port`, once ICE has chosen one. */
  get agentEndpoint(): string | undefined {
    const pair = this.#pc.getSelectedCandidatePair();
    return pair ? `${pair.remote.address}:${pair.remote.port}` : undefined;
  }

  /** When the last output is on the modelled screen (`showsBytesPerSecond`), else when it arrived. */
  get lastShownAt(): number {
    return this.#screen?.lastShownAt ?? this.#lastOutputAt;
  }

  /** All terminal output so far, as bytes. */
  output(): Buffer {
    if (this.#outputChunks.length > 1) this.#outputChunks = [Buffer.concat(this.#outputChunks)];
    return this.#outputChunks[0] ?? Buffer.alloc(0);
  }

  /** All terminal output so far, as text (the "screen"). */
  screen(): string {
    return this.output().toString('utf8');
  }

  /** The last 512 bytes of output as text: cheap to check on every message of a bulk transfer. */
  tail(): string {
    return this.#tail.toString('latin1');
  }

  clearOutput(): void {
    this.#outputChunks = [];
    this.#outputBytes = 0;
    this.#tail = Buffer.alloc(0);
  }

  send(message: InboundMessage | Record<string, unknown>, encoding: Encoding = this.encoding): void {
    const encoded = encodeInbound(message as InboundMessage, encoding);
    if (typeof encoded === 'string') this.#dc.sendMessage(encoded);
    else this.#dc.sendMessageBinary(encoded);
  }

  sendRaw(raw: string | Buffer): void {
    if (typeof raw === 'string') this.#dc.sendMessage(raw);
    else this.#dc.sendMessageBinary(raw);
  }

  type(text: string): void {
    this.send({ type: 'input', data: this.encoding === 'msgpack' ? Buffer.from(text) : text });
  }

  /** Waits until `check` is true, re-checked on every message. */
  async until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    if (check()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        const seen = this.messages.map((m) => (m.type === 'output' ? 'output' : JSON.stringify(m))).slice(-8);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; last messages: ${seen.join(' ')}; ` +
              `states: ${this.states.join(',')}; agent candidates: ${this.agentCandidates.length}`,
          ),
        );
      }, timeoutMs);
      const waiter = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve();
      };
      this.#waiters.add(waiter);
    });
  }

  /** Waits for a message matching `match` among those not yet returned by an earlier `waitFor`. */
  async waitFor(match: (m: OutboundMessage) => boolean, timeoutMs = 15_000): Promise<OutboundMessage> {
    let found: OutboundMessage | undefined;
    await this.until(
      () => (found = this.messages.find(match)) !== undefined,
      'a matching message',
      timeoutMs,
    );
    this.messages.splice(this.messages.indexOf(found!), 1);
    return found!;
  }

  waitForScreen(text: string, timeoutMs = 15_000): Promise<void> {
    return this.until(() => this.screen().includes(text), JSON.stringify(text), timeoutMs);
  }

  /**
   * Drops the connection the way a killed tab or a lost network does: no `close` message, no orderly
   * channel close; the peer connection is torn down under the channel.
   */
  drop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cloud.offIce(this.sessionId);
    this.#pc.close();
  }

  /**
   * Ends the session the way the page's disconnect does, and waits for it: a `close` message, then the
   * agent's goodbye closes the channel, then this peer closes. (`close()` alone only tears the peer down:
   * an agent with resume on takes that for a drop, see `drop`.)
   */
  async end(timeoutMs = 15_000): Promise<void> {
    if (this.#closed) return;
    if (this.#dc.isOpen()) {
      this.send({ type: 'close' });
      await this.until(() => this.channelClosed, 'the agent to close the channel', timeoutMs);
    }
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#acks?.close();
    this.#screen?.close();
    this.#cloud.offIce(this.sessionId);
    try {
      this.#dc.close();
    } catch {
      // Already closed.
    }
    this.#pc.close();
  }
}

/**
 * Waits until no process on the host carries the session's tag (`TAG_SESSION`, in the environment of
 * every exec the agent starts), then a moment more for the session's slot to be released after its shell.
 */
async function untilSessionShellsGone(sessionId: string, timeoutMs = 30_000): Promise<void> {
  const tag = Buffer.from(`${TAG_SESSION}=${sessionId}\0`);
  const tagged = () =>
    readdirSync('/proc').some((pid) => {
      if (!/^\d+$/.test(pid)) return false;
      try {
        return readFileSync(`/proc/${pid}/environ`).includes(tag);
      } catch {
        return false; // gone meanwhile, or not ours to read
      }
    });
  const deadline = Date.now() + timeoutMs;
  while (tagged()) {
    if (Date.now() > deadline) throw new Error(`the shell of failed setup ${sessionId} did not end`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 250));
}
