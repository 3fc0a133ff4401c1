/**
 * Why a shell's exec stream ended: the shell exited, or its container stopped (or restarted) under it.
 * Asked once, when the stream ends. The engine's record says so when the container is not running, or
 * started or finished since the shell was opened (a `docker restart` may be over by the time we ask);
 * the container's first process, read in /proc, says so when the engine's record lags behind: the shells
 * of a stopping container are killed while its init is still exiting, before the engine hears of it.
 */
import type Docker from 'dockerode';
import { withDockerTimeout } from '../common/docker-timeout.js';
import { identify, running } from '../common/process-tree.js';

/** The reasons of a `pty_disconnected` that the PTY itself gives (beside `replaced`). */
export type PtyExitReason = 'shell-exited' | 'container-stopped';

/** What `wentDown` reads of a container's inspect (`State`). */
export type ContainerState = Pick<
  Docker.ContainerInspectInfo['State'],
  'Running' | 'Restarting' | 'StartedAt' | 'FinishedAt' | 'Pid'
>;

/** Asks the engine why the shell opened at `openedAtMs` in `containerId` ended. */
export async function exitReason(
  docker: Docker,
  containerId: string,
  openedAtMs: number,
  timeoutMs: number,
): Promise<PtyExitReason> {
  let state: ContainerState;
  try {
    const info = await withDockerTimeout(timeoutMs, 'inspecting the container', (abortSignal) =>
      docker.getContainer(containerId).inspect({ abortSignal }),
    );
    state = info.State;
  } catch (err) {
    // Removed: its shells went with it. An engine that does not answer says nothing either way.
    return (err as { statusCode?: number }).statusCode === 404 ? 'container-stopped' : 'shell-exited';
  }
  return wentDown(state, openedAtMs) ? 'container-stopped' : 'shell-exited';
}

/** True if the container is down now or has been down since `sinceMs` (host clock, as the engine's). */
export function wentDown(state: ContainerState, sinceMs: number): boolean {
  if (!state.Running || state.Restarting) return true;
  if (Date.parse(state.StartedAt) > sinceMs || Date.parse(state.FinishedAt) > sinceMs) return true;
  // The engine learns of the stop after the kernel has begun it: its shells may die before its init.
  const init = state.Pid > 0 ? identify(state.Pid) : undefined;
  return init === undefined || !running(init);
}
