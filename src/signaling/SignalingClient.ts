/**
 * The agent's Socket.IO link to the cloud. It validates what arrives, hands it to its handler, and turns
 * every outcome into the contract's replies (README, "The protocol"): the answer as the `webrtc:offer` ack (or a
 * `webrtc:answer` event when the cloud sent no ack), agent ICE candidates as `webrtc:ice`.
 *
 * Everything the cloud sends is untrusted in shape as well as content: every handler takes its arguments
 * as they come (see inbound-event.ts), and a fault in one is caught at this boundary, answered where the
 * cloud asked for an answer, logged with a code and counted; it never reaches the process.
 *
 * Reconnects with jittered exponential backoff (socket.io-client's own), and also after the server
 * dropped the link ('io server disconnect'), which socket.io-client deliberately does not retry: then
 * with a backoff of its own that grows while the server keeps dropping the agent soon after it connects.
 */
import { io, type Socket } from 'socket.io-client';
import { toErrorData, TermgateError, type ErrorData } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import {
  answerError,
  disconnectSchema,
  errorReply,
  iceSchema,
  offerSchema,
  parsePayload,
  peekIds,
  Topics,
  type AgentAuth,
  type AgentToCloudEvents,
  type AnswerMessage,
  type CloudToAgentEvents,
  type DeviceInfo,
  type DisconnectMessage,
  type IceMessage,
  type OfferMessage,
  type OutboundIceMessage,
  type SessionDeviceMessage,
  type Untrusted,
} from '../../common/protocol/signaling.js';
import { SafeEmitter } from '../../common/SafeEmitter.js';
import { inboundEvent, type Ack } from './inbound-event.js';

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
  /** A handler threw on an event from the cloud (a bug, caught here; answered where it could be). */
  'handler-fault': [topic: string, code: string];
}

/** First delay after the server drops the agent, doubled on each drop that follows a short connection. */
const SERVER_DROP_DELAY_MS = 500;
const SERVER_DROP_DELAY_MAX_MS = 30_000;
/** A connection that lasted this long resets the backoff: the drop that ended it was not a loop. */
const STABLE_CONNECTION_MS = 30_000;

export class SignalingClient extends SafeEmitter<SignalingClientEvents> {
  /** Whatever the cloud sends is taken as it comes and validated here; what the agent sends is typed. */
  readonly #socket: Socket<Untrusted<CloudToAgentEvents>, AgentToCloudEvents>;
  readonly #logger: Logger;
  readonly #offerSchema;
  #handler: SignalingHandler | undefined;
  #closed = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #connectedAt = 0;
  #serverDrops = 0;

