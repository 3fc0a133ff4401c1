/**
 * Ends the process tree of a docker exec from the host side.
 *
 * Closing a TTY exec's attached stream does not end it (moby#9098): the shell would live on in the
 * container. The engine gives the exec's host PID; its descendants are read from /proc, and the whole
 * tree is ended. The start time read at open guards against killing a recycled PID.
 *
 * Ending is verified, not assumed: the tree is frozen first (SIGSTOP, rescanned until no new process
 * appears, so nothing forks its way out between the scan and the kill), then killed, then watched until
 * every process is gone, killing again what is left. What could not be seen or signalled is reported,
 * so the caller can log and count it.
 *
 * The reads are synchronous on purpose: procfs lives in memory and answers in microseconds, while an
 * async read costs four threadpool round trips (open, fstat, read, close) per file on every session.
 */
import { readdirSync, readFileSync } from 'node:fs';

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

/** Identity of a live host process, or undefined when /proc does not show it (gone, or another PID namespace). */
export function identify(pid: number): ProcessIdentity | undefined {
  const fields = readStat(pid);
  // After comm: state is field 3, so starttime (field 22) is at index 19.
  const startTime = fields?.[19];
  return startTime === undefined ? undefined : { pid, startTime };
}

/** True while the process still exists and is not a zombie waiting to be reaped. */
function alive(identity: ProcessIdentity): boolean {
  const fields = readStat(identity.pid);
  if (!fields || fields[19] !== identity.startTime) return false;
  return fields[0] !== 'Z' && fields[0] !== 'X';
}

/** The kernel's PF_EXITING flag (in /proc/<pid>/stat field 9). */
const PF_EXITING = 0x4;

/**
 * True while the process runs and has not begun its exit. A PID namespace's init that exits stays in
 * /proc, not yet a zombie, while the kernel kills everything else in its namespace: `alive` but exiting.
 */
export function running(identity: ProcessIdentity): boolean {
  const fields = readStat(identity.pid);
  if (!fields || fields[19] !== identity.startTime) return false;
  return fields[0] !== 'Z' && fields[0] !== 'X' && (Number(fields[6]) & PF_EXITING) === 0;
}

/** What `execIdentity` reads from the engine: dockerode's `Exec.inspect()`, structurally. */
export interface InspectableExec {
  inspect(): Promise<{ Running: boolean; Pid: number; ExitCode?: number | null }>;
}

/** Where an exec's process is: visible here, already gone, or running where this process cannot see it. */
export type ExecProcess =
  { kind: 'visible'; identity: ProcessIdentity } | { kind: 'gone' } | { kind: 'invisible'; pid: number };

const PID_POLL_MS = 20;
const PID_POLL_ATTEMPTS = 500;

/**
 * The host process of a docker exec, polled from the engine. Its PID appears after start, which under
 * load can take a while: an exec that is not running and has no exit code has not started yet, and
 * giving up then would leave its shell behind. Only an exit code (or `ended()`) means there is nothing
 * left to kill. A PID the engine reports but /proc does not show means this process is outside the
 * engine's PID namespace and cannot end the shell.
 */
export async function locateExec(
  exec: InspectableExec,
  ended: () => boolean = () => false,
): Promise<ExecProcess> {
  for (let attempt = 0; attempt < PID_POLL_ATTEMPTS && !ended(); attempt++) {
    const info = await exec.inspect().catch(() => undefined);
    if (info?.Running && info.Pid > 0) {
      const identity = identify(info.Pid);
      return identity ? { kind: 'visible', identity } : { kind: 'invisible', pid: info.Pid };
    }
    if (info && !info.Running && info.ExitCode !== null && info.ExitCode !== undefined)
      return { kind: 'gone' };
    await new Promise((resolve) => setTimeout(resolve, PID_POLL_MS));
  }
  return { kind: 'gone' };
}

/** The exec's host process if this process can see it (see `locateExec`). */
export async function execIdentity(
  exec: InspectableExec,
  ended: () => boolean = () => false,
): Promise<ProcessIdentity | undefined> {
  const found = await locateExec(exec, ended);
  return found.kind === 'visible' ? found.identity : undefined;
}

/** Children of every thread of `pid` (a child belongs to the thread that forked it). */
function children(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const task of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
      for (const child of text.split(' ')) if (child) found.push(Number(child));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return found;
}

const MAX_TREE = 10_000;

/** The live process and everything below it, each with its start time. */
function tree(root: ProcessIdentity): ProcessIdentity[] {
  if (!alive(root)) return [];
  const found = [root];
  const seen = new Set([root.pid]);
  for (let i = 0; i < found.length && found.length < MAX_TREE; i++) {
    for (const pid of children(found[i]!.pid)) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      const identity = identify(pid);
      if (identity) found.push(identity);
    }
  }
  return found;
}

export interface TreeOutcome {
  /** Processes signalled with SIGKILL. */
  killed: number;
  /** True once no process of the tree is left (zombies awaiting their reaper count as gone). */
  gone: boolean;
  /** Why a signal could not be sent (EPERM: no permission), deduplicated. */
  failures: string[];
}

function signal(identity: ProcessIdentity, sig: NodeJS.Signals, failures: Set<string>): boolean {
  // Re-checked right before the signal: the PID may have been reused since the scan.
  if (!alive(identity)) return false;
  try {
    process.kill(identity.pid, sig);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
    if (code !== 'ESRCH') failures.add(`${sig} to ${identity.pid}: ${code}`);
    return false;
  }
}

const FREEZE_PASSES = 20;
const VERIFY_ATTEMPTS = 40;
const VERIFY_INTERVAL_MS = 25;

/**
 * Freezes, kills and verifies the end of the process tree under `root`. Resolves once it is gone or
 * after about one second of trying; `gone: false` then says what is left is beyond this process's reach.
 */
export async function endTree(root: ProcessIdentity): Promise<TreeOutcome> {
  const failures = new Set<string>();
  const frozen = new Map<number, ProcessIdentity>();
  // Freeze until a scan finds nothing new: a stopped process cannot fork, so the set is then complete.
  for (let pass = 0; pass < FREEZE_PASSES; pass++) {
    let added = 0;
    for (const p of tree(root)) {
      if (frozen.has(p.pid)) continue;
      frozen.set(p.pid, p);
      signal(p, 'SIGSTOP', failures);
      added++;
    }
    if (added === 0) break;
  }
  let killed = 0;
  for (let attempt = 0; attempt < VERIFY_ATTEMPTS; attempt++) {
    // A stopped process that was forking may leave a child behind: rescan from every member still alive.
    for (const member of [...frozen.values()]) {
      for (const p of tree(member)) if (!frozen.has(p.pid)) frozen.set(p.pid, p);
    }
    const left = [...frozen.values()].filter(alive);
    if (left.length === 0) return { killed, gone: true, failures: [...failures] };
    for (const p of left) if (signal(p, 'SIGKILL', failures)) killed++;
    await new Promise((resolve) => setTimeout(resolve, VERIFY_INTERVAL_MS));
  }
  const gone = [...frozen.values()].every((p) => !alive(p));
  return { killed, gone, failures: [...failures] };
}

/** Kills the process and everything below it at once, unverified. Returns how many were signalled. */
export function killTree(identity: ProcessIdentity): number {
  let killed = 0;
  for (const p of tree(identity)) if (signal(p, 'SIGKILL', new Set())) killed++;
  return killed;
}
