/**
 * The real stack for browser tests: a Docker container from the local vPLC image, the cloud stand-in
 * in this process, and the real agent executable as a child process, all on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';
import { CloudServer, type CloudServerOptions } from '../../standin/cloud/CloudServer.js';
import { runLabels } from './containers.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
export const TEST_IMAGE = process.env.TERMGATE_TEST_IMAGE ?? 'vplc-test:latest';

export interface BrowserStack {
  docker: Dockerode;
  cloud: CloudServer;
  url: string;
  container: string;
  agent: ChildProcess;
  /** Process command lines in the container (`docker top`). */
  processes(): Promise<string[]>;
  /** Restarts the stack's own container (stop with a 1 s grace, then start), or stops or starts it. */
  lifecycle(action: 'restart' | 'stop' | 'start'): Promise<void>;
  close(): Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
    }),
  ]);
}

export interface BrowserStackOptions {
  /** The agent's `--bind-address`, so its only ICE candidates. Default 127.0.0.1. */
  bindAddress?: string;
  /**
   * More agent flags (they win over the defaults above them: commander keeps the last); without
   * `--resume-grace`, the agent runs with resume off (`--resume-grace 0`).
   */
  agentArgs?: string[];
  /** More agent environment (TERMGATE_ICE_SERVERS, a secret's file…). */
  agentEnv?: Record<string, string>;
  /** More stand-in options (the page's ICE servers, the agents' per-session ones). */
  cloud?: Partial<CloudServerOptions>;
}

export async function startBrowserStack(options: BrowserStackOptions = {}): Promise<BrowserStack> {
  const agentArgs = options.agentArgs ?? [];
  const resume = agentArgs.includes('--resume-grace') ? [] : ['--resume-grace', '0'];
  const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
  const container = `vplc-e2e-${randomBytes(4).toString('hex')}`;
  const handle = await docker.createContainer({
    name: container,
    Image: TEST_IMAGE,
    Cmd: ['/bin/sleep', '1000000'],
    Labels: runLabels(),
    HostConfig: { Init: true, NetworkMode: 'none' },
  });
  await handle.start();

  const token = randomBytes(16).toString('hex');
  const cloud = new CloudServer({ agentToken: token, port: 0, devicesTimeoutMs: 2000, ...options.cloud });
  const url = await cloud.listen();
  const agent = spawn(
    process.execPath,
    [
      CLI,
      'agent',
      '--cloud-url',
      url,
      '--agent-id',
      'e2e-agent',
      '--containers',
      container,
      '--bind-address',
      options.bindAddress ?? '127.0.0.1',
      '--workers',
      '2',
      '--metrics-listen',
      'off',
      '--log-level',
      process.env.TERMGATE_E2E_LOG_LEVEL ?? 'warn',
      ...resume,
      ...agentArgs,
    ],
    {
      env: { ...process.env, TERMGATE_TOKEN: token, ...options.agentEnv },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));

  let closing: Promise<void> | undefined;
  const stack: BrowserStack = {
    docker,
    cloud,
    url,
    container,
    agent,
    async processes() {
      const top = (await handle.top()) as { Titles: string[]; Processes: string[][] };
      const cmd = top.Titles.indexOf('CMD');
      return top.Processes.map((p) => p[cmd] ?? '');
    },
    async lifecycle(action) {
      // Through the handle of the container this stack created: never another by its name.
      if (action === 'start') await handle.start();
      else await handle[action]({ t: 1 });
    },
    close: () =>
      (closing ??= (async () => {
        if (agent.exitCode === null && agent.signalCode === null) {
          agent.kill('SIGTERM');
          const kill = setTimeout(() => agent.kill('SIGKILL'), 10_000);
          await withTimeout(exited, 15_000, 'agent exit');
          clearTimeout(kill);
        }
        await withTimeout(cloud.close(), 5_000, 'cloud.close()');
        await withTimeout(handle.remove({ force: true }), 15_000, 'container removal');
      })()),
  };

  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (agent.exitCode !== null) throw new Error(`agent exited with ${agent.exitCode}`);
      const devices = await cloud.listDevices();
      if (devices.some((d) => d.name === container)) break;
      if (Date.now() > deadline) throw new Error('agent did not register the e2e container within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stack.close();
    throw err;
  }
  return stack;
}
