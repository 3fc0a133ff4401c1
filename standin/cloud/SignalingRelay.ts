/**
 * The stand-in's signaling between browsers and agents, per the cloud's contract: a browser's
 * `webrtc:offer` goes to the agent that serves its `device_id`, with a `correlation_id` added; the agent's
 * ack is the answer, relayed to the browser as a `webrtc:offer` event. ICE is relayed both ways by
 * `session_id`; `webrtc:disconnect` flows browser → agent, and the stand-in sends it itself when either
 * side's socket goes away. Whatever a socket sends is parsed first; what fails is dropped (and logged).
 */
import type { Logger } from 'pino';
import { ErrorCodes, toErrorData, type ErrorCode } from '../../common/errors.js';
import {
  answerAckSchema,
  answerError,
  answerSuccess,
  BROWSER_GONE,
  disconnectSchema,
  iceSchema,
  offerSchema,
  parsePayload,
  peekIds,
  Topics,
  type CloudDisconnectReason,
  type IceMessage,
  type OfferIceServer,
  type OfferMessage,
} from '../../common/protocol/signaling.js';
import type { AgentDirectory } from './AgentDirectory.js';
import { SessionRoutes, type AgentSocket, type BrowserSocket, type SessionRoute } from './SessionRoutes.js';

/** Buffered browser ICE per session before its agent is known; more is dropped. */
const MAX_PENDING_ICE = 64;

export interface SignalingRelayOptions {
  agents: AgentDirectory;
  logger: Logger;
  offerTimeoutMs: number;
  maxSdpBytes: number;
  /** ICE servers for a session's agent, sent in its offer (`ice_servers`); none: the agent's own. */
  agentIceServers?: ((sessionId: string) => OfferIceServer[] | undefined) | undefined;
}

export class SignalingRelay {
  readonly #o: SignalingRelayOptions;
  readonly #log: Logger;
  readonly #routes = new SessionRoutes();
  readonly #browsers = new Set<BrowserSocket>();
  readonly #offerSchema;
  #nextCorrelationId = 0;

  constructor(options: SignalingRelayOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.#offerSchema = offerSchema(options.maxSdpBytes);
  }

  get sessionCount(): number {
    return this.#routes.size;
  }

  get browserCount(): number {
    return this.#browsers.size;
  }

  addAgent(socket: AgentSocket, agentId: string): void {
    const agent = this.#o.agents.add(socket, agentId);
    this.#log.info({ agent: agentId, address: socket.handshake.address }, 'agent connected');

    socket.on(Topics.ice, (payload) => {
      const ice = this.#parse(iceSchema, payload, Topics.ice, agentId);
      const route = ice && this.#routes.get(ice.session_id);
      if (!route || route.agent !== socket) return;
      route.browser.emit(Topics.ice, iceOut(ice));
    });

    socket.on(Topics.disconnect, (payload) => {
      const msg = this.#parse(disconnectSchema, payload, Topics.disconnect, agentId);
      const route = msg && this.#routes.get(msg.session_id);
      if (!route || route.agent !== socket) return;
      this.#routes.remove(route);
      this.#log.info({ session: route.sessionId, agent: agentId }, 'agent ended session');
      route.browser.emit(Topics.disconnect, {
        session_id: route.sessionId,
        reason: msg.reason ?? ('agent-closed' satisfies CloudDisconnectReason),
      });
    });

    socket.on('disconnect', (reason) => {
      this.#o.agents.remove(socket);
      const gone = this.#routes.removeBySocket(socket);
      this.#log.info({ agent: agentId, reason, sessions: gone.length }, 'agent disconnected');
      for (const route of gone) this.#endForBrowser(route, 'agent-gone');
    });

    void this.#o.agents.refresh(agent);
  }

