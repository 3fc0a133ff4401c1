/** How a session opens its shells: a PtyBridge with the session's shell, limits and process tags. */
import type Docker from 'dockerode';
import { ErrorCodes, TermgateError } from '../common/errors.js';
import type { PtyTarget, SessionTask } from '../common/protocol/worker-messages.js';
import { PtyBridge } from './PtyBridge.js';
import type { Size } from './ResizeQueue.js';

/**
 * Waits before each new try of an exec the engine refused as "not running" (about 3 s in all). The main
 * thread has just seen the container running, so this is a container (re)starting: right after
 * `docker restart` the engine may say running before an exec into it works.
 */
const NOT_RUNNING_RETRY_MS = [100, 200, 400, 800, 1600];

export function shellOpener(
  docker: Docker,
  task: SessionTask,
): (target: PtyTarget, size: Size) => Promise<PtyBridge> {
  const { settings } = task;
  const open = (target: PtyTarget, size: Size) =>
    PtyBridge.open(docker, {
      ...target,
      ...size,
      shell: settings.shell,
      maxPendingInputBytes: settings.maxPendingInputBytes,
      dockerTimeoutMs: settings.dockerTimeoutMs,
      tags: task.shellTags,
      flushOnInterrupt: settings.flushOnInterrupt,
    });
  return (target, size) => whileStarting(() => open(target, size));
}

/** Tries `open` again, after the next of a few growing waits, while it fails with "not running". */
export async function whileStarting<T>(
  open: () => Promise<T>,
  waitsMs: readonly number[] = NOT_RUNNING_RETRY_MS,
): Promise<T> {
  for (const waitMs of waitsMs) {
    try {
      return await open();
    } catch (err) {
      if (!(err instanceof TermgateError) || err.code !== ErrorCodes.CONTAINER_NOT_RUNNING) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
  return open();
}
