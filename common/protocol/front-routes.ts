/**
 * Behind the ICE UDP front (`--ice-udp-port`) a worker sees each browser as one of the front's route
 * sockets on loopback, so the pair ICE selects says `prflx` whatever the browser's real path. The front
 * writes here, for each route socket's port, the browser address it stands for; a worker reads it when
 * it samples a session's path, and tells the browser's host, server-reflexive or relay address from the
 * candidates the browser signaled (workers/selected-path.ts).
 *
 * One SharedArrayBuffer indexed by port, like the other tables between threads (worker-stats.ts): a
 * read never waits on the front's thread. One writer (the front); an entry is written under a sequence
 * number, odd while it changes, so that a reader never takes half of one address with half of another.
 */
import { isIPv6 } from 'node:net';
import { canonicalIpv6 } from '../ipv6.js';

/** Per port: [sequence, family (0 none, 4, 6), port, four words of address]. */
const WORDS = 7;
const PORTS = 65536;
const READ_TRIES = 4;

export interface RoutedAddress {
  address: string;
  port: number;
}

export function createFrontRoutes(): SharedArrayBuffer {
  return new SharedArrayBuffer(PORTS * WORDS * Int32Array.BYTES_PER_ELEMENT);
}

function entry(table: SharedArrayBuffer, localPort: number): Int32Array | undefined {
  if (!Number.isInteger(localPort) || localPort < 1 || localPort >= PORTS) return undefined;
  return new Int32Array(table, localPort * WORDS * Int32Array.BYTES_PER_ELEMENT, WORDS);
}

function write(table: SharedArrayBuffer, localPort: number, words: readonly number[]): void {
  const e = entry(table, localPort);
  if (!e) return;
  Atomics.add(e, 0, 1);
  for (let i = 0; i < words.length; i++) Atomics.store(e, 1 + i, words[i]!);
  Atomics.add(e, 0, 1);
}

/** The route socket at `localPort` stands for the browser at `remote`. */
export function writeFrontRoute(table: SharedArrayBuffer, localPort: number, remote: RoutedAddress): void {
  // A dual-stack socket sees an IPv4 browser as ::ffff:a.b.c.d; its candidates say a.b.c.d.
  const address = remote.address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  write(table, localPort, [isIPv6(address) ? 6 : 4, remote.port, ...addressWords(address)]);
}

/** The route socket at `localPort` is closed. */
export function clearFrontRoute(table: SharedArrayBuffer, localPort: number): void {
  write(table, localPort, [0, 0, 0, 0, 0, 0]);
}

/** Clears every entry: a front that starts again (its thread replaced) has no route yet. */
export function clearFrontRoutes(table: SharedArrayBuffer): void {
  const words = new Int32Array(table);
  for (let port = 1; port < PORTS; port++) {
    if (Atomics.load(words, port * WORDS + 1) !== 0) clearFrontRoute(table, port);
  }
}

/** The browser address the route socket at `localPort` stands for, if it is one. */
export function readFrontRoute(table: SharedArrayBuffer, localPort: number): RoutedAddress | undefined {
  const e = entry(table, localPort);
  if (!e) return undefined;
  for (let attempt = 0; attempt < READ_TRIES; attempt++) {
    const before = Atomics.load(e, 0);
    const words = [1, 2, 3, 4, 5, 6].map((i) => Atomics.load(e, i));
    if (before % 2 === 0 && Atomics.load(e, 0) === before) return routedAddress(words);
  }
  return undefined;
}

function routedAddress([family, port, ...address]: number[]): RoutedAddress | undefined {
  if (family === 4) return { address: ipv4(address[0]!), port: port! };
  if (family === 6) return { address: ipv6(address), port: port! };
  return undefined;
}

function addressWords(address: string): number[] {
  if (!isIPv6(address)) {
    const octets = address.split('.').map(Number);
    return [(octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]! | 0, 0, 0, 0];
  }
  const url = canonicalIpv6(address);
  const [head, tail = ''] = url.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = url.includes('::')
    ? [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
    : headGroups;
  // The URL parser writes an IPv4-mapped tail in hex too, so every group is hex here.
  const expanded = groups.map((g) => parseInt(g, 16));
  return [0, 1, 2, 3].map((i) => (expanded[2 * i]! << 16) | expanded[2 * i + 1]! | 0);
}

function ipv4(word: number): string {
  return [24, 16, 8, 0].map((shift) => (word >>> shift) & 0xff).join('.');
}

function ipv6(words: number[]): string {
  const groups = words.flatMap((w) => [(w >>> 16) & 0xffff, w & 0xffff].map((g) => g.toString(16)));
  return canonicalIpv6(groups.join(':'));
}