  addBrowser(socket: BrowserSocket): void {
    this.#log.debug({ browser: socket.id }, 'browser connected');
    this.#browsers.add(socket);

    socket.on(Topics.offer, (payload) => {
      this.#onOffer(socket, payload).catch((err: unknown) => {
        this.#log.error({ err: toErrorData(err) }, 'offer handling failed');
      });
    });

    socket.on(Topics.ice, (payload) => {
      const ice = this.#parse(iceSchema, payload, Topics.ice, socket.id);
      const route = ice && this.#routes.get(ice.session_id);
      if (!route || route.browser !== socket) return;
      if (route.agent) route.agent.emit(Topics.ice, iceOut(ice));
      else if (route.pendingIce.length < MAX_PENDING_ICE) route.pendingIce.push(ice);
    });

    socket.on(Topics.disconnect, (payload) => {
      const msg = this.#parse(disconnectSchema, payload, Topics.disconnect, socket.id);
      const route = msg && this.#routes.get(msg.session_id);
      if (!route || route.browser !== socket) return;
      this.#routes.remove(route);
      this.#log.info({ session: route.sessionId }, 'browser ended session');
      route.agent?.emit(Topics.disconnect, { session_id: route.sessionId });
    });

    socket.on('disconnect', () => {
      this.#browsers.delete(socket);
      for (const route of this.#routes.removeBySocket(socket)) {
        this.#log.info({ session: route.sessionId }, 'browser gone, ending its session');
        route.agent?.emit(Topics.disconnect, { session_id: route.sessionId, reason: BROWSER_GONE });
      }
    });
  }

  async #onOffer(browser: BrowserSocket, payload: unknown): Promise<void> {
    let offer: OfferMessage;
    try {
      offer = parsePayload(this.#offerSchema, payload, Topics.offer);
    } catch (err) {
      const error = toErrorData(err, ErrorCodes.INVALID_PAYLOAD);
      browser.emit(Topics.offer, answerError({ session_id: peekIds(payload).session_id }, error));
      return;
    }
    const sessionId = offer.session_id;
    const existing = this.#routes.get(sessionId);
    // A browser resuming its own dropped session replaces its route; the agent checks the token.
    if (existing && offer.resume_token !== undefined && existing.browser === browser)
      this.#routes.remove(existing);
    else if (existing) {
      const error = { code: ErrorCodes.DUPLICATE_SESSION, message: `session ${sessionId} already exists` };
      browser.emit(Topics.offer, answerError({ session_id: sessionId }, error));
      return;
    }
    const correlationId = ++this.#nextCorrelationId;
    const ids = { session_id: sessionId, correlation_id: correlationId };
    const route: SessionRoute = {
      sessionId,
      deviceId: offer.device_id,
      correlationId,
      browser,
      agent: undefined,
      pendingIce: [],
    };
    this.#routes.add(route);

    const { agents } = this.#o;
    let agent = agents.find(offer.device_id);
    if (!agent) {
      await agents.refreshAll();
      if (this.#routes.get(sessionId) !== route) return; // the browser left or ended it meanwhile
      agent = agents.find(offer.device_id);
    }
    if (!agent) {
      this.#routes.remove(route);
      const message = `no agent serves device "${offer.device_id}"`;
      this.#log.info({ session: sessionId, device: offer.device_id }, 'offer for an unknown device');
      browser.emit(Topics.offer, answerError(ids, { code: ErrorCodes.CONTAINER_NOT_FOUND, message }));
      return;
    }

    const agentSocket = agent.socket;
    const agentId = agent.agentId;
    route.agent = agentSocket;
    this.#log.info(
      {
        session: sessionId,
        device: offer.device_id,
        agent: agentId,
        correlationId,
        resume: offer.resume_token !== undefined,
      },
      'relaying offer',
    );
    const iceServers = this.#o.agentIceServers?.(sessionId);
    const forward = {
      ...ids,
      device_id: offer.device_id,
      sdp: offer.sdp,
      sdp_type: 'offer' as const,
      ...(iceServers ? { ice_servers: iceServers } : {}),
      ...resumeFields(offer),
    };
    agentSocket
      .timeout(this.#o.offerTimeoutMs)
      .emit(Topics.offer, forward, (err: Error | null, reply: unknown) => {
        if (this.#routes.get(sessionId) !== route) return;
        const answer = err ? undefined : answerAckSchema.safeParse(reply);
        if (!answer?.success) {
          this.#routes.remove(route);
          const message = err
            ? `the agent did not answer within ${this.#o.offerTimeoutMs} ms`
            : 'the agent answered with a malformed payload';
          this.#log.warn({ session: sessionId, agent: agentId }, message);
          agentSocket.emit(Topics.disconnect, {
            session_id: sessionId,
            reason: 'agent-timeout' satisfies CloudDisconnectReason,
          });
          browser.emit(Topics.offer, answerError(ids, { code: ErrorCodes.INTERNAL, message }));
          return;
        }
        const a = answer.data;
        if (a.status === 'error') {
          this.#routes.remove(route);
          this.#log.info({ session: sessionId, code: a.code }, 'agent refused offer');
          // The agent's code is relayed as it came: a newer agent may know codes this stand-in does not.
          const code = (a.code ?? ErrorCodes.INTERNAL) as ErrorCode;
          browser.emit(Topics.offer, answerError(ids, { code, message: a.message }));
          return;
        }
        browser.emit(Topics.offer, answerSuccess(ids, a.sdp));
      });
    for (const ice of route.pendingIce) agentSocket.emit(Topics.ice, iceOut(ice));
    route.pendingIce = [];
  }

  #endForBrowser(route: SessionRoute, reason: CloudDisconnectReason): void {
    route.browser.emit(Topics.disconnect, { session_id: route.sessionId, reason });
  }

  #parse<T>(
    schema: Parameters<typeof parsePayload<T>>[0],
    payload: unknown,
    topic: string,
    from: string,
  ): T | undefined {
    try {
      return parsePayload(schema, payload, topic);
    } catch (err) {
      this.#log.debug({ from, err: toErrorData(err) }, 'dropped malformed message');
      return undefined;
    }
  }
}

/** A resume offer's fields (issue 13), relayed as validated; the token is never logged. */
function resumeFields(offer: OfferMessage): Pick<OfferMessage, 'resume_token' | 'resume_offset'> {
  if (offer.resume_token === undefined) return {};
  return { resume_token: offer.resume_token, resume_offset: offer.resume_offset ?? 0 };
}

function iceOut(ice: IceMessage): IceMessage {
  return {
    session_id: ice.session_id,
    candidate: ice.candidate,
    sdp_mid: ice.sdp_mid ?? null,
    sdp_mline_index: ice.sdp_mline_index ?? null,
  };
}
