/**
 * The systemd unit, as far as a machine whose PID 1 is not systemd allows: `systemd-analyze verify`
 * accepts it (and rejects a broken copy, so the check can fail), `systemd-analyze security` rates its
 * sandbox, and the agent runs the way the unit runs it: ExecStart with the unit's EnvironmentFile and
 * Environment, the token as a credential file, a non-root user in the Docker socket's group with the
 * unit's ambient capabilities, bounding set and no_new_privs (through setpriv). Sessions open and echo as
 * root and as uid 1000, shells are gone after close, SIGTERM drains within TimeoutStopSec; the same user
 * without the capabilities refuses to start, saying why.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import { removeContainers, startContainers, uniquePrefix } from './helpers/containers.js';
import { freePort, REPO } from './helpers/deploy-image.js';
import { untilNoShells } from './helpers/progress.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

const UNIT = path.join(REPO, 'deploy', 'termgate-agent.service');
/** What the README states for the unit's sandbox: `systemd-analyze security` calls up to 3.9 "OK". */
const MAX_EXPOSURE = 3.9;
/** A uid no account uses, standing in for the unit's DynamicUser. */
const SERVICE_UID = 61_000 + Math.floor(Math.random() * 900);
/** Time for the unit's user to start the agent and reach the cloud, polled on its log. */
const START_MS = 60_000;

/** The [Service] settings of the unit, each key with all its values in order. */
function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (section !== 'Service' || eq < 0) continue;
    const key = line.slice(0, eq);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
  }
  return settings;
}

const unitText = readFileSync(UNIT, 'utf8');
const unit = serviceSettings(unitText);
const one = (key: string): string => {
  const values = unit.get(key);
  assert.ok(values?.length === 1, `the unit sets ${key} once`);
  return values[0]!;
};

function systemdAnalyze(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

let work: string;
before(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'termgate-unit-'));
  chmodSync(work, 0o755);
});
onTeardown(() => work && rmSync(work, { recursive: true, force: true }));

/** The unit with ExecStart pointing at this checkout's launcher (what `npm install -g` puts there). */
function localUnit(name: string, edit: (text: string) => string = (t) => t): string {
  const file = path.join(work, name);
  writeFileSync(file, edit(unitText.replace('/usr/local/bin/termgate', path.join(REPO, 'bin', 'termgate'))));
  return file;
}

