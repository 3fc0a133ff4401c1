/** How a session opens its shells: a PtyBridge with the session's shell, limits and process tags. */
import type Docker from 'dockerode';
import type { PtyTarget, SessionTask } from '../common/protocol/worker-messages.js';
import { PtyBridge } from './PtyBridge.js';
import type { Size } from './ResizeQueue.js';

export function shellOpener(
  docker: Docker,
  task: SessionTask,
): (target: PtyTarget, size: Size) => Promise<PtyBridge> {
  const { settings } = task;
  return (target, size) =>
    PtyBridge.open(docker, {
      ...target,
      ...size,
      shell: settings.shell,
      maxPendingInputBytes: settings.maxPendingInputBytes,
      dockerTimeoutMs: settings.dockerTimeoutMs,
      tags: task.shellTags,
    });
}
