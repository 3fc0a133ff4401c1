/**
 * The agent's observability endpoint on node:http: `/metrics` (Prometheus text format), `/healthz` (the
 * process answers) and `/readyz` (200 once signaling is connected and the pool's workers are up, 503 with
 * the reasons otherwise). Plain HTTP meant for a local or private address; nothing secret is served.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../common/logger.js';

export interface MetricsServerOptions {
  host: string;
  /** 0 picks a free port (see `address` after `listen`). */
  port: number;
  metrics: { metrics(): Promise<string>; readonly contentType: string };
  /** Why the agent is not ready; an empty list means ready. */
  notReady: () => string[];
  logger: Logger;
}

export class MetricsServer {
  readonly #o: MetricsServerOptions;
  readonly #server: Server;
  #closed: Promise<void> | undefined;

  constructor(options: MetricsServerOptions) {
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
      throw new TypeError('options.port must be an integer in 0..65535');
    }
    this.#o = options;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    // Keep-alive from a scraper must not hold close() up for long.
    this.#server.keepAliveTimeout = 5_000;
  }

  /** Starts listening; resolves with the bound address. */
  async listen(): Promise<AddressInfo> {
    this.#server.listen(this.#o.port, this.#o.host);
    await once(this.#server, 'listening');
    const address = this.#server.address() as AddressInfo;
    this.#o.logger.info({ host: address.address, port: address.port }, 'metrics listening');
    return address;
  }

  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return this.#reply(res, 405, 'method not allowed\n', 'text/plain; charset=utf-8', {
        allow: 'GET, HEAD',
      });
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/metrics':
        try {
          return this.#reply(res, 200, await this.#o.metrics.metrics(), this.#o.metrics.contentType);
        } catch (err) {
          this.#o.logger.error({ err: String(err) }, 'metrics collection failed');
          return this.#reply(res, 500, 'metrics collection failed\n');
        }
      case '/healthz':
        return this.#reply(res, 200, 'ok\n');
      case '/readyz': {
        const reasons = this.#o.notReady();
        return reasons.length === 0
          ? this.#reply(res, 200, 'ready\n')
          : this.#reply(res, 503, `not ready: ${reasons.join('; ')}\n`);
      }
      default:
        return this.#reply(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  }

  #reply(
    res: ServerResponse,
    status: number,
    body: string,
    contentType = 'text/plain; charset=utf-8',
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }
}
