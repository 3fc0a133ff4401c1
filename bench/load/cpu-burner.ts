/**
 * A process that keeps a fixed share of one core busy, to measure a direct exec on a host that has that
 * much less CPU. The bench's simulated browser runs on the agent's host, which a real browser never
 * does; running the direct exec beside a burner at the browser's share shows how much of a session's
 * gap to the direct exec is the bench's topology and how much is the agent.
 *
 * It spins for `share` of every period and sleeps the rest: it competes for the CPU as the browser
 * does, so on a busy host it may get less than asked. The CPU it really took is measured and reported.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { sampleProcess } from '../agent.js';
import { IpcChannel } from '../ipc.js';

const SCRIPT = fileURLToPath(import.meta.url);
/** Short enough that the burner's load looks even to the processes it shares the cores with. */
const PERIOD_MS = 10;
/** A burner that has not said it spins by then failed to start. */
const START_TIMEOUT_MS = 10_000;

export interface BurnResult {
  /** Share of one core the burner really took over its life (CPU seconds per wall second). */
  share: number;
}

export class CpuBurner {
  readonly #child: ChildProcess;
  readonly pid: number;
  readonly #cpu0: number;
  readonly #started = performance.now();
  #result: Promise<BurnResult> | undefined;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.pid = child.pid!;
    this.#cpu0 = sampleProcess(this.pid).cpuSeconds;
  }

  /**
   * Starts a burner at `share` of a core (0 to 1), once its process is up and spinning. Rejects, the
   * process gone, when it exits or stays silent instead: the scenario fails rather than waits.
   */
  static async start(share: number): Promise<CpuBurner> {
    const child = fork(SCRIPT, ['burn', String(Math.min(1, Math.max(0, share)))], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ipc = new IpcChannel(child);
    try {
      await ipc.request('spinning', {}, START_TIMEOUT_MS);
    } catch (err) {
      child.kill();
      throw new Error(`the CPU burner did not start: ${(err as Error).message}`);
    } finally {
      ipc.close();
    }
    return new CpuBurner(child);
  }

  /** Stops it and says what share it took; idempotent. Rejects if it had ended before: nothing to say. */
  close(): Promise<BurnResult> {
    this.#result ??= this.#close();
    return this.#result;
  }

  async #close(): Promise<BurnResult> {
    const { exitCode, signalCode } = this.#child;
    if (exitCode !== null || signalCode !== null) {
      throw new Error(
        `the CPU burner ended on its own (${signalCode ?? `exit ${exitCode}`}): its share is unknown`,
      );
    }
    const cpu = sampleProcess(this.pid).cpuSeconds - this.#cpu0;
    const seconds = (performance.now() - this.#started) / 1000;
    const exited = once(this.#child, 'exit');
    this.#child.kill();
    await exited;
    return { share: seconds > 0 ? cpu / seconds : 0 };
  }
}

function burn(share: number): void {
  if (!(share >= 0 && share <= 1)) throw new RangeError(`a burner's share is 0 to 1, not ${share}`);
  const busyMs = share * PERIOD_MS;
  const tick = () => {
    const until = performance.now() + busyMs;
    while (performance.now() < until);
    setTimeout(tick, PERIOD_MS - busyMs);
  };
  tick();
  new IpcChannel(process).handle('spinning', () => true);
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[1] === SCRIPT && process.argv[2] === 'burn') burn(Number(process.argv[3]));
