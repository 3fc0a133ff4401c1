/**
 * The cloud stand-in: one HTTP server that serves the browser page and `GET /api/devices`, and a Socket.IO
 * server on it that speaks the seed's signaling protocol to agents and browsers.
 *
 * Routing: a browser's `webrtc:offer` goes to the agent that serves its `device_id`, with a
 * `correlation_id` added; the agent's ack is the answer, relayed to the browser as a `webrtc:offer`
 * event. ICE is relayed both ways by `session_id`; `webrtc:disconnect` flows browser → agent, and the
 * cloud sends it itself when either side's socket goes away.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { Server, type Socket } from 'socket.io';
import { ErrorCodes, toErrorData, type ErrorCode } from '../errors.js';
import { SafeEmitter } from '../SafeEmitter.js';
import {
  Topics,
  disconnectSchema,
  iceSchema,
  offerSchema,
  parsePayload,
  peekIds,
  type AnswerMessage,
  type DeviceInfo,
  type IceMessage,
} from '../protocol/signaling-messages.js';
import { AgentDirectory } from './AgentDirectory.js';
import { answerAckSchema, type CloudDisconnectReason, type DeviceListing } from './cloud-messages.js';
import { SessionTable, type CloudSession } from './SessionTable.js';
import { StaticFiles } from './StaticFiles.js';

export interface CloudServerOptions {
  /** Token agents must present in `auth.token`. Required. */
  agentToken: string;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 8080. */
  port?: number;
  /** Directory of the built page. Default: web/dist of this checkout. */
  webRoot?: string;
  /** How long an agent has to answer an offer. Default 15 000 ms. */
  offerTimeoutMs?: number;
  /** How long an agent has to answer `agent:devices`. Default 3 000 ms. */
  devicesTimeoutMs?: number;
  /** How often every agent is asked for its devices. Default 10 000 ms. */
  devicesRefreshMs?: number;
  /** Largest SDP offer relayed. Default 65 536 bytes. */
  maxSdpBytes?: number;
  /** Default: a silent logger. */
  logger?: Logger;
}

export interface CloudServerEvents {
  /** An agent answered `agent:devices` for the first time. */
  'agent-registered': [agentId: string, devices: DeviceInfo[]];
  'agent-removed': [agentId: string];
  close: [];
}

/** Buffered browser ICE per session before its agent is known; more is dropped. */
const MAX_PENDING_ICE = 64;

export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

export class CloudServer extends SafeEmitter<CloudServerEvents> {
  readonly #log: Logger;
  readonly #tokenDigest: Buffer;
  readonly #host: string;
  readonly #port: number;
  readonly #offerTimeoutMs: number;
  readonly #devicesRefreshMs: number;
  readonly #maxSdpBytes: number;
  readonly #http: HttpServer;
  readonly #io: Server;
  readonly #static: StaticFiles;
  readonly #agents: AgentDirectory;
  readonly #sessions = new SessionTable();
  #nextCorrelationId = 0;
  #refreshTimer: NodeJS.Timeout | undefined;
  #url: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: CloudServerOptions) {
    super();
    if (typeof options.agentToken !== 'string' || options.agentToken.length === 0) {
      throw new TypeError('options.agentToken must be a non-empty string');
    }
    this.#tokenDigest = digest(options.agentToken);
    this.#host = options.host ?? '127.0.0.1';
    this.#port = checkInt('port', options.port ?? 8080, 0, 65535);
    this.#offerTimeoutMs = checkInt('offerTimeoutMs', options.offerTimeoutMs ?? 15_000, 1);
    this.#devicesRefreshMs = checkInt('devicesRefreshMs', options.devicesRefreshMs ?? 10_000, 1);
    this.#maxSdpBytes = checkInt('maxSdpBytes', options.maxSdpBytes ?? 65_536, 1);
    const devicesTimeoutMs = checkInt('devicesTimeoutMs', options.devicesTimeoutMs ?? 3_000, 1);
    this.#log = options.logger ?? pino({ level: 'silent' });
    this.#static = new StaticFiles(options.webRoot ?? DEFAULT_WEB_ROOT);
    this.#agents = new AgentDirectory({ logger: this.#log, ackTimeoutMs: devicesTimeoutMs });
    this.#agents.on('agent-registered', (a) => this.safeEmit('agent-registered', a.agentId, a.devices));
    this.#agents.on('agent-removed', (a) => this.safeEmit('agent-removed', a.agentId));

