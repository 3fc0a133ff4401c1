/**
 * Shells tagged with their session and their agent run. Every exec the agent starts carries
 * `TERMGATE_SESSION`, `TERMGATE_AGENT` and `TERMGATE_AGENT_INSTANCE` in its environment, which the host
 * reads in /proc/<pid>/environ (children inherit it). That finds a shell when the engine cannot say where
 * it is (a hung engine, a start that timed out), and at start-up finds the shells an earlier run of the
 * same agent left behind when it crashed.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { identify, type ProcessIdentity } from './process-tree.js';

export const TAG_SESSION = 'TERMGATE_SESSION';
export const TAG_AGENT = 'TERMGATE_AGENT';
export const TAG_INSTANCE = 'TERMGATE_AGENT_INSTANCE';

/** This process's run: PID and start time, unique on the host while it lives and after. */
export function agentInstance(): string {
  const self = identify(process.pid);
  return `${process.pid}.${self?.startTime ?? '0'}`;
}

/** The tags for one session's execs. */
export function execTags(sessionId: string, agentId: string, instance: string): string[] {
  return [`${TAG_SESSION}=${sessionId}`, `${TAG_AGENT}=${agentId}`, `${TAG_INSTANCE}=${instance}`];
}

function environ(pid: number): Map<string, string> | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return undefined;
  }
  if (!text.includes('TERMGATE_')) return undefined;
  const vars = new Map<string, string>();
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0 && entry.startsWith('TERMGATE_')) vars.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return vars;
}

function pidNamespace(pid: number | 'self'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/**
 * The `cgroup.procs` file that lists every process of the container `pid` runs in (cgroup v2, or the
 * v1 `pids` hierarchy), if this host shows it; read while `pid` is alive. Listing a container's
 * processes there costs one read, where scanning /proc costs one per process on the host.
 */
export function containerProcsFile(pid: number): string | undefined {
  let lines: string[];
  try {
    lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const candidates: string[] = [];
  for (const line of lines) {
    const [hierarchy, controllers, where] = line.split(':');
    if (where === undefined || where === '/') continue;
    if (controllers?.split(',').includes('pids')) candidates.push(`/sys/fs/cgroup/pids${where}`);
    if (hierarchy === '0' && controllers === '') {
      candidates.push(`/sys/fs/cgroup${where}`, `/sys/fs/cgroup/unified${where}`);
    }
  }
  return candidates.map((dir) => `${dir}/cgroup.procs`).find((file) => existsSync(file));
}

/** The PIDs listed in a `cgroup.procs` file; empty once the cgroup is gone. */
export function listProcs(file: string): number[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export interface TaggedProcess {
  identity: ProcessIdentity;
  session: string;
  instance: string;
}

/**
 * Processes in other PID namespaces (containers) tagged by agent `agentId` and matching `filter`.
 * A process in this agent's own namespace is never a shell it started, whatever its environment says.
 */
export function findTagged(
  agentId: string,
  filter: (tags: Map<string, string>) => boolean,
  among: Iterable<number> = allPids(),
): TaggedProcess[] {
  const own = pidNamespace('self');
  const found: TaggedProcess[] = [];
  for (const pid of among) {
    const tags = environ(pid);
    if (!tags || tags.get(TAG_AGENT) !== agentId || !filter(tags)) continue;
    const ns = pidNamespace(pid);
    if (ns === undefined || ns === own) continue;
    const identity = identify(pid);
    if (identity) {
      found.push({ identity, session: tags.get(TAG_SESSION) ?? '', instance: tags.get(TAG_INSTANCE) ?? '' });
    }
  }
  return found;
}

/** True while the agent run named by an instance tag is still alive. */
export function instanceAlive(instance: string): boolean {
  const [pid, startTime] = instance.split('.');
  const current = identify(Number(pid));
  return current !== undefined && current.startTime === startTime;
}

function allPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .map(Number);
  } catch {
    return [];
  }
}
