/**
 * The agent's Socket.IO link to the cloud. It validates what arrives, hands it to its handler, and turns
 * every outcome into the design document's replies: the answer as the `webrtc:offer` ack (or a
 * `webrtc:answer` event when the cloud sent no ack), agent ICE candidates as `webrtc:ice`.
 * Reconnects with jittered exponential backoff (socket.io-client's own), and also after the server
 * dropped the link ('io server disconnect'), which socket.io-client deliberately does not retry.
 */
import { io, type Socket } from 'socket.io-client';
import { toErrorData, TermgateError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  disconnectSchema,
  iceSchema,
  offerSchema,
  parsePayload,
  peekIds,
  Topics,
  type AnswerMessage,
  type DeviceInfo,
  type DisconnectMessage,
  type IceMessage,
  type OfferMessage,
  type OutboundIceMessage,
} from '../protocol/signaling-messages.js';
import { SafeEmitter } from '../SafeEmitter.js';

export interface SignalingHandler {
  offer(message: OfferMessage): Promise<AnswerMessage>;
  ice(message: IceMessage): void;
  disconnect(message: DisconnectMessage): void;
  devices(): Promise<DeviceInfo[]>;
}

export interface SignalingClientOptions {
  url: string;
  token: string | undefined;
  agentId: string;
  maxSdpBytes: number;
  logger: Logger;
}

export interface SignalingClientEvents {
  connect: [];
  disconnect: [reason: string];
  reconnect: [attempt: number];
  /** A payload from the cloud was refused (and answered where it could be). */
  'bad-payload': [topic: string, code: string];
}

type Ack = (response: unknown) => void;

export class SignalingClient extends SafeEmitter<SignalingClientEvents> {
  readonly #socket: Socket;
  readonly #logger: Logger;
  readonly #offerSchema;
  #handler: SignalingHandler | undefined;
  #closed = false;
  #reconnectTimer: NodeJS.Timeout | undefined;

  constructor(options: SignalingClientOptions) {
    super();
    this.#logger = options.logger;
    this.#offerSchema = offerSchema(options.maxSdpBytes);
    this.#socket = io(options.url, {
      autoConnect: false,
      auth: { token: options.token, role: 'agent', agent_id: options.agentId },
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 10_000,
      randomizationFactor: 0.5,
    });
    this.#socket.on('connect', () => {
      this.#logger.info({ url: redactUrl(options.url) }, 'signaling connected');
      this.safeEmit('connect');
    });
    this.#socket.on('disconnect', (reason) => {
      this.#logger.warn({ reason }, 'signaling disconnected');
      this.safeEmit('disconnect', reason);
      // The cloud may drop us on purpose (restart, rebalancing); terminals are peer to peer and keep
      // working, but new offers need the link back. Retry after a jittered delay.
      if (reason === 'io server disconnect' && !this.#closed) {
        clearTimeout(this.#reconnectTimer);
        this.#reconnectTimer = setTimeout(
          () => {
            if (!this.#closed && !this.#socket.connected) this.#socket.connect();
          },
          500 + Math.random() * 500,
        );
      }
    });
    this.#socket.on('connect_error', (err) =>
      this.#logger.warn({ err: err.message }, 'signaling connect failed'),
    );
    this.#socket.io.on('reconnect', (attempt) => this.safeEmit('reconnect', attempt));
    this.#socket.on(Topics.offer, (payload: unknown, ack?: Ack) => void this.#onOffer(payload, ack));
    this.#socket.on(Topics.ice, (payload: unknown) => this.#onIce(payload));
    this.#socket.on(Topics.disconnect, (payload: unknown, ack?: Ack) => this.#onDisconnect(payload, ack));
    this.#socket.on(Topics.devices, (_payload: unknown, ack?: Ack) => void this.#onDevices(_payload, ack));
  }

  get connected(): boolean {
    return this.#socket.connected;
  }

  start(handler: SignalingHandler): void {
    this.#handler = handler;
    this.#socket.connect();
  }

  sendIce(message: OutboundIceMessage): void {
    if (this.#socket.connected) this.#socket.emit(Topics.ice, message);
  }

  /** Tells the cloud a session ended on the agent's side. */
  sendDisconnect(sessionId: string, reason: string): void {
    if (this.#socket.connected) this.#socket.emit(Topics.disconnect, { session_id: sessionId, reason });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    this.#socket.removeAllListeners();
    this.#socket.io.removeAllListeners();
    this.#socket.disconnect();
  }

  async #onOffer(payload: unknown, ack: Ack | undefined): Promise<void> {
    let answer: AnswerMessage;
    try {
      const offer = parsePayload(this.#offerSchema, payload, Topics.offer);
      answer = await this.#handler!.offer(offer);
    } catch (err) {
      const error = toErrorData(err);
      const ids = peekIds(payload);
      if (err instanceof TermgateError) this.safeEmit('bad-payload', Topics.offer, error.code);
      answer = {
        action: Topics.offer,
        correlation_id: ids.correlationId,
        status: 'error',
        session_id: ids.sessionId,
        message: error.message,
        code: error.code,
      };
    }
    if (ack) ack(answer);
    else this.#socket.emit(Topics.answer, answer);
  }

  #onIce(payload: unknown): void {
    try {
      this.#handler!.ice(parsePayload(iceSchema, payload, Topics.ice));
    } catch (err) {
      this.#refuse(Topics.ice, err, payload);
    }
  }

  #onDisconnect(payload: unknown, ack: Ack | undefined): void {
    try {
      this.#handler!.disconnect(parsePayload(disconnectSchema, payload, Topics.disconnect));
      ack?.({ status: 'success' });
    } catch (err) {
      const error = this.#refuse(Topics.disconnect, err, payload);
      ack?.({ status: 'error', message: error.message, code: error.code });
    }
  }

  async #onDevices(_payload: unknown, ack: Ack | undefined): Promise<void> {
    if (!ack) return;
    try {
      ack({ devices: await this.#handler!.devices() });
    } catch (err) {
      const error = toErrorData(err);
      ack({ devices: [], status: 'error', message: error.message, code: error.code });
    }
  }

  /** Logs and counts a refused payload; there is no ack to answer on for ICE. */
  #refuse(topic: string, err: unknown, payload: unknown) {
    const error = toErrorData(err);
    this.safeEmit('bad-payload', topic, error.code);
    this.#logger.warn(
      { topic, code: error.code, session: peekIds(payload).sessionId, err: error.message },
      'payload refused',
    );
    return error;
  }
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return '[url]';
  }
}
