/**
 * A UDP proxy, one per worker, between libjuice and the TURN servers of relay-only sessions, which
 * repairs on the way in what Chromium over TURN/TCP sends (workers/zero-tiebreaker.ts). libjuice is given
 * a loopback endpoint that stands for each server; every libjuice socket that talks to it gets a socket
 * of its own towards the server, so the server still sees one 5-tuple per allocation, as without the
 * proxy. Traffic towards the server passes untouched; from the server, only a relayed check with a
 * tie-breaker of 0 is changed. Datagrams from anyone but the server are dropped.
 *
 * Relay-only sessions only: the server reports each allocation's mapped address, which libjuice would
 * offer as a server-reflexive candidate, and that address is now the proxy's socket, which lets nothing
 * but the server through. Relay-only, libjuice offers no such candidate.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { lookup } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import { parseIceUrl } from '../common/ice-url.js';
import type { PeerIceServer } from '../common/protocol/worker-messages.js';
import { repairZeroTiebreaker } from './zero-tiebreaker.js';

export interface TurnProxyOptions {
  /** Where the sockets towards servers bind (the agent's `--bind-address`); undefined: any. */
  bindAddress: string | undefined;
  /** A libjuice socket silent this long loses its socket towards the server. */
  idleMs: number;
  /** At most this many sockets towards servers, over all servers. */
  maxUpstreams: number;
  /**
   * At most this many servers get an endpoint (a socket each, for the worker's life); the cloud can name
   * servers per session, so past it a session reaches its server directly, without the repair.
   */
  maxServers: number;
  /** Called at the first check repaired, to say once that the repair is in use. */
  onFirstRepair?: () => void;
}

export interface Endpoint {
  host: string;
  port: number;
}

interface Upstream {
  socket: Socket;
  lastUsed: number;
}

/** Everything that stands for one TURN server: the endpoint libjuice sends to, and one socket per libjuice socket. */
class ServerLeg {
  readonly #server: Endpoint;
  readonly #downstream: Socket;
  readonly #upstreams = new Map<string, Upstream>();
  readonly #proxy: TurnProxy;

