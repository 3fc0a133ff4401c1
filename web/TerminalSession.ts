/**
 * One browser terminal session: an RTCPeerConnection with the `terminal` data channel, signaled through
 * the cloud exactly as the cloud's contract has a browser do (`webrtc:offer` out, the answer back as a
 * `webrtc:offer` event, `webrtc:ice` both ways, `webrtc:disconnect`). Binary (msgpack) or JSON messages.
 * A container that stops under the session leaves it `detached`, not ended: see Reattacher.
 * A connection that drops without a goodbye (network, signaling, a reloaded tab) is `reconnecting`: the
 * session sends resume offers (same `session_id`, its `resume_token`, the last output `offset` received)
 * on new peer connections, with a growing wait (ResumeBackoff), until one is answered or the agent
 * refuses; the agent replays what was printed meanwhile, so the terminal goes on where it was.
 */
import { Packr } from 'msgpackr';
import type { Socket } from 'socket.io-client';
import type {
  AnswerMessage,
  BrowserToCloudEvents,
  CloudToBrowserEvents,
  IceMessage,
} from '../common/protocol/signaling.js';
import { AckPacer } from '../common/AckPacer.js';
import type { InboundMessage, OutboundMessage } from '../common/protocol/terminal-messages.js';
import { Reattacher } from './Reattacher.js';
import { readConnectionPath, type ConnectionPath } from './connection-path.js';
import { ResumeBackoff } from './ResumeBackoff.js';
import type { StoredSession } from './SessionStore.js';

export type Encoding = 'msgpack' | 'json';
/** What the page shows (the agent's own states are `SessionState` in common/protocol/worker-messages.ts). */
export type PageSessionState = 'connecting' | 'connected' | 'detached' | 'reconnecting' | 'disconnected';

export interface TerminalSessionOptions {
  socket: CloudSocket;
  deviceId: string;
  encoding: Encoding;
  cols: number;
  rows: number;
  onState: (state: PageSessionState, detail: string) => void;
  /**
   * Output for the terminal; `consumed` is to be called once the terminal has processed it (xterm's
   * write callback), so the agent's flow-control window covers the terminal's write queue too.
   */
  onOutput: (data: string | Uint8Array, consumed: () => void) => void;
  onNotice: (text: string) => void;
  /** Attach again by itself, with a growing wait, when the container comes back (default off). */
  autoReattach?: boolean;
  /** The connection's path (direct or relayed, RTT), once connected and every few seconds after. */
  onPath: (path: ConnectionPath | undefined) => void;
  /** STUN/TURN servers and transport policy for the peer connection (the cloud's `/api/ice-servers`). */
  ice: RTCConfiguration;
  /** A session a previous page of this tab left (SessionStore): resumed instead of a new one. */
  resume?: StoredSession;
}

/** The page's Socket.IO client, typed by the signaling contract's event maps. */
export type CloudSocket = Socket<CloudToBrowserEvents, BrowserToCloudEvents>;