describe('systemd unit', () => {
  it('passes systemd-analyze verify, which rejects a broken copy', () => {
    assert.match(one('ExecStart'), /^\/usr\/local\/bin\/termgate agent$/, 'where npm install -g puts it');
    const good = systemdAnalyze('verify', localUnit('termgate-agent.service'));
    assert.equal(good.code, 0, good.out);
    assert.equal(good.out.trim(), '', 'no warning either');
    // verify exits 0 on a setting it ignores, but says so: the clean unit's empty output is the check.
    const ignored = systemdAnalyze(
      'verify',
      localUnit('termgate-ignored.service', (t) => t.replace('Restart=on-failure', 'Restart=sometimes')),
    );
    assert.match(ignored.out, /termgate-ignored\.service:\d+: Failed to parse service restart specifier/);
    const fatal = systemdAnalyze(
      'verify',
      localUnit('termgate-fatal.service', (t) => t.replace(/^ExecStart=\S+/m, 'ExecStart=bin/termgate')),
    );
    assert.notEqual(fatal.code, 0, fatal.out);
    const version = systemdAnalyze('--version').out.split('\n')[0];
    console.log(`# systemd-analyze verify: clean (${version})`);
  });

  it(`is sandboxed: systemd-analyze security rates it at most ${MAX_EXPOSURE}`, () => {
    const { out } = systemdAnalyze('security', '--offline=yes', localUnit('termgate-agent.service'));
    const level = Number(/Overall exposure level for [\w.-]+: ([\d.]+)/.exec(out)?.[1]);
    assert.ok(Number.isFinite(level), out.slice(-2000));
    assert.ok(level <= MAX_EXPOSURE, `exposure ${level}`);
    console.log(`# systemd-analyze security: exposure ${level} of 10`);
  });

  it("the agent runs as the unit runs it: non-root in the socket's group, three capabilities, drains on SIGTERM", async () => {
    assert.equal(one('DynamicUser'), 'yes');
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('KillSignal'), 'SIGTERM');
    const stopTimeoutS = Number(/^(\d+)$/.exec(one('TimeoutStopSec'))?.[1]);
    assert.ok(stopTimeoutS > 0);

    const socketGid = statSync('/var/run/docker.sock').gid;
    const group = spawnSync('getent', ['group', one('SupplementaryGroups')], { encoding: 'utf8' }).stdout;
    assert.equal(Number(group.split(':')[2]), socketGid, "the unit's group owns the Docker socket");

    const prefix = uniquePrefix('unit');
    const devices = [
      ...(await startContainers(prefix, 1)),
      ...(await startContainers(`${prefix}-u`, 1, [], ['--user', '1000:1000'])),
    ];
    const cloud = await TestCloud.start();
    const token = `unit-${process.pid}-${SERVICE_UID}`;
    cloud.requiredToken = token;
    try {
      const credentials = path.join(work, 'credentials');
      mkdirSync(credentials);
      writeFileSync(path.join(credentials, 'token'), `${token}\n`, { mode: 0o400 });
      // systemd hands the service its credentials in a directory only the service's user reads.
      chownSync(path.join(credentials, 'token'), SERVICE_UID, SERVICE_UID);
      chownSync(credentials, SERVICE_UID, SERVICE_UID);
      chmodSync(credentials, 0o500);
      const envFile = path.join(work, 'agent.env');
      writeFileSync(
        envFile,
        [
          `TERMGATE_CLOUD_URL=${cloud.url}`,
          `TERMGATE_CONTAINERS=${prefix}-*`,
          'TERMGATE_BIND_ADDRESS=127.0.0.1',
          'TERMGATE_WORKERS=1',
          // The test's peers end sessions by closing (no resume grace).
          'TERMGATE_RESUME_GRACE=0',
          `TERMGATE_METRICS_LISTEN=127.0.0.1:${await freePort()}`,
        ].join('\n'),
      );
      const env = unitEnvironment(envFile, credentials);
      assert.equal(
        env.TERMGATE_TOKEN_FILE,
        path.join(credentials, 'token'),
        'the token comes as a credential',
      );

      // The same user without the unit's capabilities cannot end shells: it refuses to start.
      const bare = startAsService(env, []);
      const [bareCode] = (await once(bare.child, 'exit')) as [number | null];
      assert.equal(bareCode, 2, bare.log());
      assert.match(bare.log(), /may not signal the containers' processes \(EPERM\)/);

      const caps = one('AmbientCapabilities').split(/\s+/);
      assert.deepEqual(one('CapabilityBoundingSet').split(/\s+/), caps);
      const agent = startAsService(env, caps);
      await cloud.waitForAgent(START_MS);
      assert.equal(cloud.handshakes.at(-1)?.token, token);
      const status = readFileSync(`/proc/${agent.child.pid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${SERVICE_UID}\\s`, 'm'), 'not root');
      assert.match(status, /^NoNewPrivs:\s+1$/m);
      assert.match(status, new RegExp(`^Groups:.*\\b${socketGid}\\b`, 'm'));

      for (const [device, uid] of [
        [devices[0]!, '0'],
        [devices[1]!, '1000'],
      ] as const) {
        const browser = await BrowserPeer.open(cloud, { device });
        browser.type('echo unit-$((6*7)) $(id -u)\n');
        await browser.waitForScreen(`unit-42 ${uid}`);
        browser.close();
      }
      await untilNoShells(devices);

      // A stop, as systemctl does it: SIGTERM to the main process (KillMode=mixed), sessions open.
      const open = await Promise.all(devices.map((device) => BrowserPeer.open(cloud, { device })));
      const stopping = performance.now();
      agent.child.kill('SIGTERM');
      const [code] = (await once(agent.child, 'exit')) as [number | null];
      const drainMs = performance.now() - stopping;
      assert.equal(code, 0, agent.log().slice(-2000));
      for (const b of open) {
        assert.deepEqual(await b.waitFor((m) => m.type === 'pty_disconnected', 10_000), {
          type: 'pty_disconnected',
          reason: 'shutdown',
        });
        b.close();
      }
      await untilNoShells(devices);
      assert.ok(drainMs < stopTimeoutS * 1000, `drained in ${drainMs} ms`);
      console.log(
        `# systemd-style run: uid ${SERVICE_UID}, groups docker, caps ${caps.join(' ')}; ` +
          `SIGTERM drained ${open.length} sessions in ${(drainMs / 1000).toFixed(1)} s (TimeoutStopSec ${stopTimeoutS} s)`,
      );
    } finally {
      await cloud.close();
      await removeContainers(devices);
    }
  });
});

/** The environment the unit gives ExecStart: EnvironmentFile, then Environment (`%d` = credentials). */
function unitEnvironment(envFile: string, credentials: string): NodeJS.ProcessEnv {
  assert.equal(one('EnvironmentFile'), '/etc/termgate/agent.env');
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: '/nonexistent' };
  for (const line of readFileSync(envFile, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2];
  }
  for (const assignment of unit.get('Environment') ?? []) {
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1).replaceAll('%d', credentials);
  }
  return env;
}

/** Starts ExecStart as the service's user would run, with `caps` ambient and bounding (none: none). */
function startAsService(env: NodeJS.ProcessEnv, caps: string[]) {
  const names = caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
  const set = ['-all', ...names].join(',');
  const [, ...args] = one('ExecStart').split(/\s+/);
  const gid = statSync('/var/run/docker.sock').gid;
  const child = spawn(
    'setpriv',
    [
      `--reuid=${SERVICE_UID}`,
      `--regid=${SERVICE_UID}`,
      `--groups=${gid}`,
      `--inh-caps=${set}`,
      `--ambient-caps=${set}`,
      `--bounding-set=${set}`,
      '--no-new-privs',
      path.join(REPO, 'bin', 'termgate'),
      ...args,
    ],
    { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  onTeardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, log: () => log };
}
