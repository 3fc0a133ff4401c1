/**
 * One UDP port for every session of every worker (`--ice-udp-port`). Each pool worker loads its own copy
 * of libdatachannel (NOTES: one shared copy crashes), and each copy's ICE UDP mux needs a port of its own,
 * so the workers listen on internal ports and this front listens on the one public port, relaying:
 *
 * - a browser (remote address R) gets a route the first time it sends a STUN Binding request: a socket
 *   of its own on the workers' side, from which everything R sends is relayed to the workers. Until one
 *   of them answers, R's packets go to every worker port: libjuice's mux answers only for an ICE ufrag
 *   of its own and drops the rest silently (conn_mux.c, lookup_agent), so the worker that answers is the
 *   session's, and from then on the route's only worker;
 * - what that worker sends to the route's socket leaves through the public port to R, so the browser
 *   sees every packet come from the address it checked (ICE needs symmetric responses).
 *
 * The worker sees the browser as the route's socket (a peer-reflexive candidate; the worker is given no
 * direct candidates of the browser: workers/front-candidates.ts), so ICE, DTLS and SCTP all go through
 * here. Per packet: one receive and one send in this thread, each way.
 *
 * Bounded: at most `maxRoutes` routes; a route no worker answered within `unansweredMs`, or with no
 * packet either way for `idleMs` (ICE consent checks alone come every ~5 s), is closed. Of those, at most
 * `maxUnanswered` may wait for an answer: past it the oldest waiting one makes room, so requests from
 * addresses no session knows (a spoofed flood) cannot crowd out the routes of real sessions.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { isIPv6 } from 'node:net';
import { clearFrontRoute, clearFrontRoutes, writeFrontRoute } from '../../common/protocol/front-routes.js';
import { isStunBindingRequest } from '../../common/stun.js';

export interface IceUdpFrontOptions {
  /** Where the public port listens; undefined: every address, IPv4 and IPv6. */
  bindAddress: string | undefined;
  port: number;
  /** The workers' internal mux ports, on `workerAddress`. */
  workerPorts: number[];
  workerAddress: string;
  maxRoutes: number;
  maxUnanswered: number;
  unansweredMs: number;
  idleMs: number;
  /** Where the workers learn which browser each route socket stands for (front-routes.ts). */
  routes?: SharedArrayBuffer | undefined;
}

export const DEFAULT_FRONT_LIMITS = {
  maxRoutes: 8192,
  maxUnanswered: 1024,
  unansweredMs: 5_000,
  idleMs: 60_000,
};

export interface FrontCounts {
  routes: number;
  /** Packets dropped: from an address with no route that did not open one, over `maxRoutes`, or a send that failed. */
  dropped: number;
}

/** The address the workers' sockets listen on, for a front bound to `bindAddress`. */
export function workerAddressFor(bindAddress: string | undefined): string {
  if (bindAddress === undefined || bindAddress === '0.0.0.0') return '127.0.0.1';
  if (bindAddress === '::') return '::1';
  return bindAddress;
}

class Route {
  readonly socket: Socket;
  readonly #remote: RemoteInfo;
  readonly #front: IceUdpFront;
  /** The worker port that answered; until then R's packets go to all of them. */
  #worker: number | undefined;
  readonly openedAt = Date.now();
  lastPacketAt = Date.now();
  readonly #table: SharedArrayBuffer | undefined;
  /** The socket's port once bound; the key of its entry in the routes table. */
  #localPort: number | undefined;
  #closed = false;

