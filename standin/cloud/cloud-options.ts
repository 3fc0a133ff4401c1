/** The stand-in's options, with their defaults, checked before anything listens. */
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { OfferIceServer } from '../../common/protocol/signaling.js';
import { isLoopbackHost } from '../../common/host-port.js';
import { AccessToken } from './AccessToken.js';
import { parseOrigin } from './OriginPolicy.js';

export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

export interface CloudServerOptions {
  /** Token agents must present in `auth.token`. Required. */
  agentToken: string;
  /**
   * Token browsers must present in `auth.token` and as `Authorization: Bearer` on `/api/devices`.
   * Default: a random one for this instance (see `pageUrl()`).
   */
  browserToken?: string;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Allow a non-loopback `host`. Default false: a stand-in is not a product to expose. */
  public?: boolean;
  /** Further origins the page may be loaded from, `http(s)://host[:port]` (a TLS proxy in front). */
  allowedOrigins?: string[];
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
  /**
   * What the page gets from `GET /api/ice-servers` for its RTCPeerConnection: STUN/TURN servers and the
   * transport policy. Default: none, all (direct paths on loopback).
   */
  browserIce?: BrowserIceConfig;
  /**
   * ICE servers to hand the agent in a session's offer (`ice_servers`), e.g. TURN credentials issued for
   * that session. Default: none (the agent uses its own `--ice-server`).
   */
  agentIceServers?: (sessionId: string) => OfferIceServer[] | undefined;
}

/** The page's ICE configuration, as `/api/ice-servers` serves it. */
export interface BrowserIceConfig {
  ice_servers: OfferIceServer[];
  ice_transport_policy: 'all' | 'relay';
}

export type CheckedOptions = Required<
  Omit<CloudServerOptions, 'public' | 'logger' | 'browserIce' | 'agentIceServers'>
> &
  Pick<CloudServerOptions, 'agentIceServers'> & { browserIce: BrowserIceConfig };

/** Every option with its default, or a TypeError naming the option that cannot work. */
export function checkOptions(options: CloudServerOptions): CheckedOptions {
  if (typeof options.agentToken !== 'string' || options.agentToken.length === 0) {
    throw new TypeError('options.agentToken must be a non-empty string');
  }
  const browserToken = options.browserToken ?? AccessToken.random();
  if (browserToken.length < 16 || browserToken === options.agentToken) {
    throw new TypeError('options.browserToken must be at least 16 characters and differ from agentToken');
  }
  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackHost(host) && options.public !== true) {
    throw new TypeError(
      `options.host ${host} is not a loopback address: the stand-in listens on loopback unless public is set`,
    );
  }
  const allowedOrigins = options.allowedOrigins ?? [];
  for (const origin of allowedOrigins) parseOrigin(origin);
  return {
    agentToken: options.agentToken,
    browserToken,
    host,
    allowedOrigins,
    port: checkInt('port', options.port ?? 8080, 0, 65535),
    webRoot: options.webRoot ?? DEFAULT_WEB_ROOT,
    offerTimeoutMs: checkInt('offerTimeoutMs', options.offerTimeoutMs ?? 15_000, 1),
    devicesTimeoutMs: checkInt('devicesTimeoutMs', options.devicesTimeoutMs ?? 3_000, 1),
    devicesRefreshMs: checkInt('devicesRefreshMs', options.devicesRefreshMs ?? 10_000, 1),
    maxSdpBytes: checkInt('maxSdpBytes', options.maxSdpBytes ?? 65_536, 1),
    browserIce: options.browserIce ?? { ice_servers: [], ice_transport_policy: 'all' },
    agentIceServers: options.agentIceServers,
  };
}

function checkInt(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`options.${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}
