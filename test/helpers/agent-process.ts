/**
 * The agent as users run it: the built executable in a child process, with its logs kept for
 * assertions (and printed when a test fails).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export class AgentProcess {
  readonly child: ChildProcess;
  #log = '';
  readonly #closed: Promise<void>;

  private constructor(args: string[], env: NodeJS.ProcessEnv, unset: string[], ipc: boolean) {
    // As bin/termgate starts it (glibc arenas; README), unless a test sets it.
    const childEnv: NodeJS.ProcessEnv = { MALLOC_ARENA_MAX: '2', ...process.env, ...env };
    for (const name of unset) delete childEnv[name];
    this.child = spawn(process.execPath, [CLI, 'agent', ...args], {
      env: childEnv,
      stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.#log += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.#log += d.toString()));
    this.#closed = once(this.child, 'close').then(() => undefined);
  }

  /**
   * Starts `termgate agent` against the cloud at `cloudUrl`, loopback-only ICE, metrics off unless
   * `extraArgs` say otherwise. With `{ metrics: 'default' }` neither the flag nor its environment
   * variable is given: the agent serves metrics where it does by default. With `{ ipc: true }` the agent
   * gets an IPC channel (what the test-only fault injection takes requests on).
   */
  static start(
    cloudUrl: string,
    extraArgs: string[] = [],
    env: NodeJS.ProcessEnv = {},
    options: { metrics?: 'off' | 'default'; ipc?: boolean } = {},
  ): AgentProcess {
    const metrics = options.metrics === 'default' ? [] : ['--metrics-listen', 'off'];
    // Tests that do not speak of resume end a session by closing their peer (BrowserPeer.close), as they
    // did before resume existed; with a grace that would be a drop. Resume tests give their own.
    const resume = extraArgs.includes('--resume-grace') ? [] : ['--resume-grace', '0'];
    const args = [
      '--cloud-url',
      cloudUrl,
      '--bind-address',
      '127.0.0.1',
      ...metrics,
      ...resume,
      ...extraArgs,
    ];
    const unset = options.metrics === 'default' ? ['TERMGATE_METRICS_LISTEN'] : [];
    return new AgentProcess(args, env, unset, options.ipc ?? false);
  }

  /** Sends `message` on the IPC channel and resolves with the agent's next message (its reply). */
  async request(message: Record<string, unknown>, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const reply = once(this.child, 'message', { signal: AbortSignal.timeout(timeoutMs) });
    this.child.send(message);
    const [answer] = (await reply) as [Record<string, unknown>];
    return answer;
  }

  get log(): string {
    return this.#log;
  }

  /** Parsed JSON log lines. */
  logLines(): Array<Record<string, unknown>> {
    return this.#log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Sends a signal and waits for the exit code (or the signal that ended it). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<number | string> {
    if (!this.exited) this.child.kill(signal);
    return this.waitForExit(timeoutMs);
  }

  /** Waits for the exit (SIGKILL after `timeoutMs`) and for the last of its log to be read. */
  async waitForExit(timeoutMs = 15_000): Promise<number | string> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    if (!this.exited) await once(this.child, 'exit');
    clearTimeout(timer);
    // 'exit' can come before the last log lines are read; a process that handed its pipes on may
    // never close them, hence the bound.
    await Promise.race([this.#closed, new Promise((r) => setTimeout(r, 2_000).unref())]);
    return this.child.exitCode ?? this.child.signalCode ?? 'unknown';
  }
}
