/**
 * One browser terminal session: an RTCPeerConnection with the `terminal` data channel, signaled through
 * the cloud exactly as the cloud's contract has a browser do (`webrtc:offer` out, the answer back as a
 * `webrtc:offer` event, `webrtc:ice` both ways, `webrtc:disconnect`). Binary (msgpack) or JSON messages.
 * A container that stops under the session leaves it `detached`, not ended: see Reattacher.
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

export type Encoding = 'msgpack' | 'json';
/** What the page shows (the agent's own states are `SessionState` in common/protocol/worker-messages.ts). */
export type PageSessionState = 'connecting' | 'connected' | 'detached' | 'disconnected';

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
}

/** The page's Socket.IO client, typed by the signaling contract's event maps. */
export type CloudSocket = Socket<CloudToBrowserEvents, BrowserToCloudEvents>;

const CONNECT_TIMEOUT_MS = 20_000;
const PING_INTERVAL_MS = 10_000;
const PONG_TIMEOUT_MS = 30_000;
/** The `pty_disconnected` reason after which the same peer connection can attach again. */
const CONTAINER_STOPPED = 'container-stopped';
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
  /** Acks what the terminal has processed; an agent without `offset` on its output gets none. */
  readonly #acks = new AckPacer((offset) => this.#send({ type: 'ack', offset }));
  /** The container the terminal was last attached to: a reattach goes there. */
  #container: string;
  readonly #reattacher: Reattacher;

  constructor(opts: TerminalSessionOptions) {
    this.#opts = opts;
    this.deviceId = opts.deviceId;
    this.encoding = opts.encoding;
    this.#size = { cols: opts.cols, rows: opts.rows };
    this.#container = opts.deviceId;
    this.#reattacher = new Reattacher(() => this.#sendReattach(), opts.autoReattach ?? false);
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
      case 'output': {
        const { offset } = msg;
        this.#opts.onOutput(msg.data, () => offset !== undefined && this.#acks.consumed(offset));
        break;
      }
      case 'ready':
        break;
      case 'pty_connected':
        clearTimeout(this.#connectTimer);
        this.#reattacher.attached();
        this.#container = msg.container;
        this.#setState('connected', `connected to ${msg.container} (${this.encoding})`);
        this.#send({ type: 'resize', cols: this.#size.cols, rows: this.#size.rows });
        this.#lastPong = Date.now();
        clearInterval(this.#pingTimer);
        this.#pingTimer = setInterval(() => this.#keepalive(), PING_INTERVAL_MS);
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
