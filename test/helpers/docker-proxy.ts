/**
 * A unix-socket proxy in front of the real Docker engine, for tests that must see or steer what the agent
 * asks of it: every request's method and path is recorded, and requests matching a test's predicate can
 * be held until the test lets them go (to open a race window on purpose). Bytes pass unchanged; once a
 * request upgrades its connection (a hijacked exec stream), the rest of that connection is passed through
 * unparsed.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface DockerRequest {
  method: string;
  path: string;
}

interface Hold {
  match: (request: DockerRequest) => boolean;
  waiting: Array<() => void>;
  held: number;
}

export class DockerProxy {
  readonly socket: string;
  readonly requests: DockerRequest[] = [];
  readonly #dir: string;
  readonly #server: Server;
  readonly #connections = new Set<Socket>();
  readonly #holds = new Set<Hold>();

  private constructor(upstream: string) {
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'tg-dproxy-'));
    this.socket = path.join(this.#dir, 'docker.sock');
    this.#server = createServer((client) => this.#relay(client, upstream));
  }

  static async start(upstream = '/var/run/docker.sock'): Promise<DockerProxy> {
    const proxy = new DockerProxy(upstream);
    proxy.#server.listen(proxy.socket);
    await once(proxy.#server, 'listening');
    return proxy;
  }

  /** Requests whose path matches `pattern` (and method, if given) so far. */
  count(pattern: RegExp, method?: string): number {
    return this.requests.filter((r) => pattern.test(r.path) && (!method || r.method === method)).length;
  }

  /**
   * Holds every request matching `match` until the returned function is called. `held()` says how many
   * are waiting right now.
   */
  hold(match: (request: DockerRequest) => boolean): { release: () => void; held: () => number } {
    const hold: Hold = { match, waiting: [], held: 0 };
    this.#holds.add(hold);
    return {
      held: () => hold.held,
      release: () => {
        this.#holds.delete(hold);
        for (const go of hold.waiting.splice(0)) go();
        hold.held = 0;
      },
    };
  }

  async close(): Promise<void> {
    for (const hold of [...this.#holds]) for (const go of hold.waiting.splice(0)) go();
    this.#holds.clear();
    for (const c of this.#connections) c.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #relay(client: Socket, upstream: string): void {
    const server = connect(upstream);
    this.#connections.add(client).add(server);
    const end = () => {
      client.destroy();
      server.destroy();
      this.#connections.delete(client);
      this.#connections.delete(server);
    };
    client.on('error', end).on('close', end);
    server.on('error', end).on('close', end);
    server.on('data', (d: Buffer) => client.write(d));
    let pending = Buffer.alloc(0);
    let passthrough = false;
    let paused = false;
    /** The request at the head of `pending` was held and let go: forward it this time. */
    let released = false;
    const pump = () => {
      while (!paused && pending.length > 0) {
        if (passthrough) {
          server.write(pending);
          pending = Buffer.alloc(0);
          return;
        }
        const headEnd = pending.indexOf('\r\n\r\n');
        if (headEnd < 0) return; // wait for the whole head
        const head = pending.subarray(0, headEnd).toString('latin1');
        const [requestLine = '', ...headers] = head.split('\r\n');
        const [method = '', target = ''] = requestLine.split(' ');
        const length = Number(/^content-length:\s*(\d+)/im.exec(headers.join('\n'))?.[1] ?? 0);
        const total = headEnd + 4 + length;
        if (pending.length < total) return; // wait for the body
        const request = { method, path: target.replace(/^\/v[\d.]+/, '') };
        const hold = [...this.#holds].find((h) => h.match(request));
        if (hold && !released) {
          paused = true;
          hold.held++;
          hold.waiting.push(() => {
            paused = false;
            released = true;
            pump();
          });
          return;
        }
        released = false;
        this.requests.push(request);
        server.write(pending.subarray(0, total));
        pending = pending.subarray(total);
        if (/^upgrade:/im.test(head) || /^transfer-encoding:\s*chunked/im.test(head)) passthrough = true;
      }
    };
    client.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      pump();
    });
  }
}
