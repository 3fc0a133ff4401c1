/**
 * Real containers for tests, from the local vPLC stand-in image: no network, an init process that reaps
 * children, a name unique to the test run.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TEST_IMAGE = process.env.TERMGATE_TEST_IMAGE ?? 'vplc-test:latest';

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** A prefix unique to this test file's run, so parallel or leftover containers never collide. */
export function uniquePrefix(name: string): string {
  return `vplc-${name}-${randomBytes(3).toString('hex')}`;
}

export async function startContainers(
  prefix: string,
  count: number,
  labels: string[] = [],
): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(3, '0')}`);
  const labelArgs = labels.flatMap((l) => ['--label', l]);
  await Promise.all(
    names.map((name) =>
      docker(
        'run',
        '-d',
        '--init',
        '--network',
        'none',
        '--name',
        name,
        ...labelArgs,
        TEST_IMAGE,
        '/bin/sleep',
        '1000000',
      ),
    ),
  );
  return names;
}

export async function removeContainers(names: string[]): Promise<void> {
  if (names.length > 0) await docker('rm', '-f', ...names).catch(() => undefined);
}

/** Command lines of the processes in a container, minus its init and its sleep. */
export async function shellsIn(container: string): Promise<string[]> {
  const out = await docker('top', container, '-o', 'pid,args');
  return out
    .split('\n')
    .slice(1)
    .map((line) => line.trim().replace(/^\d+\s+/, ''))
    .filter((cmd) => cmd && !cmd.includes('docker-init') && cmd !== '/bin/sleep 1000000');
}

/** Waits until no shell started by termgate is left in any of the containers. */
export async function waitForNoShells(containers: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = (
      await Promise.all(containers.map(async (c) => (await shellsIn(c)).map((p) => `${c}: ${p}`)))
    ).flat();
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`shells left behind:\n${left.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
