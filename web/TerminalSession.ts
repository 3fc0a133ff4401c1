/**
 * One browser terminal session: an RTCPeerConnection with the `terminal` data channel, signaled through
 * the cloud exactly as the cloud's contract has a browser do (`webrtc:offer` out, the answer back as a
 * `webrtc:offer` event, `webrtc:ice` both ways, `webrtc:disconnect`). Binary (msgpack) or JSON messages.
 */
import { Packr } from 'msgpackr';
import type { Socket } from 'socket.io-client';
import type {
  AnswerMessage,
  BrowserToCloudEvents,
  CloudToBrowserEvents,
  IceMessage,
} from '../common/protocol/signaling.js';
import type { InboundMessage, OutboundMessage } from '../common/protocol/terminal-messages.js';
import { readConnectionPath, type ConnectionPath } from './connection-path.js';

export type Encoding = 'msgpack' | 'json';
/** What the page shows (the agent's own states are `SessionState` in common/protocol/worker-messages.ts). */
export type PageSessionState = 'connecting' | 'connected' | 'disconnected';

export interface TerminalSessionOptions {
  socket: CloudSocket;
  deviceId: string;
  encoding: Encoding;
  cols: number;
  rows: number;
  onState: (state: PageSessionState, detail: string) => void;
  onOutput: (data: string | Uint8Array) => void;
  onNotice: (text: string) => void;
  /** The connection's path (direct or relayed, RTT), once connected and every few seconds after. */
  onPath: (path: ConnectionPath | undefined) => void;
  /** STUN/TURN servers and transport policy for the peer connection (the cloud's `/api/ice-servers`). */
  ice: RTCConfiguration;
}

/** The page's Socket.IO client, typed by the signaling contract's event maps. */
export type CloudSocket = Socket<CloudToBrowserEvents, BrowserToCloudEvents>;

const CONNECT_TIMEOUT_MS = 20_000;
const PING_INTERVAL_MS = 10_000;
const PONG_TIMEOUT_MS = 30_000;
const PATH_INTERVAL_MS = 5_000;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export class TerminalSession {
  readonly id: string = crypto.randomUUID();
  readonly deviceId: string;
  readonly encoding: Encoding;
  readonly #opts: TerminalSessionOptions;
  readonly #pc: RTCPeerConnection;
  readonly #channel: RTCDataChannel;
  readonly #pendingIce: RTCIceCandidateInit[] = [];
  #remoteSet = false;
  #state: PageSessionState = 'connecting';
  #size: { cols: number; rows: number };
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pathTimer: ReturnType<typeof setInterval> | undefined;
  #lastPong = Date.now();

  constructor(opts: TerminalSessionOptions) {
    this.#opts = opts;
    this.deviceId = opts.deviceId;
    this.encoding = opts.encoding;
    this.#size = { cols: opts.cols, rows: opts.rows };
    this.#pc = new RTCPeerConnection(opts.ice);
    this.#channel = this.#pc.createDataChannel('terminal');
    this.#channel.binaryType = 'arraybuffer';
    this.#channel.onmessage = (ev: MessageEvent<string | ArrayBuffer>) => this.#onMessage(ev.data);
    this.#channel.onclose = () => this.close('channel-closed');
    this.#pc.onicecandidate = (ev) => {
      if (!ev.candidate || this.#state === 'disconnected') return;
      this.#opts.socket.emit('webrtc:ice', {
        session_id: this.id,
        candidate: ev.candidate.candidate,
        sdp_mid: ev.candidate.sdpMid,
        sdp_mline_index: ev.candidate.sdpMLineIndex,
      });
    };
    this.#pc.onconnectionstatechange = () => {
      if (this.#pc.connectionState === 'failed') this.close('peer-failed');
    };
  }

  get state(): PageSessionState {
    return this.#state;
  }

  /** Creates the offer and sends it through the cloud. */
  async start(): Promise<void> {
    this.#setState('connecting', `connecting to ${this.deviceId}…`);
    this.#connectTimer = setTimeout(() => this.close('connect-timeout'), CONNECT_TIMEOUT_MS);
    const offer = await this.#pc.createOffer();
    await this.#pc.setLocalDescription(offer);
    if (this.#state === 'disconnected') return;
    this.#opts.socket.emit('webrtc:offer', {
      session_id: this.id,
      device_id: this.deviceId,
      sdp: this.#pc.localDescription?.sdp ?? offer.sdp ?? '',
      sdp_type: 'offer',
    });
  }

  /** The cloud's `webrtc:offer` event carrying the agent's answer (or an error). */
  async handleAnswer(answer: AnswerMessage): Promise<void> {
    if (this.#state === 'disconnected' || this.#remoteSet) return;
    if (answer.status !== 'success') {
      this.close(answer.message || 'offer refused', answer.code);
      return;
    }
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

  sendInput(data: string): void {
    this.#send({ type: 'input', data });
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
    clearInterval(this.#pathTimer);
    this.#send({ type: 'close' });
    if (!fromCloud) this.#opts.socket.emit('webrtc:disconnect', { session_id: this.id });
    this.#channel.onclose = null;
    this.#pc.onconnectionstatechange = null;
    this.#pc.close();
    this.#setState('disconnected', code ? `${reason} (${code})` : reason);
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
      case 'output':
        this.#opts.onOutput(msg.data);
        break;
      case 'ready':
        break;
      case 'pty_connected':
        clearTimeout(this.#connectTimer);
        this.#setState('connected', `connected to ${msg.container} (${this.encoding})`);
        this.#send({ type: 'resize', cols: this.#size.cols, rows: this.#size.rows });
        this.#lastPong = Date.now();
        this.#pingTimer = setInterval(() => this.#keepalive(), PING_INTERVAL_MS);
        this.#showPath();
        this.#pathTimer ??= setInterval(() => this.#showPath(), PATH_INTERVAL_MS);
        break;
      case 'pty_disconnected':
        this.close(msg.reason ?? 'pty-disconnected');
        break;
      case 'pong':
        this.#lastPong = Date.now();
        break;
      case 'error':
        this.#opts.onNotice(`error: ${msg.message}${msg.code ? ` (${msg.code})` : ''}`);
        break;
    }
  }

  #showPath(): void {
    readConnectionPath(this.#pc)
      .then((path) => {
        if (this.#state === 'connected') this.#opts.onPath(path);
      })
      .catch(() => undefined); // a closing connection has no stats; the next state says why
  }

  #keepalive(): void {
    if (Date.now() - this.#lastPong > PONG_TIMEOUT_MS) {
      this.close('keepalive-timeout');
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
