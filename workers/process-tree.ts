/**
 * Ends the process tree of a docker exec from the host side.
 *
 * Closing a TTY exec's attached stream does not end it (moby#9098): the shell would live on in the
 * container. The engine gives the exec's host PID; its descendants are read from /proc, and the whole
 * tree is killed. The start time read at open guards against killing a recycled PID.
 *
 * The reads are synchronous on purpose: procfs lives in memory and answers in microseconds, while an
 * async read costs four threadpool round trips (open, fstat, read, close) per file on every session.
 */
import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  startTime: string;
}

function readStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces and parentheses: split after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Identity of a live host process, or undefined when /proc does not show it (another PID namespace). */
export function identify(pid: number): ProcessIdentity | undefined {
  const fields = readStat(pid);
  // After comm: state is field 3, so starttime (field 22) is at index 19.
  const startTime = fields?.[19];
  return startTime === undefined ? undefined : { pid, startTime };
}

/** What `execIdentity` reads from the engine: dockerode's `Exec.inspect()`, structurally. */
export interface InspectableExec {
  inspect(): Promise<{ Running: boolean; Pid: number; ExitCode?: number | null }>;
}

const PID_POLL_MS = 20;
const PID_POLL_ATTEMPTS = 500;

/**
 * The host process of a docker exec, polled from the engine. Its PID appears after start, which under
 * load can take a while: an exec that is not running and has no exit code has not started yet, and
 * giving up then would leave its shell behind. Only an exit code (or `ended()`) means there is nothing
 * left to kill.
 */
export async function execIdentity(
  exec: InspectableExec,
  ended: () => boolean = () => false,
): Promise<ProcessIdentity | undefined> {
  for (let attempt = 0; attempt < PID_POLL_ATTEMPTS && !ended(); attempt++) {
    const info = await exec.inspect().catch(() => undefined);
    if (info?.Running && info.Pid > 0) return identify(info.Pid);
    if (info && !info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return undefined;
    await new Promise((resolve) => setTimeout(resolve, PID_POLL_MS));
  }
  return undefined;
}

function children(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return text.split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function descendants(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && found.length < 10_000) {
    const next = children(queue.shift()!);
    found.push(...next);
    queue.push(...next);
  }
  return found;
}

/** Kills the process and everything below it. Returns how many processes were signalled. */
export function killTree(identity: ProcessIdentity): number {
  const current = identify(identity.pid);
  if (!current || current.startTime !== identity.startTime) return 0; // already gone, or PID reused
  const pids = [identity.pid, ...descendants(identity.pid)];
  let killed = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // Exited between the scan and the signal.
    }
  }
  return killed;
}
