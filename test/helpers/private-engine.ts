/**
 * A Docker engine of a test's own: its own socket, data and exec roots in a fresh directory, the local
 * vPLC image loaded from the shared engine. The test acts on it only by the PID it recorded when it
 * started it (stop, SIGSTOP, SIGCONT), so the shared engine the other tests use is never touched.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { shellsInTop, TEST_IMAGE, testContainerRunArgs } from './containers.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long a stopped engine's threads may take to reach the stopped state (measured: 3 ms at most). */
const FREEZE_DEADLINE_MS = 5_000;

export class PrivateEngine {
  readonly dir: string;
  readonly socket: string;
  readonly containers: string[] = [];
  #child: ChildProcess | undefined;

  private constructor(dir: string) {
    this.dir = dir;
    this.socket = path.join(dir, 'docker.sock');
  }

  /** The running engine's PID, recorded when this test started it. */
  get pid(): number {
    const pid = this.#child?.pid;
    if (pid === undefined || !this.#running()) throw new Error('the private engine is not running');
    return pid;
  }

  static async start(): Promise<PrivateEngine> {
    const engine = new PrivateEngine(mkdtempSync(path.join(os.tmpdir(), 'tg-engine-')));
    await engine.start();
    await run('sh', ['-c', `docker save ${TEST_IMAGE} | docker -H unix://${engine.socket} load -q`]);
    return engine;
  }

  /** Starts the engine (again, after `stop()`) and waits until it answers. */
  async start(): Promise<void> {
    const child = spawn(
      'dockerd',
      [
        '--host',
        `unix://${this.socket}`,
        '--data-root',
        path.join(this.dir, 'data'),
        '--exec-root',
        path.join(this.dir, 'exec'),
        '--pidfile',
        path.join(this.dir, 'dockerd.pid'),
        '--bridge=none',
        '--iptables=false',
        '--ip-forward=false',
      ],
      // A session of its own: a stopped process in the test's process group would be sent SIGCONT by the
      // kernel when that group becomes orphaned (POSIX job control), thawing a frozen engine.
      { stdio: 'ignore', detached: true },
    );
    this.#child = child;
    const deadline = Date.now() + 60_000;
    while (!(await this.#answers())) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error('the private engine did not start');
      await sleep(200);
    }
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

  /**
   * Freezes the engine (SIGSTOP): its socket accepts connections and answers nothing. Returns once every
   * thread is stopped: `kill()` returns before they are, and a running thread answered a request sent
   * right after it in 10 of 200 tries here.
   */
  async freeze(): Promise<void> {
    const pid = this.pid;
    process.kill(pid, 'SIGSTOP');
    const deadline = Date.now() + FREEZE_DEADLINE_MS;
    while (!allThreadsStopped(pid)) {
      if (Date.now() > deadline) throw new Error(`the private engine (PID ${pid}) did not stop`);
      await sleep(1);
    }
  }

  thaw(): void {
    process.kill(this.pid, 'SIGCONT');
  }

  /** Command lines in a container other than its init and its sleep. */
  async shellsIn(name: string): Promise<string[]> {
    return shellsInTop(await this.docker('top', name, '-o', 'pid,args'));
  }

  /** Waits until no shell is left in any of the containers `names`. */
  async waitForNoShells(names: string[], timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = (await Promise.all(names.map((name) => this.shellsIn(name)))).flat();
      if (left.length === 0) return;
      if (Date.now() > deadline) throw new Error(`shells left behind:\n${left.join('\n')}`);
      await sleep(100);
    }
  }

  /** Stops the engine (its containers stop with it) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || !this.#running()) return;
    process.kill(child.pid!, 'SIGCONT'); // a frozen engine cannot act on SIGTERM
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await once(child, 'exit');
    clearTimeout(timer);
  }

  /** Removes its containers, stops the engine (by its PID) and deletes its directory. */
  async destroy(): Promise<void> {
    if (this.#running()) {
      this.thaw();
      if (this.containers.length > 0)
        await this.docker('rm', '-f', ...this.containers).catch(() => undefined);
      await this.stop();
    }
    // Container mounts under the data root are gone with the engine; what is left is plain files.
    rmSync(this.dir, { recursive: true, force: true });
  }

  #running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  #answers(): Promise<boolean> {
    return this.docker('info').then(
      () => true,
      () => false,
    );
  }
}

/** True when every thread of `pid` is in the stopped state (`T` in /proc/<pid>/task/<tid>/stat). */
function allThreadsStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // The state follows the command name, which is in parentheses and may itself hold any character.
      return stat[stat.lastIndexOf(')') + 2] === 'T';
    } catch {
      return true; // the thread ended meanwhile
    }
  });
}
