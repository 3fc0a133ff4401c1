/**
 * A real TURN server for tests: Debian's coturn (`turnserver`, installed by scripts/coturn-up.sh),
 * started on 127.0.0.1 with a config file in a private directory (so a shared secret never shows on a
 * command line), its log read from its stdout. Run it inside the test's private network namespace (see
 * netns.ts): it relays between loopback addresses only (`allow-loopback-peers`), and nothing outside can
 * reach it. `close()` stops this server, by the PID it was started with, and nothing else.
 *
 * Two ways to authenticate, as the agent meets them: long-term credentials (a user and password), or the
 * TURN REST convention (`use-auth-secret`): a shared secret from which username `<expiry>:<id>` and
 * password base64(HMAC-SHA1(secret, username)) are derived.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './metrics.js';

export const TURNSERVER_PATH = process.env.TERMGATE_TURNSERVER ?? '/usr/bin/turnserver';

export type CoturnAuth =
  { kind: 'long-term'; username: string; password: string } | { kind: 'rest'; secret: string };

export interface CoturnOptions {
  auth: CoturnAuth;
  /** Default 'termgate.test'. */
  realm?: string;
}

/** One allocation as coturn logged it: its session and the username it was made for. */
export interface CoturnAllocation {
  session: string;
  username: string;
}

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** The log keeps this much of its tail; a test reads allocations, not megabytes of log. */
const MAX_LOG_CHARS = 1_000_000;

export class Coturn {
  readonly port: number;
  readonly realm: string;
  readonly #auth: CoturnAuth;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #exited: Promise<void>;
  #log = '';
  #closing: Promise<void> | undefined;

  private constructor(child: ChildProcess, dir: string, port: number, options: CoturnOptions) {
    this.#child = child;
    this.#dir = dir;
    this.port = port;
    this.realm = options.realm ?? 'termgate.test';
    this.#auth = options.auth;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const append = (chunk: Buffer) => {
      this.#log = (this.#log + chunk.toString('utf8')).slice(-MAX_LOG_CHARS);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
  }

  /** Starts a server on 127.0.0.1 and waits until it listens. */
  static async start(options: CoturnOptions): Promise<Coturn> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'termgate-coturn-'));
    const port = await freePort();
    const config = path.join(dir, 'turnserver.conf');
    await writeFile(config, configText(dir, port, options), { mode: 0o600 });
    const child = spawn(TURNSERVER_PATH, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new Coturn(child, dir, port, options);
    try {
      await server.#untilListening();
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** The PID this server was started with (the only process `close()` signals). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** `turn:127.0.0.1:<port>?transport=udp|tcp`. */
  url(transport: 'udp' | 'tcp'): string {
    return `turn:127.0.0.1:${this.port}?transport=${transport}`;
  }

  /** Long-term credentials, or REST ones for `id` valid for `ttlSeconds`. */
  credentials(id = 'test', ttlSeconds = 3600): { username: string; credential: string } {
    if (this.#auth.kind === 'long-term') {
      return { username: this.#auth.username, credential: this.#auth.password };
    }
    return restCredentials(this.#auth.secret, id, ttlSeconds);
  }

  /** What the server has logged so far. */
  get log(): string {
    return this.#log;
  }

  /** Allocations the server made, from its log. */
  allocations(): CoturnAllocation[] {
    // coturn 4.6: "session 001000000000000001: realm <r> user <u>: incoming packet ALLOCATE processed, success"
    const success =
      /session (\d+): realm <[^>]*> user <([^>]*)>: incoming packet ALLOCATE processed, success/g;
    return [...this.#log.matchAll(success)].map((m) => ({ session: m[1]!, username: m[2]! }));
  }

  /** The clients that reached the server over TCP (`address:port`), from its log. */
  tcpClients(): string[] {
    // coturn 4.6: "IPv4. tcp or tls connected to: 10.99.0.1:37739"
    return [...this.#log.matchAll(/tcp or tls connected to: (\S+)/g)].map((m) => m[1]!);
  }

  /** Stops this server (SIGTERM, then SIGKILL) and removes its directory. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const child = this.#child;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const kill = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await this.#exited;
        clearTimeout(kill);
      }
      await rm(this.#dir, { recursive: true, force: true });
    })();
    return this.#closing;
  }

  async #untilListening(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!/IPv4\. UDP listener opened on: 127\.0\.0\.1:/.test(this.#log)) {
      if (this.#child.exitCode !== null)
        throw new Error(`turnserver exited with ${this.#child.exitCode}: ${this.#log.slice(-2000)}`);
      if (Date.now() > deadline)
        throw new Error(`turnserver did not start within ${START_TIMEOUT_MS} ms: ${this.#log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** TURN REST credentials: username `<expiry unix time>:<id>`, password base64(HMAC-SHA1(secret, username)). */
export function restCredentials(
  secret: string,
  id: string,
  ttlSeconds: number,
): { username: string; credential: string } {
  const username = `${Math.floor(Date.now() / 1000) + ttlSeconds}:${id}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

function configText(dir: string, port: number, options: CoturnOptions): string {
  const auth =
    options.auth.kind === 'long-term'
      ? ['lt-cred-mech', `user=${options.auth.username}:${options.auth.password}`]
      : ['use-auth-secret', `static-auth-secret=${options.auth.secret}`];
  return [
    'listening-ip=127.0.0.1',
    'relay-ip=127.0.0.1',
    `listening-port=${port}`,
    // Relay ports of this server only; inside a private namespace no other server shares them.
    'min-port=49160',
    'max-port=49300',
    ...auth,
    `realm=${options.realm ?? 'termgate.test'}`,
    // Peers are on loopback here, which coturn refuses by default (a relay into the host's own services).
    'allow-loopback-peers',
    'no-cli',
    'no-tls',
    'no-dtls',
    'no-multicast-peers',
    'verbose',
    'log-file=stdout',
    'simple-log',
    `pidfile=${path.join(dir, 'turnserver.pid')}`,
    `userdb=${path.join(dir, 'turndb')}`,
    '',
  ].join('\n');
}
