/**
 * Which `Host` and `Origin` headers the cloud stand-in answers. Any web page the operator visits can
 * open a WebSocket to 127.0.0.1 (CORS does not apply to WebSockets), and through DNS rebinding it can
 * even make same-origin requests under a host name of its own. So every request must name a host the
 * stand-in serves, and a request that carries an `Origin` (every browser WebSocket does, and every
 * CORS request) must come from a page the stand-in served. A `no-cors` GET carries no `Origin`, so for
 * the API and Socket.IO a browser's `Sec-Fetch-Site` must also say `same-origin` (or `none`: typed in).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIPv6 } from 'node:net';
import os from 'node:os';
import { ErrorCodes, type ErrorCode } from '../../common/errors.js';
import { isLoopbackHost } from '../../common/host-port.js';

/** Why a request was refused, for the response and the log. */
export interface Refusal {
  code: ErrorCode;
  message: string;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** True for the all-interfaces addresses. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** `host:port` as a browser writes it in a Host header (IPv6 in brackets). */
function hostHeader(host: string, port: number): string {
  return `${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** The names a listen address is reached by: itself, plus the loopback forms, plus interfaces for `0.0.0.0`/`::`. */
function namesFor(listenHost: string): string[] {
  const h = listenHost.toLowerCase();
  if (isLoopbackHost(h)) return [...new Set([h, ...LOOPBACK_NAMES])];
  if (!isWildcardHost(h)) return [h];
  const addresses = Object.values(os.networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && (h === '::' || a.family === 'IPv4'))
    .map((a) => a!.address.toLowerCase());
  return [...new Set([...LOOPBACK_NAMES, ...addresses])];
}

/** Parses an `--allow-origin` value: `http(s)://host[:port]`, nothing after it. */
export function parseOrigin(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`invalid origin ${JSON.stringify(raw)}: expected http(s)://host[:port]`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin === 'null') {
    throw new TypeError(`invalid origin ${JSON.stringify(raw)}: expected http(s)://host[:port]`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username) {
    throw new TypeError(`invalid origin ${JSON.stringify(raw)}: an origin has no path, query or user`);
  }
  return url;
}

/** A header value fit for a message: quoted, control characters escaped, cut at 100 characters. */
function shown(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

export class OriginPolicy {
  readonly #hosts = new Set<string>();
  readonly #origins = new Set<string>();
  /** The origin browsers are told to use. */
  readonly served: string;

  /**
   * @param listenHost the address the stand-in listens on
   * @param port the port it actually listens on
   * @param extraOrigins further origins pages may come from (a TLS proxy's name), `http(s)://host[:port]`
   */
  constructor(listenHost: string, port: number, extraOrigins: readonly string[] = []) {
    for (const name of namesFor(listenHost)) {
      const host = hostHeader(name, port);
      this.#hosts.add(host);
      this.#origins.add(`http://${host}`);
      if (port === 80) {
        const bare = isIPv6(name) ? `[${name}]` : name;
        this.#hosts.add(bare);
        this.#origins.add(`http://${bare}`);
      }
    }
    for (const raw of extraOrigins) {
      const url = parseOrigin(raw);
      this.#hosts.add(url.host.toLowerCase());
      this.#origins.add(url.origin.toLowerCase());
    }
    const main = isWildcardHost(listenHost) ? '127.0.0.1' : listenHost;
    this.served = `http://${hostHeader(main, port)}`;
  }

  /** Hosts accepted in a `Host` header. */
  get hosts(): readonly string[] {
    return [...this.#hosts];
  }

  /**
   * Returns why a request with these headers is refused, or undefined if it may proceed. `sameOrigin`:
   * the request reaches the API or Socket.IO, which only the stand-in's own page may use.
   */
  check(headers: IncomingHttpHeaders, sameOrigin: boolean): Refusal | undefined {
    const host = (headers.host ?? '').toLowerCase();
    if (!this.#hosts.has(host)) {
      return {
        code: ErrorCodes.HOST_REFUSED,
        message:
          `host ${shown(host)} is not served here: this termgate cloud answers only as ${this.served} ` +
          '(and its loopback names); another name is refused, since a page could rebind it to this address',
      };
    }
    const origin = headers.origin;
    if (origin !== undefined && !this.#origins.has(origin.toLowerCase())) {
      return {
        code: ErrorCodes.ORIGIN_REFUSED,
        message: `origin ${shown(origin)} is not allowed: only the page served by this termgate cloud (${this.served}) may connect`,
      };
    }
    const site = headers['sec-fetch-site'];
    if (sameOrigin && site !== undefined && site !== 'same-origin' && site !== 'none') {
      return {
        code: ErrorCodes.ORIGIN_REFUSED,
        message: `a ${shown(site)} request is not allowed (Sec-Fetch-Site): only the page served by this termgate cloud (${this.served}) may connect`,
      };
    }
    return undefined;
  }
}
