/**
 * How termgate's own scripts prove a container is theirs. On a real host, `vplc-*` containers are the
 * PLCs themselves, so a name proves nothing: every container the demo, the tests or the bench create
 * carries the label `io.termgate.run=<a random id of that run>` (and `io.termgate.owner=demo|test|bench`),
 * and each removes only containers with its own run id, by the ids it recorded at creation.
 *
 * A run that starts others (CI) passes its own id down in `TERMGATE_PARENT_RUN`: their containers carry it
 * too (`io.termgate.parent-run`), so the parent can remove what a child left behind when it was killed.
 */
import { randomBytes } from 'node:crypto';

/** Label carrying the random id of the run that created the container. */
export const RUN_LABEL = 'io.termgate.run';
/** Label carrying the id of the run that started the creating run (CI), when there is one. */
export const PARENT_RUN_LABEL = 'io.termgate.parent-run';
/** Label saying which kind of run created it. */
export const OWNER_LABEL = 'io.termgate.owner';

export type Owner = 'demo' | 'test' | 'bench';

/** A new run id: 12 hex characters. */
export function newRunId(): string {
  return randomBytes(6).toString('hex');
}

/** The labels of a container created by run `runId` of kind `owner`. */
export function ownershipLabels(runId: string, owner: Owner): Record<string, string> {
  const parent = process.env.TERMGATE_PARENT_RUN;
  return { [RUN_LABEL]: runId, [OWNER_LABEL]: owner, ...(parent && { [PARENT_RUN_LABEL]: parent }) };
}

/** `--label k=v` flags for the docker CLI. */
export function ownershipLabelArgs(runId: string, owner: Owner): string[] {
  return Object.entries(ownershipLabels(runId, owner)).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
}

/**
 * `docker run` arguments for a container owned by run `runId`: detached, no network, a tiny init that
 * reaps the shells' children, and a process that only sleeps, so the container is just a place to exec.
 */
export function ownedSleeperRunArgs(
  name: string,
  image: string,
  runId: string,
  owner: Owner,
  extra: string[] = [],
): string[] {
  return [
    'run',
    '-d',
    '--init',
    '--network',
    'none',
    '--name',
    name,
    ...ownershipLabelArgs(runId, owner),
    ...extra,
    image,
    '/bin/sleep',
    '1000000',
  ];
}
