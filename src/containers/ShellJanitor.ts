/**
 * Makes sure the agent can end the shells it starts, and ends those an earlier run left behind.
 *
 * Ending a shell means signalling its processes from the host (closing the exec stream does not end it,
 * moby#9098), which only works if the agent sees the containers' processes in /proc and may signal them:
 * it must share the engine's PID namespace (`--pid=host` when the agent itself runs in a container), with
 * the right to signal (root). That is checked once against a running container, at start-up if one runs,
 * else before the first session's shell; without it the agent refuses to start (or that session), since
 * every shell would outlive its session.
 *
 * A crashed agent leaves every shell of its run behind. Each shell carries the agent's id and run in its
 * environment (common/process-tags.ts); at start-up the shells of this agent id whose run is no longer
 * alive are ended.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { ErrorCodes, TermgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { findTagged, instanceAlive } from '../../common/process-tags.js';
import { endTree, identify } from '../../common/process-tree.js';
import type { ContainerAccess } from './ContainerAccess.js';

export interface ShellJanitorOptions {
  access: ContainerAccess;
  agentId: string;
  /** This run's instance tag (common/process-tags.ts `agentInstance()`). */
  instance: string;
  logger: Logger;
}

export interface OrphanReport {
  found: number;
  ended: number;
  failures: string[];
}

const HOW_TO =
  'termgate ends shells by signalling their processes from the host, so it must run in the host PID ' +
  'namespace (docker run --pid=host, or no PID namespace of its own) and as root';

/** Shells of earlier runs found at start-up, by outcome (what `termgate_orphan_shells_total` shows). */
export interface OrphanCounts {
  ended: number;
  /** Found but still there after the attempt to end them. */
  failed: number;
}

export class ShellJanitor {
  readonly #o: ShellJanitorOptions;
  readonly #orphans: OrphanCounts = { ended: 0, failed: 0 };
  #verified = false;
  #verifying: Promise<void> | undefined;

  constructor(options: ShellJanitorOptions) {
    this.#o = options;
  }

  get verified(): boolean {
    return this.#verified;
  }

  /** Orphan shells found so far (at start-up), ended or not. */
  get orphans(): Readonly<OrphanCounts> {
    return this.#orphans;
  }

  /**
   * Start-up check against a running container the agent serves. Resolves false when none runs (the check
   * then happens before the first shell); throws a TermgateError that says what to do when it fails.
   */
  async verifyAtStart(): Promise<boolean> {
    const running = (await this.#o.access.listDevices()).find((d) => d.state === 'running');
    if (!running) return false;
    const { id } = await this.#o.access.authorize(running.name);
    await this.ensure(id);
    return this.#verified;
  }

  /** Verifies (once) with the container `containerId`, before a shell is started in it. */
  ensure(containerId: string): Promise<void> {
    if (this.#verified) return Promise.resolve();
    this.#verifying ??= this.#verify(containerId).finally(() => (this.#verifying = undefined));
    return this.#verifying;
  }

  async #verify(containerId: string): Promise<void> {
    const pid = await this.#o.access.hostPid(containerId);
    if (pid <= 0) return; // stopped meanwhile: the next container will tell
    if (!identify(pid) || !isContainerProcess(pid, containerId)) {
      throw new TermgateError(
        ErrorCodes.SHELL_CLEANUP_FAILED,
        `the agent cannot see the containers' processes (the engine's PID ${pid} is not a container process here): ${HOW_TO}`,
      );
    }
    try {
      process.kill(pid, 0); // permission check only: signal 0 is never delivered
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ESRCH') {
        throw new TermgateError(
          ErrorCodes.SHELL_CLEANUP_FAILED,
          `the agent may not signal the containers' processes (${code}): ${HOW_TO}`,
        );
      }
    }
    this.#verified = true;
    this.#o.logger.info({ pid }, 'container processes are visible: shells can be ended');
  }

  /** Ends the shells of earlier runs of this agent id that are no longer alive (a crash left them). */
  async endOrphans(): Promise<OrphanReport> {
    const { agentId, instance } = this.#o;
    const orphans = findTagged(agentId, (tags) => {
      const run = tags.get('TERMGATE_AGENT_INSTANCE') ?? '';
      return run !== instance && !instanceAlive(run);
    });
    const outcomes = await Promise.all(orphans.map((o) => endTree(o.identity)));
    const report: OrphanReport = {
      found: orphans.length,
      ended: outcomes.filter((o) => o.gone).length,
      failures: [...new Set(outcomes.flatMap((o) => o.failures))],
    };
    this.#orphans.ended += report.ended;
    this.#orphans.failed += report.found - report.ended;
    if (report.found > 0) {
      const runs = [...new Set(orphans.map((o) => o.instance))];
      this.#o.logger.warn({ ...report, runs }, 'ended shells left by an earlier run of this agent');
    }
    return report;
  }
}

/**
 * True if `pid`, as this process sees it, belongs to the container: its cgroup names the container's id,
 * or at least it lives in a PID namespace other than ours (with a private namespace of our own, the PID
 * the engine gave would be absent or one of ours).
 */
function isContainerProcess(pid: number, containerId: string): boolean {
  try {
    if (readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(containerId)) return true;
  } catch {
    return false;
  }
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`) !== readlinkSync('/proc/self/ns/pid');
  } catch {
    return false;
  }
}
