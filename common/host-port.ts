/** Host names and `host:port` values as flags and URLs give them. */
import { isIPv4 } from 'node:net';

/**
 * True for addresses whose traffic never leaves the machine: `localhost`, 127.0.0.0/8, `::1` and
 * IPv4-mapped 127.x, with or without the brackets a URL puts around IPv6.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIPv4(v4) && v4.startsWith('127.');
}

/** Parses `HOST:PORT` (`[::1]:8080` for IPv6, brackets dropped); undefined if it is not one. */
export function parseHostPort(raw: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]\s]+\]|[^:\s]+):(\d{1,5})$/.exec(raw.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}
