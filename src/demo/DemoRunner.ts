/**
 * `termgate demo`: the cloud stand-in (in this process), one agent (a child process running this same
 * CLI), and demo vPLC containers if none run. Teardown order: agent (it ends its sessions and shells),
 * then the cloud, then the containers this run created.
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

export interface DemoRunnerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; if taken, a free port is used. */
  port?: number;
  /** Demo containers created when none run. Default 3. */
  containers?: number;
  /** Create demo containers even if vPLC containers run. Default false. */
  newContainers?: boolean;
  /** Demo container names are `<prefix>1..N`. Default `vplc-demo-`. */
  namePrefix?: string;
  /** Agent worker threads. Default 2. */
  workers?: number;
  /** Agent log level. Default 'info'. */
  agentLogLevel?: string;
  dockerSocket?: string;
  logger: Logger;
}

const CLI_PATH = fileURLToPath(new URL('../cli.js', import.meta.url));
const AGENT_READY_TIMEOUT_MS = 60_000;
const AGENT_STOP_TIMEOUT_MS = 10_000;

export class DemoRunner {
  readonly #opts: DemoRunnerOptions;
  readonly #log: Logger;
  readonly #docker: Dockerode;
  readonly #containers: DemoContainers;
  readonly #token = randomBytes(24).toString('base64url');
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
      count: options.containers ?? 3,
      alwaysCreate: options.newContainers ?? false,
      namePrefix: options.namePrefix,
    });
  }

  /** Starts everything; resolves with the page URL once the agent serves at least one container. */
  async start(): Promise<{ url: string; devices: string[] }> {
    if (!existsSync(path.join(DEFAULT_WEB_ROOT, 'index.html'))) {
      throw new Error('the page is not built: run `npm run build` (or `npm start`) first');
    }
    try {
      await this.#docker.ping();
    } catch {
      throw new Error('no Docker engine answers: run `bash scripts/docker-up.sh` (or `npm start`) first');
    }
    await this.#containers.ensure();
    const url = await this.#startCloud();
    this.#startAgent(url);
    const devices = await this.#waitForDevices();
    return { url: `${url}/`, devices };
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
      '--containers',
      'vplc-*',
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

  async #waitForDevices(): Promise<string[]> {
    const deadline = Date.now() + AGENT_READY_TIMEOUT_MS;
    let exited = false;
    void this.#agentExit?.then(() => (exited = true));
    for (;;) {
      if (exited) throw new Error('the agent exited before serving any container (see its log above)');
      const devices = await this.#cloud!.listDevices();
      if (devices.length > 0) return devices.map((d) => d.name);
      if (Date.now() > deadline) throw new Error('the agent did not register any container within 60 s');
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async #stopAgent(): Promise<void> {
    const agent = this.#agent;
    if (!agent || agent.exitCode !== null || agent.signalCode !== null) return;
    agent.kill('SIGTERM');
    const timer = setTimeout(() => agent.kill('SIGKILL'), AGENT_STOP_TIMEOUT_MS);
    await this.#agentExit;
    clearTimeout(timer);
  }
}
