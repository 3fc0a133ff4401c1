/**
 * The container image, as an operator runs it: built from the Dockerfile with this machine's engine, run
 * with the README's `docker run` line (and the compose file) against the cloud stand-in and labelled
 * vPLC containers, one of them with a non-root shell. Sessions open and echo, shells are gone after
 * close, a crashed agent's shells are ended when Docker restarts it, and an upgrade (stop, start the
 * new container) drains every session and serves again within the stated time.
 *
 * The agent container shares the host's network (as documented: ICE offers the host's addresses); here
 * the cloud stand-in listens on 127.0.0.1 only and the agent binds ICE to 127.0.0.1
 * (TERMGATE_BIND_ADDRESS), so every packet stays on loopback. The vPLC containers have no network.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import {
  docker,
  removeContainers,
  RUN_ID,
  runLabelArgs,
  shellsIn,
  startContainers,
  uniquePrefix,
} from './helpers/containers.js';
import {
  buildImage,
  documentedRunArgs,
  freePort,
  REPO,
  removeImages,
  runWithProgress,
  type BuiltImage,
} from './helpers/deploy-image.js';
import { untilNoShells, untilProgress } from './helpers/progress.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

/** What the docs state: SIGTERM drains within the stop timeout, and a new agent is ready within this. */
const STOP_TIMEOUT_S = 45;
const READY_WITHIN_S = 60;
const UPGRADE_SESSIONS = 6;
/** A starting or stopping container shows some change (state, log line) at least this often. */
const STALL_MS = 60_000;

const version = (JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as { version: string }).version;

let image: BuiltImage;
let cloud: TestCloud;
let etc: string;
let metricsPort: number;
const token = randomBytes(24).toString('hex');
const prefix = uniquePrefix('deploy');
/** `<prefix>-001` has a root shell, `<prefix>-u-001` a shell of uid 1000. */
let rootDevice: string;
let userDevice: string;
const devices: string[] = [];
/** Agent containers this process started, by id. */
const agents = new Set<string>();
let agentCount = 0;

