/**
 * Real containers for tests, from the local vPLC stand-in image: no network, an init process that reaps
 * children, a name unique to the test run, and the labels that prove they are ours. On a real host other
 * `vplc-*` containers run beside them (the PLCs themselves): this module removes only containers it
 * created in this process, by the id it recorded, and only if they still carry this process's run label.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import {
  newRunId,
  OWNER_LABEL,
  ownedSleeperRunArgs,
  ownershipLabelArgs,
  ownershipLabels,
  RUN_LABEL,
} from '../../standin/ownership.js';

const run = promisify(execFile);

export const TEST_IMAGE = process.env.TERMGATE_TEST_IMAGE ?? 'vplc-test:latest';

export { RUN_LABEL, OWNER_LABEL };

/** This test process's run id: in the `io.termgate.run` label of every container it creates. */
export const RUN_ID = newRunId();

/** The labels of this process's containers, for dockerode's `createContainer({ Labels })`. */
export function runLabels(): Record<string, string> {
  return ownershipLabels(RUN_ID, 'test');
}

/** `--label` flags for a `docker run`/`create` of a container this process owns. */
export function runLabelArgs(): string[] {
  return ownershipLabelArgs(RUN_ID, 'test');
}

/** `docker run` arguments for a test container named `name` that this process owns. */
export function testContainerRunArgs(name: string, extra: string[] = []): string[] {
  return ownedSleeperRunArgs(name, TEST_IMAGE, RUN_ID, 'test', extra);
}

/** Names → ids of the containers this process created and has not removed yet. */
const created = new Map<string, string>();

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** A prefix unique to this test file's run, so parallel or leftover containers never collide. */
export function uniquePrefix(name: string): string {
  return `vplc-${name}-${randomBytes(3).toString('hex')}`;
}

/** Starts `count` labelled containers named `<prefix>-001`…; `runArgs` go to `docker run` (e.g. `--user`). */
export async function startContainers(
  prefix: string,
  count: number,
  labels: string[] = [],
  runArgs: string[] = [],
): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(3, '0')}`);
  const labelArgs = labels.flatMap((l) => ['--label', l]);
  const results = await Promise.allSettled(
    names.map((name) => startContainer(name, [...labelArgs, ...runArgs])),
  );
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await removeContainers(names.filter((n) => created.has(n)));
    throw failed.reason;
  }
  return names;
}

/**
 * Starts one container named `name`, with this run's labels and `runArgs` (more `docker run` options),
 * and records its id: only a container recorded here may be removed by `removeContainers`.
 */
export async function startContainer(name: string, runArgs: string[] = []): Promise<string> {
  const id = await docker(...testContainerRunArgs(name, runArgs));
  created.set(name, id);
  return name;
}

/**
 * Removes containers this process created (by the id recorded at creation), after checking that each
 * still carries this run's label. A name this process did not create is an error, never removed.
 */
export async function removeContainers(names: string[]): Promise<void> {
  const foreign = names.filter((n) => !created.has(n));
  const ids = names.flatMap((n) => {
    const id = created.get(n);
    return id ? [id] : [];
  });
  if (ids.length > 0) {
    const labelled = new Set(
      (await docker('ps', '-aq', '--no-trunc', '--filter', `label=${RUN_LABEL}=${RUN_ID}`)).split('\n'),
    );
    const ours = ids.filter((id) => labelled.has(id));
    if (ours.length > 0) await docker('rm', '-f', ...ours).catch(() => undefined);
    for (const n of names) created.delete(n);
  }
  if (foreign.length > 0) {
    throw new Error(`not removed: ${foreign.join(', ')} were not created by this test process`);
  }
}

/**
 * `docker restart|stop|start` of a container this process created, by the id recorded at creation (a
 * 1 s grace before the kill); a name this process did not create is an error.
 */
export async function cycleContainer(name: string, action: 'restart' | 'stop' | 'start'): Promise<void> {
  const id = created.get(name);
  if (!id) throw new Error(`not ${action}ed: ${name} was not created by this test process`);
  await docker(action, ...(action === 'start' ? [] : ['-t', '1']), id);
}

/** Command lines of the processes in a container, minus its init and its sleep. */
export async function shellsIn(container: string): Promise<string[]> {
  return shellsInTop(await docker('top', container, '-o', 'pid,args'));
}

/** The shells in `docker top CONTAINER -o pid,args` output: every command but the init and the sleep. */
export function shellsInTop(out: string): string[] {
  return out
    .split('\n')
    .slice(1)
    .map((line) => line.trim().replace(/^\d+\s+/, ''))
    .filter((cmd) => cmd && !cmd.includes('docker-init') && cmd !== '/bin/sleep 1000000');
}
