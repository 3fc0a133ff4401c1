/**
 * STUN and TURN server URLs (RFC 7064, RFC 7065) as the agent takes them from its flags and from the
 * cloud's offers: `stun:host[:port]`, `turn:host[:port][?transport=udp|tcp]`, `turns:host[:port]…`, with
 * the older `turn:user:pass@host` form (libdatachannel's) kept for flags. One grammar for both edges, so
 * nothing that passed validation fails later in a worker.
 */

export type IceScheme = 'stun' | 'turn' | 'turns';

export interface IceUrl {
  scheme: IceScheme;
  /** `user:pass` of the older form, still percent-encoded; undefined in the RFC forms. */
  userinfo: string | undefined;
  /** Without brackets for IPv6. */
  host: string;
  port: number;
  transport: 'udp' | 'tcp' | undefined;
}

const ICE_URL =
  /^(stun|turns?):(?:([^@\s/?#]+)@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253})(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/;

/** Longest URL accepted, at both edges. */
export const MAX_ICE_URL_LENGTH = 512;

/** The parts of a STUN/TURN URL, or undefined when it is not one. */
export function parseIceUrl(url: string): IceUrl | undefined {
  if (url.length > MAX_ICE_URL_LENGTH) return undefined;
  const m = ICE_URL.exec(url);
  if (!m) return undefined;
  const scheme = m[1] as IceScheme;
  const port = m[4] === undefined ? defaultPort(scheme) : Number(m[4]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[3]!.replace(/^\[(.*)\]$/, '$1');
  return { scheme, userinfo: m[2], host, port, transport: m[5] as IceUrl['transport'] };
}

function defaultPort(scheme: IceScheme): number {
  return scheme === 'turns' ? 5349 : 3478;
}

/**
 * libjuice, node-datachannel's ICE library, reaches TURN servers over UDP only: it skips a TURN server
 * over TCP or TLS (and says so in libdatachannel's log). True for the URLs it skips.
 */
export function agentCannotUse(url: IceUrl): boolean {
  return url.scheme === 'turns' || (url.scheme === 'turn' && url.transport === 'tcp');
}
