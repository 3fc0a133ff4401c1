/**
 * A Docker engine of a test's own: its own socket, data and exec roots in a fresh directory, the local
 * vPLC image loaded from the shared engine. The test acts on it only by the PID it recorded when it
 * started it (stop, SIGSTOP, SIGCONT), so the shared engine the other tests use is never touched.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TEST_IMAGE, testContainerRunArgs } from './containers.js';

const run = promisify(execFile);

export class PrivateEngine {
  readonly dir: string;
  readonly socket: string;
  readonly #child: ChildProcess;
  readonly containers: string[] = [];

  private constructor(dir: string) {
    this.dir = dir;
    this.socket = path.join(dir, 'docker.sock');
    this.#child = spawn(
      'dockerd',
      [
        '--host',
        `unix://${this.socket}`,
        '--data-root',
        path.join(dir, 'data'),
        '--exec-root',
        path.join(dir, 'exec'),
        '--pidfile',
        path.join(dir, 'dockerd.pid'),
        '--bridge=none',
        '--iptables=false',
        '--ip-forward=false',
      ],
      { stdio: 'ignore' },
    );
  }

  /** The engine's PID, recorded when this test started it. */
  get pid(): number {
    return this.#child.pid!;
  }

  static async start(): Promise<PrivateEngine> {
    const engine = new PrivateEngine(mkdtempSync(path.join(os.tmpdir(), 'tg-engine-')));
    const deadline = Date.now() + 60_000;
    while (
      !(await engine.docker('info').then(
        () => true,
        () => false,
      ))
    ) {
      if (Date.now() > deadline || engine.#child.exitCode !== null)
        throw new Error('the private engine did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
    await run('sh', ['-c', `docker save ${TEST_IMAGE} | docker -H unix://${engine.socket} load -q`]);
    return engine;
  }

  async docker(...args: string[]): Promise<string> {
    const { stdout } = await run('docker', ['-H', `unix://${this.socket}`, ...args], { timeout: 30_000 });
    return stdout.trim();
  }

  /** Starts a container the way the shared tests do, in this engine. */
  async runContainer(name: string): Promise<void> {
    await this.docker(...testContainerRunArgs(name));
    this.containers.push(name);
  }

  /** Freezes the engine (SIGSTOP): its socket accepts connections and answers nothing. */
  freeze(): void {
    process.kill(this.pid, 'SIGSTOP');
  }

  thaw(): void {
    process.kill(this.pid, 'SIGCONT');
  }

  /** Command lines in a container other than its init and its sleep. */
  async shellsIn(name: string): Promise<string[]> {
    const out = await this.docker('top', name, '-o', 'pid,args');
    return out
      .split('\n')
      .slice(1)
      .map((l) => l.trim().replace(/^\d+\s+/, ''))
      .filter((cmd) => cmd && !cmd.includes('docker-init') && cmd !== '/bin/sleep 1000000');
  }

  /** Removes its containers, stops the engine (by its PID) and deletes its directory. */
  async destroy(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.thaw();
      if (this.containers.length > 0)
        await this.docker('rm', '-f', ...this.containers).catch(() => undefined);
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 30_000);
      await once(this.#child, 'exit');
      clearTimeout(timer);
    }
    // Container mounts under the data root are gone with the engine; what is left is plain files.
    rmSync(this.dir, { recursive: true, force: true });
  }
}
