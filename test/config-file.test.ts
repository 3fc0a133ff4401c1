/**
 * `termgate agent --config FILE`: a TOML file with the flags' names as keys, under the flags and the
 * environment; a bad file stops the agent naming the file's line and key; the agent serves a session
 * configured from a file alone.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { Command } from 'commander';
import { resolveAgentConfig, type AgentFlags } from '../src/config/agent-config.js';
import { ConfigFile, ConfigFileError, fileSettings } from '../src/config/config-file.js';
import { addAgentOptions } from '../src/config/options.js';
import { CLI } from './helpers/agent-process.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { removeContainers, startContainers, uniquePrefix } from './helpers/containers.js';
import { REPO } from './helpers/deploy-image.js';
import { untilNoShells } from './helpers/progress.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

const EXAMPLE = path.join(REPO, 'deploy', 'agent.toml.example');

let dir: string;
let files = 0;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'termgate-config-'));
});
onTeardown(() => dir && rmSync(dir, { recursive: true, force: true }));

function writeConfig(text: string): string {
  const file = path.join(dir, `agent-${++files}.toml`);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/** Parses `argv` as the agent command does, with `env` as the only environment, then applies the file. */
function load(file: string, argv: string[] = [], env: Record<string, string> = {}): AgentFlags {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) if (name.startsWith('TERMGATE_')) delete process.env[name];
  Object.assign(process.env, env);
  try {
    const cmd = addAgentOptions(new Command('agent')).exitOverride();
    cmd.parse(argv, { from: 'user' });
    ConfigFile.apply(cmd, file);
    return cmd.opts<AgentFlags>();
  } finally {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  }
}

/** `termgate agent --config FILE` run to its exit: the code and what it wrote to stderr. */
function runAgent(file: string): { code: number | null; stderr: string } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TERMGATE_')));
  const r = spawnSync(process.execPath, [CLI, 'agent', '--config', file], {
    encoding: 'utf8',
    timeout: 20_000,
    env,
  });
  return { code: r.status, stderr: r.stderr };
}