  constructor(front: IceUdpFront, remote: RemoteInfo, workerAddress: string, table?: SharedArrayBuffer) {
    this.#front = front;
    this.#remote = remote;
    this.#table = table;
    this.socket = createSocket(isIPv6(workerAddress) ? 'udp6' : 'udp4');
    this.socket.on('message', (packet, from) => this.#fromWorker(packet, from));
    // A send that failed (ENOBUFS, say) loses that datagram, as the network could: SCTP resends.
    this.socket.on('error', () => this.#front.lost());
    this.socket.once('listening', () => this.#listening());
    // On the workers' side only: sends queue until it is bound.
    this.socket.bind(0, workerAddress);
  }

  /** Tells the workers which browser this socket stands for (common/protocol/front-routes.ts). */
  #listening(): void {
    if (this.#closed) return;
    this.#localPort = this.socket.address().port;
    if (this.#table) writeFrontRoute(this.#table, this.#localPort, this.#remote);
  }

  get answered(): boolean {
    return this.#worker !== undefined;
  }

  get key(): string {
    return routeKey(this.#remote);
  }

  /** From the browser, on to the session's worker (or to all of them until one answered). */
  toWorker(packet: Buffer, workerPorts: readonly number[], workerAddress: string): void {
    this.lastPacketAt = Date.now();
    if (this.#worker !== undefined) this.socket.send(packet, this.#worker, workerAddress);
    else for (const port of workerPorts) this.socket.send(packet, port, workerAddress);
  }

  #fromWorker(packet: Buffer, from: RemoteInfo): void {
    if (!this.#front.isWorker(from)) return;
    if (this.#worker === undefined) {
      this.#worker = from.port;
      this.#front.answered(this);
    }
    if (from.port !== this.#worker) return;
    this.lastPacketAt = Date.now();
    this.#front.toRemote(packet, this.#remote);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#table && this.#localPort !== undefined) clearFrontRoute(this.#table, this.#localPort);
    try {
      this.socket.close();
    } catch {
      // Already closed after an error.
    }
  }
}

function routeKey(remote: Pick<RemoteInfo, 'address' | 'port'>): string {
  return `${remote.address}|${remote.port}`;
}

export class IceUdpFront {
  readonly #options: IceUdpFrontOptions;
  readonly #socket: Socket;
  readonly #routes = new Map<string, Route>();
  /** Routes no worker has answered yet, oldest first. */
  readonly #unanswered = new Set<Route>();
  readonly #workerPorts: Set<number>;
  readonly #sweep: NodeJS.Timeout;
  #dropped = 0;
  #closed = false;

  private constructor(options: IceUdpFrontOptions, socket: Socket) {
    this.#options = options;
    this.#socket = socket;
    this.#workerPorts = new Set(options.workerPorts);
    socket.on('message', (packet, from) => this.#fromRemote(packet, from));
    socket.on('error', () => this.lost());
    this.#sweep = setInterval(() => this.#closeStale(), Math.min(options.unansweredMs, 5_000));
    this.#sweep.unref();
  }

  /** Binds the public port; rejects (EADDRINUSE, EACCES) if it cannot. */
  static async open(options: IceUdpFrontOptions): Promise<IceUdpFront> {
    const socket =
      options.bindAddress === undefined
        ? createSocket({ type: 'udp6', ipv6Only: false })
        : createSocket(isIPv6(options.bindAddress) ? 'udp6' : 'udp4');
    const bound = once(socket, 'listening');
    socket.bind(options.port, options.bindAddress ?? '::');
    await bound;
    if (options.routes) clearFrontRoutes(options.routes);
    return new IceUdpFront(options, socket);
  }

  /** Where the public port listens (its port, when 0 was asked for). */
  get address(): { address: string; port: number } {
    return this.#socket.address();
  }

  get counts(): FrontCounts {
    return { routes: this.#routes.size, dropped: this.#dropped };
  }

  /** True for a packet from one of the workers' ports (nothing else may speak for a browser). */
  isWorker(from: RemoteInfo): boolean {
    return this.#workerPorts.has(from.port) && from.address === this.#options.workerAddress;
  }

  toRemote(packet: Buffer, remote: RemoteInfo): void {
    if (!this.#closed) this.#socket.send(packet, remote.port, remote.address);
  }

  /** A datagram could not be sent on (counted with the dropped ones). */
  lost(): void {
    this.#dropped++;
  }

  /** A worker answered on `route`: it serves a session. */
  answered(route: Route): void {
    this.#unanswered.delete(route);
  }

  forget(route: Route): void {
    if (this.#routes.get(route.key) === route) this.#routes.delete(route.key);
    this.#unanswered.delete(route);
    route.close();
  }

  /** Closes the public port and every route. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const route of this.#routes.values()) route.close();
    this.#routes.clear();
    this.#unanswered.clear();
    this.#socket.close();
  }

  #fromRemote(packet: Buffer, from: RemoteInfo): void {
    const route = this.#routes.get(routeKey(from)) ?? this.#open(packet, from);
    if (route) route.toWorker(packet, this.#options.workerPorts, this.#options.workerAddress);
    else this.#dropped++;
  }

  /** A new route for a Binding request from `from`, if there is room (made among unanswered routes). */
  #open(packet: Buffer, from: RemoteInfo): Route | undefined {
    if (!isStunBindingRequest(packet)) return undefined;
    const oldestWaiting = this.#unanswered.values().next().value;
    if (oldestWaiting && this.#unanswered.size >= this.#options.maxUnanswered) this.forget(oldestWaiting);
    else if (this.#routes.size >= this.#options.maxRoutes) return undefined;
    const route = new Route(this, from, this.#options.workerAddress, this.#options.routes);
    this.#routes.set(route.key, route);
    this.#unanswered.add(route);
    return route;
  }

  #closeStale(): void {
    const now = Date.now();
    const { unansweredMs, idleMs } = this.#options;
    for (const route of [...this.#routes.values()]) {
      const unanswered = !route.answered && now - route.openedAt > unansweredMs;
      if (unanswered || now - route.lastPacketAt > idleMs) this.forget(route);
    }
  }
}