  constructor(proxy: TurnProxy, server: Endpoint, downstream: Socket) {
    this.#proxy = proxy;
    this.#server = server;
    this.#downstream = downstream;
    downstream.on('message', (packet, from) => this.#towardsServer(packet, from));
    downstream.on('error', () => undefined); // a failed send: UDP, libjuice retransmits
  }

  get endpoint(): Endpoint {
    const { address, port } = this.#downstream.address();
    return { host: address, port };
  }

  get upstreams(): number {
    return this.#upstreams.size;
  }

  #towardsServer(packet: Buffer, from: RemoteInfo): void {
    const key = `${from.address}|${from.port}`;
    let upstream = this.#upstreams.get(key);
    if (!upstream) {
      if (!this.#proxy.mayOpenUpstream()) return;
      upstream = this.#openUpstream(from);
      this.#upstreams.set(key, upstream);
    }
    upstream.lastUsed = Date.now();
    upstream.socket.send(packet, this.#server.port, this.#server.host, ignoreSendError);
  }

  #openUpstream(libjuice: RemoteInfo): Upstream {
    const socket = createSocket(isIPv6(this.#server.host) ? 'udp6' : 'udp4');
    const bindAddress = this.#proxy.bindAddressFor(this.#server.host);
    socket.bind(bindAddress === undefined ? {} : { address: bindAddress });
    socket.on('error', () => undefined); // a failed send: UDP, libjuice retransmits
    const upstream: Upstream = { socket, lastUsed: Date.now() };
    socket.on('message', (packet, from) => {
      if (from.address !== this.#server.host || from.port !== this.#server.port) return;
      upstream.lastUsed = Date.now();
      this.#proxy.repair(packet);
      this.#downstream.send(packet, libjuice.port, libjuice.address, ignoreSendError);
    });
    return upstream;
  }

  /** Closes the sockets of libjuice sockets silent for `idleMs`. */
  sweep(idleMs: number, now: number): void {
    for (const [key, upstream] of this.#upstreams) {
      if (now - upstream.lastUsed < idleMs) continue;
      upstream.socket.close();
      this.#upstreams.delete(key);
    }
  }

  close(): void {
    for (const upstream of this.#upstreams.values()) upstream.socket.close();
    this.#upstreams.clear();
    try {
      this.#downstream.close();
    } catch {
      // already closed
    }
  }
}

export class TurnProxy {
  readonly #options: TurnProxyOptions;
  readonly #legs = new Map<string, Promise<ServerLeg>>();
  /** The legs whose endpoint is listening. */
  readonly #open = new Set<ServerLeg>();
  readonly #passwords = new Map<string, string>();
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;
  /** Checks repaired, for the tests and the log. */
  repaired = 0;

  constructor(options: TurnProxyOptions) {
    this.#options = options;
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(1000, options.idleMs / 4));
    this.#sweeper.unref();
  }

  /**
   * The loopback endpoint that stands for the TURN server at `host`:`port`. The name is resolved for
   * every session, so a server that moves is followed: sessions already open keep the address they had.
   */
  async endpointFor(host: string, port: number): Promise<Endpoint> {
    if (this.#closed) throw new Error('the TURN proxy is closed');
    const { address } = await lookup(host);
    const key = addressKey(address, port);
    let leg = this.#legs.get(key);
    if (!leg) {
      if (this.#legs.size >= this.#options.maxServers)
        throw new Error('the TURN proxy serves no more servers');
      leg = this.#openLeg(address, port);
      this.#legs.set(key, leg);
      leg.catch(() => this.#legs.delete(key));
    }
    return (await leg).endpoint;
  }

  /**
   * `servers` with each TURN server over UDP (all libjuice reaches) replaced by the endpoint that stands
   * for it. A server whose name does not resolve is left as it is, for libjuice to report.
   */
  route(servers: PeerIceServer[]): Promise<PeerIceServer[]> {
    return Promise.all(servers.map((server) => this.#routeOne(server).catch(() => server)));
  }

  async #routeOne(server: PeerIceServer): Promise<PeerIceServer> {
    if (typeof server !== 'string') {
      if (server.relayType !== 'TurnUdp') return server;
      const endpoint = await this.endpointFor(server.hostname, server.port);
      return { ...server, hostname: endpoint.host, port: endpoint.port };
    }
    const url = parseIceUrl(server);
    if (!url || url.scheme !== 'turn' || url.transport === 'tcp') return server;
    const endpoint = await this.endpointFor(url.host, url.port);
    const userinfo = url.userinfo === undefined ? '' : `${url.userinfo}@`;
    return `turn:${userinfo}${endpoint.host}:${endpoint.port}?transport=udp`;
  }

  /** Lets the proxy re-sign checks for the local ICE username fragment `ufrag`; returns the undo. */
  admit(ufrag: string, password: string): () => void {
    this.#passwords.set(ufrag, password);
    return () => {
      if (this.#passwords.get(ufrag) === password) this.#passwords.delete(ufrag);
    };
  }

  /** @internal */
  repair(packet: Buffer): void {
    if (!repairZeroTiebreaker(packet, (ufrag) => this.#passwords.get(ufrag))) return;
    if (this.repaired++ === 0) this.#options.onFirstRepair?.();
  }

  /** @internal */
  mayOpenUpstream(): boolean {
    return this.#upstreamCount() < this.#options.maxUpstreams;
  }

  /** @internal The bind address for a socket towards `serverHost`, if of the same family. */
  bindAddressFor(serverHost: string): string | undefined {
    const bind = this.#options.bindAddress;
    if (bind === undefined || isIPv6(bind) !== isIPv6(serverHost)) return undefined;
    return bind;
  }

  /** Closes every socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const leg of this.#open) leg.close();
    this.#open.clear();
    this.#legs.clear();
    this.#passwords.clear();
  }

  async #openLeg(address: string, port: number): Promise<ServerLeg> {
    // Loopback of the family libjuice's sockets are bound in.
    const bind = this.#options.bindAddress;
    const v6 = bind !== undefined && isIPv6(bind);
    const downstream = createSocket(v6 ? 'udp6' : 'udp4');
    downstream.bind({ address: v6 ? '::1' : '127.0.0.1', port: 0 });
    await once(downstream, 'listening');
    const leg = new ServerLeg(this, { host: address, port }, downstream);
    if (this.#closed) leg.close();
    else this.#open.add(leg);
    return leg;
  }

  #upstreamCount(): number {
    let count = 0;
    for (const leg of this.#open) count += leg.upstreams;
    return count;
  }

  #sweep(): void {
    const now = Date.now();
    for (const leg of this.#open) leg.sweep(this.#options.idleMs, now);
  }
}

function addressKey(address: string, port: number): string {
  return `${address}|${port}`;
}

function ignoreSendError(): void {
  // UDP: a lost datagram is retransmitted by ICE or TURN.
}
