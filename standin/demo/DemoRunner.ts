/**
 * `termgate demo`: the cloud stand-in (in this process), one agent (a child process running this same
 * CLI), and demo vPLC containers of its own. The agent serves only containers labelled with this run's
 * id (`--container-label io.termgate.run=<id>`), never a name glob: on a real host the other `vplc-*`
 * containers are PLCs. Teardown order: agent (it ends its sessions and shells), then the cloud, then the
 * containers this run created.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { CloudServer, DEFAULT_WEB_ROOT } from '../cloud/CloudServer.js';
import { DemoContainers } from './DemoContainers.js';
import { newRunId } from '../ownership.js';

export interface DemoRunnerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; if taken, a free port is used. */
  port?: number;
  /** Allow a non-loopback host (see CloudServer). Default false. */
  public?: boolean;
  /** Further origins the page may be loaded from (see CloudServer). */
  allowedOrigins?: string[];
  /** Demo containers to create. Default 3. */
  containers?: number;
  /** Demo container names are `<prefix>1..N`. Default `vplc-demo-<run>-`. */
  namePrefix?: string;
  /** Agent worker threads. Default 2. */
  workers?: number;
  /** Agent log level. Default 'info'. */
  agentLogLevel?: string;
  dockerSocket?: string;
  logger: Logger;
}

const CLI_PATH = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const AGENT_READY_TIMEOUT_MS = 60_000;
const AGENT_STOP_TIMEOUT_MS = 10_000;

export class DemoRunner {
  readonly #opts: DemoRunnerOptions;
  readonly #log: Logger;
  readonly #docker: Dockerode;
  readonly #containers: DemoContainers;
  readonly #token = randomBytes(24).toString('base64url');
  /** This run's id, in the label of each container it creates. */
  readonly runId = newRunId();
  #cloud: CloudServer | undefined;
  #agent: ChildProcess | undefined;
  #agentExit: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: DemoRunnerOptions) {
    this.#opts = options;
    this.#log = options.logger;
    this.#docker = new Dockerode({ socketPath: options.dockerSocket ?? '/var/run/docker.sock' });
    this.#containers = new DemoContainers({
      docker: this.#docker,
      logger: this.#log,
      runId: this.runId,
      count: options.containers ?? 3,
      namePrefix: options.namePrefix,
    });
  }

  /**
   * Starts everything; resolves once the agent serves every container of this run, with the page's
   * URL (browser token in its fragment), the devices and their label.
   */
  async start(): Promise<{
    url: string;
    devices: string[];
    label: string;
    pageUrl: (device?: string) => string;
  }> {
    if (!existsSync(path.join(DEFAULT_WEB_ROOT, 'index.html'))) {
      throw new Error('the page is not built: run `npm run build` (or `npm start`) first');
    }
    try {
      await this.#docker.ping();
    } catch {
      throw new Error('no Docker engine answers: run `bash scripts/docker-up.sh` (or `npm start`) first');
    }
    const created = await this.#containers.create();
    const url = await this.#startCloud();
    this.#startAgent(url);
    const devices = await this.#waitForDevices(created);
    const cloud = this.#cloud!;
    return { url: cloud.pageUrl(), devices, label: this.#containers.label, pageUrl: (d) => cloud.pageUrl(d) };
  }

  /** Stops the agent, the cloud, and removes the containers this run created. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#stopAgent();
      await this.#cloud?.close();
      await this.#containers.close();
    })();
    return this.#closing;
  }

  /** After `close()`: demo containers it could not remove. */
  get containersLeft(): readonly string[] {
    return this.#containers.notRemoved;
  }

  /** Names of the containers this run created. */
  get containers(): readonly string[] {
    return this.#containers.created;
  }

  /** Resolves when the agent process exits (for whatever reason). */
  get agentExited(): Promise<void> {
    return this.#agentExit ?? new Promise<void>(() => undefined);
  }

  async #startCloud(): Promise<string> {
    const host = this.#opts.host ?? '127.0.0.1';
    const port = this.#opts.port ?? 8080;
    const make = (p: number) =>
      new CloudServer({
        agentToken: this.#token,
        host,
        port: p,
        public: this.#opts.public ?? false,
        allowedOrigins: this.#opts.allowedOrigins,
        logger: this.#log.child({ module: 'cloud' }),
      });
    this.#cloud = make(port);
    try {
      return await this.#cloud.listen();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw err;
      this.#log.warn({ port }, 'port taken, using a free one');
      this.#cloud = make(0);
      return await this.#cloud.listen();
    }
  }

  #startAgent(cloudUrl: string): void {
    const args = [
      CLI_PATH,
      'agent',
      '--cloud-url',
      cloudUrl,
      '--agent-id',
      'demo-agent',
      '--container-label',
      this.#containers.label,
      '--bind-address',
      '127.0.0.1',
      '--workers',
      String(this.#opts.workers ?? 2),
      '--metrics-listen',
      'off',
      '--log-level',
      this.#opts.agentLogLevel ?? 'info',
    ];
    if (this.#opts.dockerSocket) args.push('--docker-socket', this.#opts.dockerSocket);
    // The token goes by environment, not argv, so `ps` does not show it.
    const agent = spawn(process.execPath, args, {
      env: { ...process.env, TERMGATE_TOKEN: this.#token },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.#agent = agent;
    this.#agentExit = new Promise<void>((resolve) => {
      agent.once('exit', (code, signal) => {
        this.#log.info({ code, signal }, 'agent exited');
        resolve();
      });
    });
    this.#log.info({ pid: agent.pid }, 'agent started');
  }

  async #waitForDevices(expected: readonly string[]): Promise<string[]> {
    const deadline = Date.now() + AGENT_READY_TIMEOUT_MS;
    let exited = false;
    void this.#agentExit?.then(() => (exited = true));
    for (;;) {
      if (exited) throw new Error('the agent exited before serving the demo containers (see its log above)');
      const devices = (await this.#cloud!.listDevices()).map((d) => d.name);
      if (expected.every((name) => devices.includes(name))) return devices.sort();
      if (Date.now() > deadline) {
        throw new Error(
          `the agent did not serve the demo containers within 60 s (it serves: ${devices.join(', ')})`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async #stopAgent(): Promise<void> {
    const agent = this.#agent;
    if (!agent || agent.exitCode !== null || agent.signalCode !== null) return;
    agent.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.#log.warn(
        { pid: agent.pid },
        `the agent did not finish its drain within ${AGENT_STOP_TIMEOUT_MS / 1000} s of SIGTERM: killing it`,
      );
      agent.kill('SIGKILL');
    }, AGENT_STOP_TIMEOUT_MS);
    await this.#agentExit;
    clearTimeout(timer);
  }
}