  constructor(options: SignalingClientOptions) {
    super();
    this.#logger = options.logger;
    this.#offerSchema = offerSchema(options.maxSdpBytes);
    this.#socket = io(options.url, {
      autoConnect: false,
      auth: { token: options.token, role: 'agent', agent_id: options.agentId } satisfies AgentAuth,
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 10_000,
      randomizationFactor: 0.5,
    });
    this.#socket.on('connect', () => {
      this.#connectedAt = performance.now();
      this.#logger.info({ url: redactUrl(options.url) }, 'signaling connected');
      this.safeEmit('connect');
    });
    this.#socket.on('disconnect', (reason) => this.#onLinkDown(String(reason)));
    this.#socket.on('connect_error', (err: unknown) =>
      this.#logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'signaling connect failed',
      ),
    );
    this.#socket.io.on('reconnect', (attempt) => this.safeEmit('reconnect', attempt));
    this.#listen(Topics.offer, (payload, ack) => this.#onOffer(payload, ack));
    this.#listen(Topics.ice, (payload, ack) => this.#onIce(payload, ack));
    this.#listen(Topics.disconnect, (payload, ack) => this.#onDisconnect(payload, ack));
    this.#listen(Topics.devices, (_payload, ack) => this.#onDevices(ack));
  }

  /** Delay before the next reconnect after the server dropped the agent (for tests and logs). */
  get serverDropDelayMs(): number {
    return Math.min(SERVER_DROP_DELAY_MAX_MS, SERVER_DROP_DELAY_MS * 2 ** this.#serverDrops);
  }

  /**
   * Registers a handler for one topic of the cloud's. The handler gets the payload and the ack however
   * the event was shaped; whatever it throws or rejects with is caught here.
   */
  #listen(
    topic: keyof CloudToAgentEvents,
    handle: (payload: unknown, ack: Ack | undefined) => void | Promise<void>,
  ): void {
    this.#socket.on(topic, (...args: unknown[]) => {
      let event: ReturnType<typeof inboundEvent> | undefined;
      try {
        event = inboundEvent(args);
        if (event.extra > 0)
          this.#logger.debug({ topic, extra: event.extra }, 'extra event arguments ignored');
        const pending = handle(event.payload, event.ack);
        if (pending) pending.catch((err: unknown) => this.#fault(topic, err, event));
      } catch (err) {
        this.#fault(topic, err, event);
      }
    });
  }

  /** A handler failed: answer if asked, log with a code, count. Never throws. */
  #fault(topic: string, err: unknown, event: ReturnType<typeof inboundEvent> | undefined): void {
    try {
      const error = toErrorData(err);
      const ids = peekIds(event?.payload);
      this.#logger.error(
        { topic, code: error.code, session: ids.session_id, err: error.message },
        'signaling handler failed',
      );
      this.safeEmit('handler-fault', topic, error.code);
      event?.ack?.(topic === Topics.offer ? answerError(peekIds(event.payload), error) : errorReply(error));
    } catch {
      // Logging itself failed; there is nothing left to tell anyone.
    }
  }

  #onLinkDown(reason: string): void {
    this.#logger.warn({ reason }, 'signaling disconnected');
    this.safeEmit('disconnect', reason);
    // The cloud may drop us on purpose (restart, rebalancing); terminals are peer to peer and keep
    // working, but new offers need the link back. A server that drops the agent again and again right
    // after it connects is not hammered: the delay doubles up to a cap, and resets after a stable link.
    if (reason !== 'io server disconnect' || this.#closed) return;
    if (performance.now() - this.#connectedAt >= STABLE_CONNECTION_MS) this.#serverDrops = 0;
    const delay = this.serverDropDelayMs * (0.5 + Math.random() * 0.5);
    this.#serverDrops++;
    this.#logger.info({ delayMs: Math.round(delay) }, 'reconnecting after the server dropped the link');
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      if (!this.#closed && !this.#socket.connected) this.#socket.connect();
    }, delay);
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

  /** Tells the cloud a session's terminal moved to another container (connect_pty). */
  sendSessionDevice(message: SessionDeviceMessage): void {
    if (this.#socket.connected) this.#socket.emit(Topics.sessionDevice, message);
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
      answer = answerError(peekIds(payload), this.#refuse(Topics.offer, err, payload));
    }
    if (ack) ack(answer);
    else if (this.#socket.connected) this.#socket.emit(Topics.answer, answer);
  }

  /** ICE has no ack in the contract; a cloud that asks for one anyway gets an answer. */
  #onIce(payload: unknown, ack: Ack | undefined): void {
    try {
      this.#handler!.ice(parsePayload(iceSchema, payload, Topics.ice));
      ack?.({ status: 'success' });
    } catch (err) {
      // Refused first: `ack?.(…)` would not evaluate its argument without an ack.
      const error = this.#refuse(Topics.ice, err, payload);
      ack?.(errorReply(error));
    }
  }

  #onDisconnect(payload: unknown, ack: Ack | undefined): void {
    try {
      this.#handler!.disconnect(parsePayload(disconnectSchema, payload, Topics.disconnect));
      ack?.({ status: 'success' });
    } catch (err) {
      const error = this.#refuse(Topics.disconnect, err, payload);
      ack?.(errorReply(error));
    }
  }

  async #onDevices(ack: Ack | undefined): Promise<void> {
    if (!ack) return; // nothing to answer on
    try {
      ack({ devices: await this.#handler!.devices() });
    } catch (err) {
      ack({ devices: [], ...errorReply(this.#refuse(Topics.devices, err, undefined)) });
    }
  }

  /**
   * Logs and counts a refusal: a TermgateError is the payload's fault (refused), anything else a bug in
   * a handler (a fault). The caller answers with the error where the cloud asked for an answer.
   */
  #refuse(topic: string, err: unknown, payload: unknown): ErrorData {
    const error = toErrorData(err);
    const fields = { topic, code: error.code, session: peekIds(payload).session_id, err: error.message };
    if (err instanceof TermgateError) {
      this.safeEmit('bad-payload', topic, error.code);
      // The router's refusals of offers are logged there, with the session.
      if (topic !== Topics.offer) this.#logger.warn(fields, 'payload refused');
    } else {
      this.safeEmit('handler-fault', topic, error.code);
      this.#logger.error(fields, 'signaling handler failed');
    }
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