const CONNECT_TIMEOUT_MS = 20_000;
/** A resume try not connected by then is given up, and the next one goes (the wait grows meanwhile). */
const RESUME_TRY_TIMEOUT_MS = 10_000;
/** Answers after which no resume can succeed: the session is gone (or its replay is). */
const RESUME_FINAL_CODES: readonly string[] = ['TG_ERR_RESUME_REFUSED', 'TG_ERR_RESUME_OFFSET_OUT_OF_RANGE'];
const PING_INTERVAL_MS = 10_000;
const PONG_TIMEOUT_MS = 30_000;
/** The `pty_disconnected` reason after which the same peer connection can attach again. */
const CONTAINER_STOPPED = 'container-stopped';
const PATH_INTERVAL_MS = 5_000;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export class TerminalSession {
  readonly id: string;
  readonly deviceId: string;
  readonly encoding: Encoding;
  readonly #opts: TerminalSessionOptions;
  /** The current connection; a resume replaces both. */
  #pc!: RTCPeerConnection;
  #channel!: RTCDataChannel;
  #pendingIce: RTCIceCandidateInit[] = [];
  #remoteSet = false;
  #state: PageSessionState = 'connecting';
  #size: { cols: number; rows: number };
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pathTimer: ReturnType<typeof setInterval> | undefined;
  #lastPong = Date.now();
  /** Acks what the terminal has processed; an agent without `offset` on its output gets none. */
  readonly #acks = new AckPacer((offset) => this.#send({ type: 'ack', offset }));
  /** The container the terminal was last attached to: a reattach goes there. */
  #container: string;
  readonly #reattacher: Reattacher;
  /** The session's secret for a resume (`pty_connected.resume_token`); none while the agent has resume off. */
  #token: string | undefined;
  /** The last output offset received, where an in-page resume continues. */
  #received = 0;
  /** The last output offset the terminal has shown, where a reloaded page's screen starts. */
  #shown = 0;
  #resuming = false;
  readonly #backoff = new ResumeBackoff();

  constructor(opts: TerminalSessionOptions) {
    this.#opts = opts;
    this.id = opts.resume?.sessionId ?? crypto.randomUUID();
    this.deviceId = opts.deviceId;
    this.encoding = opts.encoding;
    this.#size = { cols: opts.cols, rows: opts.rows };
    this.#container = opts.deviceId;
    this.#reattacher = new Reattacher(() => this.#sendReattach(), opts.autoReattach ?? false);
    if (opts.resume) {
      this.#token = opts.resume.token;
      this.#received = this.#shown = opts.resume.offset;
    }
  }

  get state(): PageSessionState {
    return this.#state;
  }

  /** What a reloaded page needs to resume this session, once the agent gave it a token. */
  get stored(): StoredSession | undefined {
    if (!this.#token || this.#state === 'disconnected') return undefined;
    const { id: sessionId, deviceId, encoding } = this;
    return { sessionId, deviceId, encoding, token: this.#token, offset: this.#shown };
  }

  /** Sends the offer through the cloud: a resume offer for a session a previous page left. */
  async start(): Promise<void> {
    if (this.#token) {
      this.#setState('reconnecting', `resuming the session on ${this.deviceId}…`);
      await this.#offer(true);
      return;
    }
    this.#setState('connecting', `connecting to ${this.deviceId}…`);
    this.#connectTimer = setTimeout(() => this.close('connect-timeout'), CONNECT_TIMEOUT_MS);
    await this.#offer(false);
  }

  /**
   * The connection dropped without the agent's goodbye (channel or peer closed, signaling lost, no
   * pong): resume it if the session has a token, else end it.
   */
  connectionLost(reason: string, fromCloud = false): void {
    if (this.#state === 'disconnected') return;
    if (!this.#token) {
      this.close(reason, undefined, fromCloud);
      return;
    }
    this.#dropPeer();
    if (!this.#backoff.schedule(() => void this.#offer(true))) {
      this.#end('the session could not be resumed in time');
      return;
    }
    this.#setState('reconnecting', `reconnecting… (${reason})`);
  }

  /** A new peer connection and its offer; with `resume`, the offer carries the token and the offset. */
  async #offer(resume: boolean): Promise<void> {
    if (this.#state === 'disconnected') return;
    const pc = this.#openPeer();
    this.#resuming = resume;
    if (resume) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = setTimeout(() => this.connectionLost('no answer'), RESUME_TRY_TIMEOUT_MS);
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    if (this.state === 'disconnected' || pc !== this.#pc) return;
    this.#opts.socket.emit('webrtc:offer', {
      session_id: this.id,
      device_id: this.deviceId,
      sdp: pc.localDescription?.sdp ?? offer.sdp ?? '',
      sdp_type: 'offer',
      ...(resume && this.#token && { resume_token: this.#token, resume_offset: this.#received }),
    });
  }

  #openPeer(): RTCPeerConnection {
    const pc = new RTCPeerConnection(this.#opts.ice);
    const channel = pc.createDataChannel('terminal');
    channel.binaryType = 'arraybuffer';
    channel.onmessage = (ev: MessageEvent<string | ArrayBuffer>) => this.#onMessage(ev.data);
    channel.onclose = () => this.connectionLost('channel closed');
    pc.onicecandidate = (ev) => {
      if (!ev.candidate || this.#state === 'disconnected') return;
      this.#opts.socket.emit('webrtc:ice', {
        session_id: this.id,
        candidate: ev.candidate.candidate,
        sdp_mid: ev.candidate.sdpMid,
        sdp_mline_index: ev.candidate.sdpMLineIndex,
      });
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') this.connectionLost('peer failed');
    };
    this.#pc = pc;
    this.#channel = channel;
    this.#pendingIce = [];
    this.#remoteSet = false;
    return pc;
  }

  /** Closes the current connection without a goodbye: the agent keeps the session for a resume. */
  #dropPeer(): void {
    clearTimeout(this.#connectTimer);
    clearInterval(this.#pingTimer);
    this.#channel.onclose = null;
    this.#channel.onmessage = null;
    this.#pc.onconnectionstatechange = null;
    this.#pc.onicecandidate = null;
    this.#pc.close();
  }

  /** The cloud's `webrtc:offer` event carrying the agent's answer (or an error). */
  async handleAnswer(answer: AnswerMessage): Promise<void> {
    if (this.#state === 'disconnected' || this.#remoteSet) return;
    if (answer.status !== 'success') {
      const text = answer.message || 'offer refused';
      if (!this.#resuming) this.close(text, answer.code);
      else if (RESUME_FINAL_CODES.includes(answer.code)) this.#end(`${text} (${answer.code})`);
      else this.connectionLost(`${text} (${answer.code})`);
      return;
    }
    if (this.#pc.signalingState !== 'have-local-offer') return;
    await this.#pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    this.#remoteSet = true;
    for (const c of this.#pendingIce.splice(0)) await this.#pc.addIceCandidate(c).catch(() => undefined);
  }

  async handleIce(ice: IceMessage): Promise<void> {
    if (this.#state === 'disconnected') return;
    const init: RTCIceCandidateInit = {
      candidate: ice.candidate,
      sdpMid: ice.sdp_mid ?? null,
      sdpMLineIndex: ice.sdp_mline_index ?? null,
    };
    if (ice.sdp_mid == null && ice.sdp_mline_index == null) init.sdpMLineIndex = 0;
    if (!this.#remoteSet) this.#pendingIce.push(init);
    else await this.#pc.addIceCandidate(init).catch(() => undefined);
  }

  /** Keystrokes go out at once, never behind output (the channel's two directions are independent). */
  sendInput(data: string): void {
    // Nothing reads input while detached; the agent would only refuse it.
    if (this.#state !== 'detached') this.#send({ type: 'input', data });
  }

  /** Attaches the terminal again to the container that stopped (the button); a no-op unless detached. */
  reattach(): void {
    this.#reattacher.tryNow();
  }

  /** Turns the automatic reattach on or off (the page setting). */
  setAutoReattach(on: boolean): void {
    this.#reattacher.setAuto(on);
  }

  resize(cols: number, rows: number): void {
    this.#size = { cols, rows };
    if (this.#state === 'connected') this.#send({ type: 'resize', cols, rows });
  }

  /**
   * Ends the session: a `close` message on the channel, `webrtc:disconnect` to the cloud unless the
   * cloud ended it, then the peer connection. Idempotent.
   */
  close(reason: string, code?: string, fromCloud = false): void {
    if (this.#state === 'disconnected') return;
    clearTimeout(this.#connectTimer);
    clearInterval(this.#pingTimer);
    this.#acks.close();
    this.#reattacher.close();
    clearInterval(this.#pathTimer);
    this.#backoff.close();
    this.#send({ type: 'close' });
    if (!fromCloud) this.#opts.socket.emit('webrtc:disconnect', { session_id: this.id });
    this.#channel.onclose = null;
    this.#pc.onconnectionstatechange = null;
    this.#pc.close();
    this.#setState('disconnected', code ? `${reason} (${code})` : reason);
  }

  /** The agent cannot resume the session (refused, or the grace is over): it ended; a new one is up to the user. */
  #end(why: string): void {
    this.close(`session ended: ${why}`);
  }

  #onMessage(raw: string | ArrayBuffer): void {
    let msg: OutboundMessage;
    try {
      msg = (
        typeof raw === 'string' ? JSON.parse(raw) : packr.unpack(new Uint8Array(raw))
      ) as OutboundMessage;
    } catch {
      this.#opts.onNotice('dropped a malformed message from the agent');
      return;
    }
    switch (msg.type) {
      case 'output': {
        const { offset } = msg;
        if (offset !== undefined) this.#received = offset;
        this.#opts.onOutput(msg.data, () => offset !== undefined && this.#consumed(offset));
        break;
      }
      case 'ready':
        if (this.#resuming) this.#resumed();
        break;
      case 'pty_connected':
        clearTimeout(this.#connectTimer);
        this.#backoff.reset();
        this.#reattacher.attached();
        this.#container = msg.container;
        this.#token = msg.resume_token ?? this.#token;
        this.#setState('connected', `connected to ${msg.container} (${this.encoding})`);
        this.#send({ type: 'resize', cols: this.#size.cols, rows: this.#size.rows });
        this.#startKeepalive();
        this.#showPath();
        this.#pathTimer ??= setInterval(() => this.#showPath(), PATH_INTERVAL_MS);
        break;
      case 'pty_disconnected':
        if (msg.reason === CONTAINER_STOPPED && this.#channel.readyState === 'open') this.#detach();
        else this.close(msg.reason ?? 'pty-disconnected');
        break;
      case 'pong':
        this.#lastPong = Date.now();
        break;
      case 'error': {
        const text = `${msg.message}${msg.code ? ` (${msg.code})` : ''}`;
        // While detached, what the agent refuses is a reattach: said in the state, not on the screen.
        if (this.#state === 'detached' && this.#reattacher.trying) {
          this.#setState('detached', `${this.#container} not back: ${text}`);
          this.#reattacher.refused();
        } else this.#opts.onNotice(`error: ${text}`);
        break;
      }
    }
  }

  /**
   * A resume try's channel is open: the session is back. `pty_connected` follows unless the container
   * had stopped (the session stays detached, its reattach still possible).
   */
  #resumed(): void {
    this.#resuming = false;
    clearTimeout(this.#connectTimer);
    this.#backoff.reset();
    this.#startKeepalive();
    if (this.#reattacher.isDetached)
      this.#setState('detached', `${this.#container} stopped (${CONTAINER_STOPPED})`);
  }

  #startKeepalive(): void {
    this.#lastPong = Date.now();
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => this.#keepalive(), PING_INTERVAL_MS);
  }

  /** The container stopped: the session stays (pings go on), and can attach again when it runs. */
  #detach(): void {
    this.#opts.onNotice(`${this.#container} stopped (${CONTAINER_STOPPED}): reattach once it runs again`);
    this.#setState('detached', `${this.#container} stopped (${CONTAINER_STOPPED})`);
    this.#reattacher.detached();
  }

  #sendReattach(): void {
    this.#setState('detached', `reattaching to ${this.#container}…`);
    this.#send({
      type: 'connect_pty',
      container: this.#container,
      cols: this.#size.cols,
      rows: this.#size.rows,
    });
  }

  #showPath(): void {
    readConnectionPath(this.#pc)
      .then((path) => {
        if (this.#state === 'connected') this.#opts.onPath(path);
      })
      .catch(() => undefined); // a closing connection has no stats; the next state says why
  }

  #consumed(offset: number): void {
    this.#shown = Math.max(this.#shown, offset);
    this.#acks.consumed(offset);
  }

  #keepalive(): void {
    if (Date.now() - this.#lastPong > PONG_TIMEOUT_MS) {
      this.connectionLost('keepalive timeout');
      return;
    }
    this.#send({ type: 'ping' });
  }

  #send(msg: InboundMessage): void {
    if (this.#channel.readyState !== 'open') return;
    try {
      if (this.encoding === 'json') this.#channel.send(JSON.stringify(msg));
      else this.#channel.send(packr.pack(msg) as Uint8Array<ArrayBuffer>);
    } catch {
      // The channel closed under us; onclose ends the session.
    }
  }

  #setState(state: PageSessionState, detail: string): void {
    this.#state = state;
    this.#opts.onState(state, detail);
  }
}