    this.#http = createServer((req, res) => {
      this.#onRequest(req, res).catch((err: unknown) => {
        this.#log.error({ err: toErrorData(err) }, 'http request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    // Same origin only: the page is served from here, so no CORS.
    this.#io = new Server(this.#http, { serveClient: false, maxHttpBufferSize: this.#maxSdpBytes + 16_384 });
    this.#io.use((socket, next) => {
      const auth = socket.handshake.auth as Record<string, unknown>;
      if (auth.role !== 'agent') return next();
      if (typeof auth.token === 'string' && timingSafeEqual(digest(auth.token), this.#tokenDigest))
        return next();
      this.#log.warn({ agent: agentIdOf(auth), address: socket.handshake.address }, 'agent token refused');
      const err = new Error('agent token refused') as Error & { data?: unknown };
      err.data = { code: 'TG_ERR_AGENT_TOKEN_REFUSED' };
      next(err);
    });
    this.#io.on('connection', (socket) => {
      const auth = socket.handshake.auth as Record<string, unknown>;
      if (auth.role === 'agent') this.#onAgent(socket, agentIdOf(auth));
      else this.#onBrowser(socket);
    });
  }

  /** Starts listening; resolves with the URL browsers open. */
  async listen(): Promise<string> {
    if (this.#url) return this.#url;
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(this.#port, this.#host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    const { port } = this.#http.address() as AddressInfo;
    const host = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    this.#url = `http://${host}:${port}`;
    this.#refreshTimer = setInterval(() => void this.#agents.refreshAll(), this.#devicesRefreshMs);
    this.#refreshTimer.unref();
    this.#log.info({ url: this.#url, webRoot: this.#static.root }, 'cloud stand-in listening');
    return this.#url;
  }

  /** The URL given by `listen()`. */
  get url(): string {
    if (!this.#url) throw new Error('CloudServer is not listening');
    return this.#url;
  }

  get agentCount(): number {
    return this.#agents.size;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Asks every agent for its devices and lists them. */
  async listDevices(): Promise<DeviceListing[]> {
    await this.#agents.refreshAll();
    return this.#agents.list();
  }

  /** Disconnects every socket and stops listening. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#refreshTimer);
      this.#io.disconnectSockets(true);
      await new Promise<void>((resolve) => {
        void this.#io.close(() => resolve());
      });
      this.#http.closeAllConnections();
      this.#log.info('cloud stand-in closed');
      this.safeEmit('close');
    })();
    return this.#closing;
  }

  // ---- HTTP ----

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (pathname === '/api/devices') {
      const body = JSON.stringify({ devices: await this.listDevices() });
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (await this.#static.serve(req, res, pathname)) return;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  // ---- agents ----

  #onAgent(socket: Socket, agentId: string): void {
    const agent = this.#agents.add(socket, agentId);
    this.#log.info({ agent: agentId, address: socket.handshake.address }, 'agent connected');

    socket.on(Topics.ice, (payload: unknown) => {
      const ice = this.#parse(iceSchema, payload, Topics.ice, agentId);
      const session = ice && this.#sessions.get(ice.session_id);
      if (!session || session.agent !== socket) return;
      session.browser.emit(Topics.ice, iceOut(ice));
    });

    socket.on(Topics.disconnect, (payload: unknown) => {
      const msg = this.#parse(disconnectSchema, payload, Topics.disconnect, agentId);
      const session = msg && this.#sessions.get(msg.session_id);
      if (!session || session.agent !== socket) return;
      this.#sessions.remove(session);
      this.#log.info({ session: session.sessionId, agent: agentId }, 'agent ended session');
      session.browser.emit(Topics.disconnect, {
        session_id: session.sessionId,
        reason: msg.reason ?? 'agent-closed',
      });
    });

    socket.on('disconnect', (reason) => {
      this.#agents.remove(socket);
      const gone = this.#sessions.removeBySocket(socket);
      this.#log.info({ agent: agentId, reason, sessions: gone.length }, 'agent disconnected');
      for (const session of gone) this.#endForBrowser(session, 'agent-gone');
    });

    void this.#agents.refresh(agent);
  }

  // ---- browsers ----

  #onBrowser(socket: Socket): void {
    this.#log.debug({ browser: socket.id }, 'browser connected');

    socket.on(Topics.offer, (payload: unknown) => {
      this.#onOffer(socket, payload).catch((err: unknown) => {
        this.#log.error({ err: toErrorData(err) }, 'offer handling failed');
      });
    });

    socket.on(Topics.ice, (payload: unknown) => {
      const ice = this.#parse(iceSchema, payload, Topics.ice, socket.id);
      const session = ice && this.#sessions.get(ice.session_id);
      if (!session || session.browser !== socket) return;
      if (session.agent) session.agent.emit(Topics.ice, iceOut(ice));
      else if (session.pendingIce.length < MAX_PENDING_ICE) session.pendingIce.push(ice);
    });

    socket.on(Topics.disconnect, (payload: unknown) => {
      const msg = this.#parse(disconnectSchema, payload, Topics.disconnect, socket.id);
      const session = msg && this.#sessions.get(msg.session_id);
      if (!session || session.browser !== socket) return;
      this.#sessions.remove(session);
      this.#log.info({ session: session.sessionId }, 'browser ended session');
      session.agent?.emit(Topics.disconnect, { session_id: session.sessionId });
    });

    socket.on('disconnect', () => {
      for (const session of this.#sessions.removeBySocket(socket)) {
        this.#log.info({ session: session.sessionId }, 'browser gone, ending its session');
        session.agent?.emit(Topics.disconnect, { session_id: session.sessionId, reason: 'browser-gone' });
      }
    });
  }

  async #onOffer(browser: Socket, payload: unknown): Promise<void> {
    let offer;
    try {
      offer = parsePayload(offerSchema(this.#maxSdpBytes), payload, Topics.offer);
    } catch (err) {
      const { code, message } = toErrorData(err, ErrorCodes.INVALID_PAYLOAD);
      browser.emit(Topics.offer, answerError(peekIds(payload).sessionId, undefined, code, message));
      return;
    }
    const sessionId: string = offer.session_id;
    if (this.#sessions.get(sessionId)) {
      const message = `session ${sessionId} already exists`;
      browser.emit(Topics.offer, answerError(sessionId, undefined, ErrorCodes.DUPLICATE_SESSION, message));
      return;
    }
    const correlationId = ++this.#nextCorrelationId;
    const session: CloudSession = {
      sessionId,
      deviceId: offer.device_id,
      correlationId,
      browser,
      agent: undefined,
      pendingIce: [],
    };
    this.#sessions.add(session);

    let agent = this.#agents.find(offer.device_id);
    if (!agent) {
      await this.#agents.refreshAll();
      if (this.#sessions.get(sessionId) !== session) return; // the browser left or ended it meanwhile
      agent = this.#agents.find(offer.device_id);
    }
    if (!agent) {
      this.#sessions.remove(session);
      const message = `no agent serves device "${offer.device_id}"`;
      this.#log.info({ session: sessionId, device: offer.device_id }, 'offer for an unknown device');
      browser.emit(
        Topics.offer,
        answerError(sessionId, correlationId, ErrorCodes.CONTAINER_NOT_FOUND, message),
      );
      return;
    }

    const agentSocket = agent.socket;
    session.agent = agentSocket;
    this.#log.info(
      { session: sessionId, device: offer.device_id, agent: agent.agentId, correlationId },
      'relaying offer',
    );
    const forward = {
      correlation_id: correlationId,
      session_id: sessionId,
      device_id: offer.device_id,
      sdp: offer.sdp,
      sdp_type: 'offer' as const,
    };
    agentSocket
      .timeout(this.#offerTimeoutMs)
      .emit(Topics.offer, forward, (err: Error | null, reply: unknown) => {
        if (this.#sessions.get(sessionId) !== session) return;
        const answer = err ? undefined : answerAckSchema.safeParse(reply);
        if (!answer?.success) {
          this.#sessions.remove(session);
          const message = err
            ? `the agent did not answer within ${this.#offerTimeoutMs} ms`
            : 'the agent answered with a malformed payload';
          this.#log.warn({ session: sessionId, agent: agent.agentId }, message);
          agentSocket.emit(Topics.disconnect, { session_id: sessionId, reason: 'agent-timeout' });
          browser.emit(Topics.offer, answerError(sessionId, correlationId, ErrorCodes.INTERNAL, message));
          return;
        }
        const a = answer.data;
        if (a.status === 'error') {
          this.#sessions.remove(session);
          this.#log.info({ session: sessionId, code: a.code }, 'agent refused offer');
          const code = (a.code ?? ErrorCodes.INTERNAL) as ErrorCode;
          browser.emit(Topics.offer, answerError(sessionId, correlationId, code, a.message));
          return;
        }
        const out: AnswerMessage = {
          action: Topics.offer,
          correlation_id: correlationId,
          status: 'success',
          session_id: sessionId,
          sdp: a.sdp,
          sdp_type: 'answer',
        };
        browser.emit(Topics.offer, out);
      });
    for (const ice of session.pendingIce) agentSocket.emit(Topics.ice, iceOut(ice));
    session.pendingIce = [];
  }

  #endForBrowser(session: CloudSession, reason: CloudDisconnectReason): void {
    session.browser.emit(Topics.disconnect, { session_id: session.sessionId, reason });
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

function answerError(
  sessionId: string | undefined,
  correlationId: number | undefined,
  code: ErrorCode,
  message: string,
): AnswerMessage {
  return {
    action: Topics.offer,
    correlation_id: correlationId,
    status: 'error',
    session_id: sessionId,
    message,
    code,
  };
}

function iceOut(ice: IceMessage): IceMessage {
  return {
    session_id: ice.session_id,
    candidate: ice.candidate,
    sdp_mid: ice.sdp_mid ?? null,
    sdp_mline_index: ice.sdp_mline_index ?? null,
  };
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function agentIdOf(auth: Record<string, unknown>): string {
  const id = auth.agent_id;
  return typeof id === 'string' && id.length > 0 ? id.slice(0, 128) : 'unnamed';
}

function checkInt(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`options.${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}
