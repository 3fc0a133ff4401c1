/**
 * The npm package as an operator installs it: `npm pack` in this checkout, then the README's
 * `npm install -g --offline --ignore-scripts` of the tarball into an empty prefix (offline: its production
 * dependencies are bundled in it), then the installed `termgate` answers `--version` and `agent --help`,
 * serves a real session (its native addon loaded from where npm put it), and `termgate-probe` reads its
 * health. The tarball holds what the runtime needs and nothing else, in the versions of the lockfile CI
 * tested.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import { removeContainers, startContainers, uniquePrefix } from './helpers/containers.js';
import { freePort, REPO, runWithProgress } from './helpers/deploy-image.js';
import { untilNoShells } from './helpers/progress.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

/** npm prints each step; a pack or an install from the cache moves at least this often. */
const STALL_MS = 180_000;

const pkg = JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as { name: string; version: string };
const lock = JSON.parse(readFileSync(`${REPO}package-lock.json`, 'utf8')) as {
  packages: Record<string, { version: string; dev?: boolean; optional?: boolean }>;
};

/** What may be in the tarball: the runtime, the launchers, the page, the deploy files, the dependencies. */
const ALLOWED = [
  /^package\/node_modules\//,
  /^package\/(package\.json|README\.md)$/,
  /^package\/bin\/termgate(-probe)?$/,
  /^package\/dist\/(src|common|standin|workers)\/[\w/.-]+\.js$/,
  /^package\/web\/dist\/(index\.html|main\.(js|css)|main\.(js|css)\.LEGAL\.txt)$/,
  /^package\/deploy\/(termgate-agent\.service|agent\.env\.example|agent\.toml\.example)$/,
];

let work: string;
let tarball: string;
let prefix: string;

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'termgate-pkg-'));
  await runWithProgress('npm', ['pack', '--pack-destination', work], 'npm pack', STALL_MS);
  tarball = path.join(work, `${pkg.name}-${pkg.version}.tgz`);
  prefix = path.join(work, 'prefix');
  // An empty prefix, no registry: everything it needs is in the tarball.
  await runWithProgress(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      tarball,
    ],
    'npm install -g of the tarball',
    STALL_MS,
  );
});

onTeardown(() => work && rmSync(work, { recursive: true, force: true }));

/** Runs an installed command to its end; resolves with its exit code and output. */
async function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; out: string }> {
  const child = spawn(path.join(prefix, 'bin', command), args, {
    cwd: work,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out };
}

describe('npm package', () => {
  it('holds the runtime only, with the tested dependency versions', async () => {
    const files = (await runWithProgress('tar', ['-tzf', tarball], 'tar -t', STALL_MS))
      .split('\n')
      .filter(Boolean);
    const stray = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
    assert.deepEqual(stray, [], 'only what the runtime needs');
    // A package's own folder holds a package.json; so may its subfolders (dist/esm/…): keep the former.
    const bundled = new Set(
      files.flatMap(
        (f) =>
          /^package\/(node_modules\/(?:@[^/]+\/)?[^/]+(?:\/node_modules\/(?:@[^/]+\/)?[^/]+)*)\/package\.json$/.exec(
            f,
          )?.[1] ?? [],
      ),
    );
    // Exactly the production closure of the lockfile (dev: true marks build-time only), with the
    // optional platform packages this machine installed.
    const production = Object.entries(lock.packages)
      .filter(([key, entry]) => key.startsWith('node_modules/') && !entry.dev)
      .filter(([key, entry]) => !entry.optional || existsSync(`${REPO}${key}`))
      .map(([key]) => key);
    assert.deepEqual([...bundled].sort(), production.sort(), 'bundled = the production dependencies');
    assert.ok(
      bundled.has('node_modules/@node-datachannel/linux-x64-gnu'),
      "node-datachannel's prebuilt addon",
    );
    for (const dev of ['typescript', 'esbuild', 'eslint', 'playwright-core', 'fast-check']) {
      assert.ok(!bundled.has(`node_modules/${dev}`), `${dev} is a build-time dependency`);
    }
    for (const needed of ['package/dist/src/cli.js', 'package/dist/workers/session-worker.js']) {
      assert.ok(files.includes(needed), needed);
    }
    const installed = path.join(prefix, 'lib', 'node_modules', pkg.name, 'node_modules');
    for (const dep of ['node-datachannel', 'socket.io-client', 'dockerode', 'piscina']) {
      const { version } = JSON.parse(readFileSync(path.join(installed, dep, 'package.json'), 'utf8')) as {
        version: string;
      };
      assert.equal(version, lock.packages[`node_modules/${dep}`]?.version, `${dep} as in package-lock.json`);
    }
    const { size } = statSync(tarball);
    console.log(
      `# package: ${(size / 1e6).toFixed(1)} MB packed, ${files.length} files, ${bundled.size} bundled packages`,
    );
  });

  it('installs `termgate`: --version and agent --help', async () => {
    const version = await run('termgate', ['--version']);
    assert.equal(version.code, 0);
    assert.equal(version.out.trim(), pkg.version);
    const help = await run('termgate', ['agent', '--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--cloud-url', '--token-file', '--containers', '--metrics-listen']) {
      assert.ok(help.out.includes(flag), `agent --help lists ${flag}`);
    }
  });

  it('the installed agent serves a session, and termgate-probe reads its health', async () => {
    const devicePrefix = uniquePrefix('pkg');
    const devices = await startContainers(devicePrefix, 1);
    const cloud = await TestCloud.start();
    const listen = `127.0.0.1:${await freePort()}`;
    const agent = spawn(
      path.join(prefix, 'bin', 'termgate'),
      // The test's peer ends its session by closing (no resume grace).
      [
        'agent',
        '--cloud-url',
        cloud.url,
        '--bind-address',
        '127.0.0.1',
        '--workers',
        '1',
        '--resume-grace',
        '0',
      ],
      {
        cwd: work,
        env: { ...process.env, TERMGATE_CONTAINERS: `${devicePrefix}-*`, TERMGATE_METRICS_LISTEN: listen },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    agent.stderr.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await cloud.waitForAgent(60_000);
      // Started through the bin/termgate launcher, which execs node: the agent's own environment says.
      const environ = readFileSync(`/proc/${agent.pid}/environ`, 'utf8').split('\0');
      assert.ok(environ.includes('MALLOC_ARENA_MAX=2'), `started through the bin/termgate launcher\n${log}`);
      const browser = await BrowserPeer.open(cloud, { device: devices[0]! });
      browser.type('echo pkg-$((5*5))\n');
      await browser.waitForScreen('pkg-25');
      browser.close();
      await untilNoShells(devices);
      const ready = await run('termgate-probe', ['/readyz', '--wait', '60'], {
        TERMGATE_METRICS_LISTEN: listen,
      });
      assert.equal(ready.code, 0, ready.out);
      assert.match(ready.out, /200 ready/);
    } finally {
      agent.kill('SIGTERM');
      const [code] = (await once(agent, 'exit')) as [number | null];
      await cloud.close();
      await removeContainers(devices);
      assert.equal(code, 0, `the agent drains and exits 0:\n${log.slice(-2000)}`);
    }
    // Nothing listens any more: the probe says no, quickly.
    const gone = await run('termgate-probe', ['/healthz'], { TERMGATE_METRICS_LISTEN: listen });
    assert.equal(gone.code, 1);
  });
});