// Bounded by the build's progress (helpers/deploy-image.ts), not by a total time.
before(async () => {
  image = await buildImage();
  const [root] = await startContainers(prefix, 1);
  const [user] = await startContainers(`${prefix}-u`, 1, [], ['--user', '1000:1000']);
  rootDevice = root!;
  userDevice = user!;
  devices.push(rootDevice, userDevice);
  cloud = await TestCloud.start();
  cloud.requiredToken = token;
  metricsPort = await freePort();
  etc = mkdtempSync(path.join(os.tmpdir(), 'termgate-etc-'));
  writeFileSync(path.join(etc, 'token'), `${token}\n`, { mode: 0o600 });
  writeFileSync(
    path.join(etc, 'agent.env'),
    [
      `TERMGATE_CLOUD_URL=${cloud.url}`,
      `TERMGATE_CONTAINERS=${prefix}-*`,
      'TERMGATE_BIND_ADDRESS=127.0.0.1',
      'TERMGATE_WORKERS=2',
      // The test's peers end sessions by closing (no resume grace).
      'TERMGATE_RESUME_GRACE=0',
      `TERMGATE_METRICS_LISTEN=127.0.0.1:${metricsPort}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
});

onTeardown(async () => {
  for (const id of agents) await removeAgent(id);
  await cloud?.close();
  await removeContainers(devices);
  await removeImages();
  if (etc) rmSync(etc, { recursive: true, force: true });
});

/** Starts the agent with the README's line; `change` edits the argument list first. */
async function runAgent(change: (args: string[]) => string[] = (a) => a): Promise<string> {
  const name = `termgate-agent-test-${RUN_ID}-${++agentCount}`;
  const args = change(documentedRunArgs({ etc, name, image: image.tag }));
  // This run's labels, and the image's own health check asked every second instead of every 30 s.
  args.splice(args.length - 1, 0, ...runLabelArgs(), '--health-interval', '1s');
  const id = await docker('run', ...args);
  agents.add(id);
  return id;
}

async function removeAgent(id: string): Promise<void> {
  const ours = await docker('ps', '-aq', '--no-trunc', '--filter', `label=io.termgate.run=${RUN_ID}`);
  if (ours.split('\n').includes(id)) await docker('rm', '-f', id).catch(() => undefined);
  agents.delete(id);
}

async function inspect(id: string, format: string): Promise<string> {
  return docker('inspect', '-f', format, id);
}

/** Waits until a container's field (or anything else read) reaches a value; fails when nothing changes. */
async function untilValue(what: string, read: () => Promise<string>, wanted: (v: string) => boolean) {
  let value = '';
  await untilProgress({
    what,
    stallMs: STALL_MS,
    pollMs: 200,
    progress: async () => {
      value = await read().catch((err: Error) => `error: ${err.message}`);
      return value.length + (wanted(value) ? 1e9 : 0);
    },
    done: () => wanted(value),
    detail: () => `last seen: ${value}`,
  });
  return value;
}

/** Milliseconds from now until GET /readyz answers 200 on the agent's metrics port. */
async function untilReady(): Promise<number> {
  const started = performance.now();
  const deadline = started + READY_WITHIN_S * 1000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${metricsPort}/readyz`, { signal: AbortSignal.timeout(2_000) })
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return performance.now() - started;
    assert.ok(performance.now() < deadline, `the new agent was not ready within ${READY_WITHIN_S} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function echo(device: string, expect: string, command: string): Promise<void> {
  const browser = await BrowserPeer.open(cloud, { device });
  try {
    browser.type(`${command}\n`);
    await browser.waitForScreen(expect);
  } finally {
    browser.close();
  }
}

describe('container image', () => {
  it('holds the packed agent and its production dependencies, nothing else', async () => {
    const files = (
      await docker(
        'run',
        '--rm',
        '--network',
        'none',
        '--entrypoint',
        'sh',
        image.tag,
        '-c',
        'cd /opt/termgate && find . -path ./node_modules -prune -o -type f -print',
      )
    ).split('\n');
    assert.ok(files.includes('./dist/src/cli.js') && files.includes('./dist/workers/session-worker.js'));
    assert.ok(files.includes('./web/dist/main.js'), 'the browser page, for `termgate cloud`');
    const stray = files.filter((f) => /\/(test|bench)\/|\.ts$|\.map$/.test(f));
    assert.deepEqual(stray, [], 'no tests, bench, sources or source maps');
    const modules = await docker(
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'sh',
      image.tag,
      '-c',
      'ls /opt/termgate/node_modules /opt/termgate/node_modules/@node-datachannel/*/',
    );
    assert.match(modules, /node_datachannel\.node/, "node-datachannel's prebuilt addon");
    for (const dev of ['typescript', 'esbuild', 'eslint', 'playwright-core', 'fast-check']) {
      assert.doesNotMatch(modules, new RegExp(`^${dev}$`, 'm'), `${dev} is a build-time dependency`);
    }
    assert.equal(await docker('run', '--rm', '--network', 'none', image.tag, '--version'), version);
    const config = JSON.parse(await inspect(image.tag, '{{json .Config}}')) as {
      Healthcheck: { Test: string[] };
      StopSignal: string;
      Entrypoint: string[];
    };
    assert.deepEqual(config.Entrypoint, ['/opt/termgate/bin/termgate']);
    assert.equal(config.StopSignal, 'SIGTERM');
    assert.ok(config.Healthcheck.Test.join(' ').includes('health-probe.js /healthz'));
    const size = Number(await inspect(image.tag, '{{.Size}}'));
    const baseSize = Number(await inspect(image.base, '{{.Size}}'));
    console.log(
      `# image: ${((size - baseSize) / 1e6).toFixed(1)} MB over its base (${(baseSize / 1e6).toFixed(0)} MB), ` +
        `${files.length} files besides node_modules; built in ${image.buildSeconds.toFixed(0)} s`,
    );
  });

  it('refuses to start without --pid host, and says so', async () => {
    const id = await runAgent((args) => {
      const at = args.indexOf('--pid');
      args.splice(at, 2);
      args.splice(args.indexOf('--restart'), 2, '--restart', 'no');
      return args;
    });
    await untilValue(
      'the agent refusing to start',
      () => inspect(id, '{{.State.Status}}'),
      (s) => s === 'exited',
    );
    assert.equal(await inspect(id, '{{.State.ExitCode}}'), '2');
    const { stderr } = await logs(id);
    assert.match(stderr, /--pid=host/);
    await removeAgent(id);
  });

  it("as a non-root user in the Docker socket's group it refuses to start: Docker gives such a user no capabilities", async () => {
    const socketGid = String(statSync('/var/run/docker.sock').gid);
    const id = await runAgent((args) => {
      args.splice(args.indexOf('--restart'), 2, '--restart', 'no', '--user', `1000:${socketGid}`);
      // The root-only token file is not for this user; the check under test comes before the cloud.
      const tokenEnv = args.findIndex((a) => a.startsWith('TERMGATE_TOKEN_FILE='));
      args.splice(tokenEnv - 1, 2);
      return args;
    });
    await untilValue(
      'the non-root agent refusing to start',
      () => inspect(id, '{{.State.Status}}'),
      (s) => s === 'exited',
    );
    assert.equal(await inspect(id, '{{.State.ExitCode}}'), '2');
    const { stderr } = await logs(id);
    // It reached the engine through the socket (the group is enough for that), then found it could not
    // signal the containers' processes: the reason the image runs as root with three capabilities.
    assert.match(stderr, /may not signal the containers' processes \(EPERM\)/);
    await removeAgent(id);
  });

  it("serves sessions with the README's docker run line: echo as root and as uid 1000, shells gone after close", async () => {
    const id = await runAgent();
    await cloud.waitForAgent(60_000);
    assert.equal(cloud.handshakes.at(-1)?.token, token, 'the token from the mounted file');
    await echo(rootDevice, 'hi-42 0', 'echo hi-$((6*7)) $(id -u)');
    await echo(userDevice, 'hi-42 1000', 'echo hi-$((6*7)) $(id -u)');
    await untilNoShells(devices);
    const health = await untilValue(
      'the health check',
      () => inspect(id, '{{.State.Health.Status}}'),
      (s) => s === 'healthy',
    );
    assert.equal(health, 'healthy');
    assert.match(await docker('exec', id, 'termgate-probe', '/readyz'), /200 ready/);
    assert.equal(await inspect(id, '{{.HostConfig.PidMode}}'), 'host');
  });

  it('ends the shells of a crashed agent when Docker restarts it', async () => {
    const [id] = [...agents].slice(-1);
    const browser = await BrowserPeer.open(cloud, { device: userDevice });
    // A shell busy with a command, as an operator's would be: only the agent's janitor can end it.
    browser.type('echo still-$((1+1)); sleep 100000\n');
    await browser.waitForScreen('still-2');
    await untilValue(
      'the shell and its command',
      async () => (await shellsIn(userDevice)).join('\n'),
      (list) => list.split('\n').length === 2 && list.includes('sleep 100000'),
    );
    // A crash, as the kernel's OOM killer would do it: SIGKILL to the agent (this test's container).
    const pid = Number(await inspect(id!, '{{.State.Pid}}'));
    process.kill(pid, 'SIGKILL');
    browser.close();
    await untilValue(
      'the restart',
      () => inspect(id!, '{{.RestartCount}}'),
      (n) => Number(n) >= 1,
    );
    await untilNoShells(devices);
    // The shells end before the agent's line about them reaches `docker logs`: wait for the line too.
    await untilValue(
      "the restarted agent's report of the shells it ended",
      async () => Object.values(await logs(id!)).join(''),
      (log) => /ended shells left by an earlier run of this agent/.test(log),
    );
    await cloud.waitForAgent(60_000);
    await untilReady();
  });

  it(`upgrades in place: ${UPGRADE_SESSIONS} sessions drained, the new container ready within ${READY_WITHIN_S} s`, async () => {
    const [old] = [...agents].slice(-1);
    const browsers = await Promise.all(
      Array.from({ length: UPGRADE_SESSIONS }, (_, i) =>
        BrowserPeer.open(cloud, { device: devices[i % devices.length]! }),
      ),
    );
    try {
      const stopping = performance.now();
      await docker('stop', '-t', String(STOP_TIMEOUT_S), old!);
      const drainMs = performance.now() - stopping;
      assert.equal(await inspect(old!, '{{.State.ExitCode}}'), '0', 'drained, not killed at the timeout');
      for (const b of browsers) {
        assert.deepEqual(await b.waitFor((m) => m.type === 'pty_disconnected', 10_000), {
          type: 'pty_disconnected',
          reason: 'shutdown',
        });
      }
      await untilNoShells(devices);
      await removeAgent(old!);

      const starting = performance.now();
      await runAgent();
      await untilReady();
      const readyMs = performance.now() - starting;
      await echo(rootDevice, 'upgraded-9', 'echo upgraded-$((3*3))');
      assert.ok(drainMs < STOP_TIMEOUT_S * 1000);
      console.log(
        `# upgrade: docker stop drained ${UPGRADE_SESSIONS} sessions in ${(drainMs / 1000).toFixed(1)} s ` +
          `(limit ${STOP_TIMEOUT_S} s); the new container was ready ${(readyMs / 1000).toFixed(1)} s after docker run ` +
          `(limit ${READY_WITHIN_S} s)`,
      );
    } finally {
      for (const b of browsers) b.close();
    }
  });

  it('runs the same agent from deploy/compose.yaml', async () => {
    for (const id of agents) {
      await docker('stop', '-t', String(STOP_TIMEOUT_S), id);
      await removeAgent(id);
    }
    const project = `termgate-test-${RUN_ID}`;
    const env = {
      ...process.env,
      TERMGATE_IMAGE: image.tag,
      TERMGATE_ENV_FILE: path.join(etc, 'agent.env'),
      TERMGATE_TOKEN_PATH: path.join(etc, 'token'),
    };
    const compose = (...args: string[]) =>
      runWithProgress(
        'docker-compose',
        ['-p', project, '-f', 'deploy/compose.yaml', ...args],
        `docker-compose ${args[0]}`,
        STALL_MS,
        env,
      );
    try {
      await compose('up', '-d');
      const id = await docker(
        'ps',
        '-q',
        '--no-trunc',
        '--filter',
        `label=com.docker.compose.project=${project}`,
      );
      assert.equal(await inspect(id, '{{.HostConfig.PidMode}}'), 'host');
      await untilReady();
      await echo(userDevice, 'composed-8', 'echo composed-$((2*4))');
      await untilNoShells(devices);
    } finally {
      await compose('down', '-t', String(STOP_TIMEOUT_S));
    }
  });
});

async function logs(id: string): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)('docker', ['logs', id], { maxBuffer: 16 * 1024 * 1024 });
}
