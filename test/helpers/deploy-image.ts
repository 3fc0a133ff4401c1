/**
 * The deploy tests' image: built from this repository's Dockerfile with the local engine, FROM a base made
 * of this machine's own node (no base image can be pulled here), and everything it creates labelled with
 * the test process's run id so that only that is removed. Also reads the README's `docker run` line, so
 * the tests run the agent exactly as the README tells operators to.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { docker, RUN_ID, RUN_LABEL } from './containers.js';
import { untilProgress } from './progress.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** An image build prints something (a step, an npm fetch) at least this often, even on a busy machine. */
const BUILD_STALL_MS = 300_000;

/** Runs a command, failing if its output stands still for `stallMs`; resolves with its output. */
export async function runWithProgress(
  command: string,
  args: string[],
  what: string,
  stallMs = BUILD_STALL_MS,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const child = spawn(command, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exit: number | string | undefined;
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  child.on('exit', (code, signal) => (exit = code ?? signal ?? 'unknown'));
  try {
    await untilProgress({
      what,
      stallMs,
      pollMs: 500,
      progress: () => output.length,
      done: () => exit !== undefined,
      detail: () => `last output:\n${output.slice(-2000)}`,
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  if (exit !== 0) throw new Error(`${what} failed (${exit}):\n${output.slice(-4000)}`);
  return output;
}

export interface BuiltImage {
  tag: string;
  base: string;
  buildSeconds: number;
}

/**
 * Builds the local base and then the image, both labelled with this process's run id (images built FROM
 * the base inherit its labels, the build stage's too, so one label finds them all).
 */
export async function buildImage(): Promise<BuiltImage> {
  const label = `${RUN_LABEL}=${RUN_ID}`;
  const base = `termgate-base-test:${RUN_ID}`;
  const tag = `termgate-test:${RUN_ID}`;
  await runWithProgress(
    'bash',
    ['scripts/local-base-image.sh', base, '--label', label, '--label', 'io.termgate.owner=test'],
    'the local base image',
  );
  const started = performance.now();
  await runWithProgress(
    'docker',
    [
      'build',
      '--network',
      'host',
      '--build-arg',
      `BASE_IMAGE=${base}`,
      // npm names each package it fetches: the build's progress, line by line.
      '--build-arg',
      'NPM_LOGLEVEL=http',
      '--label',
      label,
      '-t',
      tag,
      '.',
    ],
    'docker build',
    BUILD_STALL_MS,
    // The legacy builder is the one this engine has; it says so on every build.
    { ...process.env, DOCKER_BUILDKIT: '0' },
  );
  return { tag, base, buildSeconds: (performance.now() - started) / 1000 };
}

/**
 * Removes every image this process built (the base, the build stage, the image): found by the run label.
 * An image with children cannot go first, so each round removes what it can until none is left.
 */
export async function removeImages(): Promise<void> {
  const list = async () =>
    (await docker('images', '-a', '-q', '--no-trunc', '--filter', `label=${RUN_LABEL}=${RUN_ID}`))
      .split('\n')
      .filter(Boolean);
  let ids = await list();
  while (ids.length > 0) {
    for (const id of new Set(ids)) await docker('rmi', '-f', id).catch(() => undefined);
    const left = await list();
    if (left.length >= ids.length) throw new Error(`images left behind: ${left.join(', ')}`);
    ids = left;
  }
}

/**
 * The README's `docker run` line as arguments (after `docker run`), with what differs on a test machine
 * put in: the host paths of /etc/termgate, the container's name and the image.
 */
export function documentedRunArgs(paths: { etc: string; name: string; image: string }): string[] {
  const readme = readFileSync(`${REPO}README.md`, 'utf8');
  const block = /```sh\n(docker run -d --name termgate-agent[^`]*)```/.exec(readme)?.[1];
  if (!block) throw new Error('the README has no `docker run -d --name termgate-agent` block');
  const words = block.replace(/\\\n/g, ' ').trim().split(/\s+/).slice(2);
  return words.map((w) =>
    w
      .replace(/^termgate-agent$/, paths.name)
      .replace(/^termgate:[\w.-]+$/, paths.image)
      .replaceAll('/etc/termgate/', `${paths.etc}/`),
  );
}

/** A TCP port free on 127.0.0.1 right now (for an agent on the host network to listen on). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
