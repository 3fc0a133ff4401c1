/**
 * The cloud stand-in: one HTTP server that serves the browser page, `GET /api/devices` and
 * `GET /api/ice-servers` (the page's STUN/TURN servers), and a Socket.IO server on it that speaks the
 * cloud's signaling protocol to agents and browsers. A local stand-in for
 * demos, tests and benches, not a product to expose: it listens on loopback unless told `public`.
 *
 * Who gets in: every request must name a host the stand-in serves and, if it carries an `Origin`, come
 * from the page the stand-in served (OriginPolicy); agents present the agent token, browsers the browser
 * token, a random one per run that reaches the page only in the fragment of the printed URL.
 *
 * Who talks to whom once in: SignalingRelay.
 */
import {
  createServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { Server } from 'socket.io';
import { ErrorCodes, toErrorData } from '../../common/errors.js';
import { SafeEmitter } from '../../common/SafeEmitter.js';
import type { DeviceInfo, DeviceListing } from '../../common/protocol/signaling.js';
import { AccessToken } from './AccessToken.js';
import { AgentDirectory } from './AgentDirectory.js';
import { checkOptions, type BrowserIceConfig, type CloudServerOptions } from './cloud-options.js';
import { OriginPolicy, type Refusal } from './OriginPolicy.js';
import type { AgentSocket, BrowserSocket } from './SessionRoutes.js';
import { SignalingRelay } from './SignalingRelay.js';
import { StaticFiles } from './StaticFiles.js';

export { DEFAULT_WEB_ROOT, type CloudServerOptions } from './cloud-options.js';

export interface CloudServerEvents {
  /** An agent answered `agent:devices` for the first time. */
  'agent-registered': [agentId: string, devices: DeviceInfo[]];
  'agent-removed': [agentId: string];
  /** A request or handshake was turned away (a wrong host, origin or token). */
  refused: [refusal: CloudRefusal];
  close: [];
}

export interface CloudRefusal extends Refusal {
  /** Where: `socket.io` (the handshake) or the HTTP path. */
  at: string;
}

export class CloudServer extends SafeEmitter<CloudServerEvents> {
  readonly #log: Logger;
  readonly #agentToken: AccessToken;
  readonly #browserToken: AccessToken;
  readonly #browserTokenValue: string;
  readonly #host: string;
  readonly #allowedOrigins: string[];
  #policy: OriginPolicy | undefined;
  readonly #port: number;
  readonly #devicesRefreshMs: number;
  readonly #http: HttpServer;
  readonly #io: Server;
  readonly #static: StaticFiles;
  readonly #agents: AgentDirectory;
  readonly #relay: SignalingRelay;
  readonly #browserIce: BrowserIceConfig;
  #refreshTimer: NodeJS.Timeout | undefined;
  #url: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: CloudServerOptions) {
    super();
    const o = checkOptions(options);
    this.#agentToken = new AccessToken(o.agentToken);
    this.#browserTokenValue = o.browserToken;
    this.#browserToken = new AccessToken(o.browserToken);
    this.#host = o.host;
    this.#allowedOrigins = o.allowedOrigins;
    this.#port = o.port;
    this.#devicesRefreshMs = o.devicesRefreshMs;
    const { offerTimeoutMs, maxSdpBytes, devicesTimeoutMs } = o;
    this.#browserIce = o.browserIce;
    this.#log = options.logger ?? pino({ level: 'silent' });
    this.#static = new StaticFiles(o.webRoot);
    this.#agents = new AgentDirectory({ logger: this.#log, ackTimeoutMs: devicesTimeoutMs });
    this.#agents.on('agent-registered', (a) => this.safeEmit('agent-registered', a.agentId, a.devices));
    this.#agents.on('agent-removed', (a) => this.safeEmit('agent-removed', a.agentId));
    this.#relay = new SignalingRelay({
      agents: this.#agents,
      logger: this.#log,
      offerTimeoutMs,
      maxSdpBytes,
      agentIceServers: o.agentIceServers,
    });

    this.#http = createServer((req, res) => {
      this.#onRequest(req, res).catch((err: unknown) => {
        this.#log.error({ err: toErrorData(err) }, 'http request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    // Same origin only: the page is served from here, so no CORS. `allowRequest` sees each new
    // engine.io connection (polling or WebSocket) before anything is set up for it.
    this.#io = new Server(this.#http, {
      serveClient: false,
      maxHttpBufferSize: maxSdpBytes + 16_384,
      allowRequest: (req, callback) => {
        const refusal = this.#checkHeaders(req, 'socket.io');
        callback(refusal ? `${refusal.code}: ${refusal.message}` : null, refusal === undefined);
      },
    });
    this.#io.use((socket, next) => {
      const auth = socket.handshake.auth as Record<string, unknown>;
      const isAgent = auth.role === 'agent';
      if ((isAgent ? this.#agentToken : this.#browserToken).matches(auth.token)) return next();
      const refusal: CloudRefusal = isAgent
        ? { code: ErrorCodes.AGENT_TOKEN_REFUSED, message: 'agent token refused', at: 'socket.io' }
        : {
            code: ErrorCodes.BROWSER_TOKEN_REFUSED,
            message:
              'browser token refused: open the URL termgate printed, which carries the token after #token=',
            at: 'socket.io',
          };
      this.#refuse(refusal, {
        agent: isAgent ? agentIdOf(auth) : undefined,
        address: socket.handshake.address,
      });
      const err = new Error(refusal.message) as Error & { data?: unknown };
      err.data = { code: refusal.code };
      next(err);
    });
    this.#io.on('connection', (socket) => {
      const auth = socket.handshake.auth as Record<string, unknown>;
      if (auth.role === 'agent') this.#relay.addAgent(socket as AgentSocket, agentIdOf(auth));
      else this.#relay.addBrowser(socket as BrowserSocket);
    });
  }

  /** Starts listening; resolves with the URL browsers open. */
  async listen(): Promise<string> {
    if (this.#url) return this.#url;
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(this.#port, this.#host, () => {
        this.#http.off('error', reject);
        // Set before any request can be handled: every request is checked against it.
        const { port } = this.#http.address() as AddressInfo;
        this.#policy = new OriginPolicy(this.#host, port, this.#allowedOrigins);
        resolve();
      });
    });
    this.#url = this.#policy!.served;
    this.#refreshTimer = setInterval(() => void this.#agents.refreshAll(), this.#devicesRefreshMs);
    this.#refreshTimer.unref();
    this.#log.info({ url: this.#url, webRoot: this.#static.root }, 'cloud stand-in listening');
    return this.#url;
  }

  /** The URL given by `listen()`: where agents connect. Carries no token. */
  get url(): string {
    if (!this.#url) throw new Error('CloudServer is not listening');
    return this.#url;
  }

  /**
   * The page's URL with the browser token in its fragment (`#token=`), which browsers never send to
   * a server: print it, never log it. `device` adds `?device=` (the page connects at load).
   */
  pageUrl(device?: string): string {
    const query = device === undefined ? '' : `?device=${encodeURIComponent(device)}`;
    return `${this.url}/${query}#token=${this.#browserTokenValue}`;
  }

  /** Host headers accepted (for the docs and the curious). */
  get allowedHosts(): readonly string[] {
    return this.#policy?.hosts ?? [];
  }

  get agentCount(): number {
    return this.#agents.size;
  }

  get sessionCount(): number {
    return this.#relay.sessionCount;
  }

  /** Browser sockets connected now (each one passed the host, origin and token checks). */
  get browserCount(): number {
    return this.#relay.browserCount;
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

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const refusal = this.#checkHeaders(req, pathname);
    if (refusal) {
      sendJson(res, 403, { code: refusal.code, message: refusal.message });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (pathname === '/api/devices' || pathname === '/api/ice-servers') {
      if (!this.#browserToken.matchesBearer(req.headers.authorization)) {
        const message = 'browser token required: send Authorization: Bearer <the token of the printed URL>';
        this.#refuse(
          { code: ErrorCodes.BROWSER_TOKEN_REFUSED, message, at: pathname },
          { address: req.socket.remoteAddress },
        );
        res.setHeader('www-authenticate', 'Bearer realm="termgate"');
        sendJson(res, 401, { code: ErrorCodes.BROWSER_TOKEN_REFUSED, message });
        return;
      }
      if (pathname === '/api/ice-servers') sendJson(res, 200, this.#browserIce);
      else sendJson(res, 200, { devices: await this.listDevices() });
      return;
    }
    if (pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (await this.#static.serve(req, res, pathname)) return;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  /** Host and Origin of any request (HTTP or a Socket.IO handshake); logs and reports a refusal. */
  #checkHeaders(req: IncomingMessage, at: string): CloudRefusal | undefined {
    // The policy exists from `listen()` on, before any request can arrive.
    const refusal = this.#policy!.check(req.headers, at === 'socket.io' || at.startsWith('/api/'));
    if (!refusal) return undefined;
    const out = { ...refusal, at };
    this.#refuse(out, { address: req.socket.remoteAddress });
    return out;
  }

  #refuse(refusal: CloudRefusal, context: { agent?: string; address?: string }): void {
    this.#log.warn({ ...context, at: refusal.at, code: refusal.code }, refusal.message);
    this.safeEmit('refused', refusal);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function agentIdOf(auth: Record<string, unknown>): string {
  const id = auth.agent_id;
  return typeof id === 'string' && id.length > 0 ? id.slice(0, 128) : 'unnamed';
}