describe('config file', () => {
  it('has a key for every flag, named as the flag; the example lists them all and loads', () => {
    const keys = [...fileSettings().keys()];
    const flags = addAgentOptions(new Command('agent')).options.map((o) => o.long!.slice(2));
    assert.deepEqual(
      keys.sort(),
      flags.filter((f) => f !== 'config').sort(),
      'one key per flag but --config',
    );
    assert.ok(keys.length >= 28, `${keys.length} keys`);
    const example = readFileSync(EXAMPLE, 'utf8');
    // The secrets are left out on purpose: the example points to their files instead.
    for (const key of keys.filter((k) => k !== 'token' && k !== 'turn-secret')) {
      assert.match(example, new RegExp(`^#? ?${key} = `, 'm'), `the example shows ${key}`);
    }
    const loaded = load(EXAMPLE);
    assert.equal(loaded.cloudUrl, 'https://cloud.example');
    assert.equal(loaded.containers, 'vplc-*');
    assert.equal(resolveAgentConfig(loaded).containerGlobs[0], 'vplc-*');
  });

  it('takes every kind of value: strings, numbers, switches, lists', () => {
    const flags = load(
      writeConfig(
        [
          'cloud-url = "https://cloud.example"',
          'containers = "vplc-*,plc-?"',
          'workers = 3',
          'idle-timeout = 2.5',
          'insecure-cloud = true',
          'ice-server = ["stun:127.0.0.1:3478", "turn:127.0.0.1:3479"]',
          'port-range = "50000-50009"',
        ].join('\n'),
      ),
    );
    const config = resolveAgentConfig(flags);
    assert.equal(config.workers, 3);
    assert.equal(config.idleTimeoutMs, 2500);
    assert.deepEqual(config.session.iceServers, ['stun:127.0.0.1:3478', 'turn:127.0.0.1:3479']);
    assert.deepEqual([config.session.portRangeBegin, config.session.portRangeEnd], [50000, 50009]);
    assert.deepEqual(config.containerGlobs, ['vplc-*', 'plc-?']);
    assert.equal(flags.insecureCloud, true);
  });

  it('flags win over the environment, which wins over the file, which wins over the defaults', () => {
    const file = writeConfig('workers = 3\nidle-timeout = 40\nsessions-per-worker = 7\n');
    assert.equal(load(file).workers, '3', 'the file over the default');
    assert.equal(load(file).sessionsPerWorker, '7');
    assert.equal(load(file, [], { TERMGATE_WORKERS: '5' }).workers, '5', 'the environment over the file');
    const both = load(file, ['--workers', '7'], { TERMGATE_WORKERS: '5', TERMGATE_IDLE_TIMEOUT: '9' });
    assert.equal(both.workers, '7', 'the flag over both');
    assert.equal(both.idleTimeout, '9');
    assert.equal(both.sessionsPerWorker, '7', 'what nobody else set still comes from the file');
    assert.equal(load(writeConfig('')).maxSessionsPerContainer, '16', 'defaults stay');
  });

  it('refuses a bad file in-process, naming the line and the key', () => {
    const refusal = (text: string) => {
      try {
        load(writeConfig(text));
      } catch (err) {
        assert.ok(err instanceof ConfigFileError, String(err));
        return err.message;
      }
      assert.fail(`accepted:\n${text}`);
    };
    assert.match(
      refusal('cloud-url = "x"\nworkers = 2\nwokers = 3\n'),
      /line 3, key "wokers": .*did you mean "workers"/,
    );
    assert.match(
      refusal('containers = "a"\nworkers = true\n'),
      /line 2, key "workers": expected a string or a number, got boolean/,
    );
    assert.match(
      refusal('\n\ninsecure-cloud = "yes"\n'),
      /line 3, key "insecure-cloud": expected true or false/,
    );
    assert.match(
      refusal('ice-server = [1, {a = 2}]\n'),
      /line 1, key "ice-server": expected a string or a list/,
    );
    assert.match(
      refusal('containers = "a"\n[metrics]\nlisten = "x"\n'),
      /line 2, key "metrics": not a setting/,
    );
    assert.match(refusal('containers = "a"\ncontainers = "b"\n'), /line 2: /, 'a key given twice');
    assert.match(refusal('cloud-url = "a\nworkers = 2\n'), /line 1: /, 'an unterminated string');
    assert.match(refusal('config = "/etc/other.toml"\n'), /key "config": not a setting/);
  });

  it('stops the agent with exit code 2, naming the file, the line and the key', () => {
    const syntax = writeConfig('cloud-url = "http://127.0.0.1:9"\ncontainers = "vplc-*"\nworkers = = 2\n');
    const a = runAgent(syntax);
    assert.equal(a.code, 2);
    assert.match(a.stderr, new RegExp(`${syntax} line 3: `));

    // A value of the right type that the flag's own check refuses: pointed at in the file too.
    const value = writeConfig(
      'cloud-url = "http://127.0.0.1:9"\ncontainers = "vplc-*"\n\nworkers = "many"\n',
    );
    const b = runAgent(value);
    assert.equal(b.code, 2);
    assert.match(
      b.stderr,
      new RegExp(`${value} line 4, key "workers": invalid --workers: expected an integer`),
    );

    const missing = runAgent(path.join(dir, 'absent.toml'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent\.toml: cannot read it/);
  });

  it('the agent serves a session configured from the file alone', async () => {
    const prefix = uniquePrefix('cfg');
    const devices = await startContainers(prefix, 1);
    const cloud = await TestCloud.start();
    const token = `config-${process.pid}`;
    cloud.requiredToken = token;
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, token, { mode: 0o600 });
    const file = writeConfig(
      [
        `cloud-url = "${cloud.url}"`,
        `containers = "${prefix}-*"`,
        'bind-address = "127.0.0.1"',
        `token-file = "${tokenFile}"`,
        'workers = 1',
        'metrics-listen = "off"',
      ].join('\n'),
    );
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TERMGATE_')));
    const agent = spawn(process.execPath, [CLI, 'agent'], {
      env: { ...env, TERMGATE_CONFIG: file },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    agent.stderr.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await cloud.waitForAgent(60_000);
      assert.equal(cloud.handshakes.at(-1)?.token, token, 'token-file from the config file');
      const browser = await BrowserPeer.open(cloud, { device: devices[0]! });
      browser.type('echo cfg-$((4*4))\n');
      await browser.waitForScreen('cfg-16');
      // Resume is on by default: the session ends on the browser's `close`, not on a dropped peer.
      await browser.end();
      await untilNoShells(devices);
    } finally {
      agent.kill('SIGTERM');
      const [code] = (await once(agent, 'exit')) as [number | null];
      await cloud.close();
      await removeContainers(devices);
      assert.equal(code, 0, log.slice(-2000));
    }
  });
});
