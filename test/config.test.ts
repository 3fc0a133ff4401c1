/** The agent's flags: defaults, environment variables, and a clear refusal naming the flag. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { ConfigError, resolveAgentConfig, type AgentFlags } from '../src/config/agent-config.js';
import { addAgentOptions, readmeTable } from '../src/config/options.js';
import { CLI } from './helpers/agent-process.js';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

const base: AgentFlags = {
  cloudUrl: 'http://127.0.0.1:9',
  containers: 'vplc-*',
  workers: '2',
  sessionsPerWorker: '250',
  maxSessionsPerContainer: '16',
  offersPerSecond: '100',
  idleTimeout: '300',
  setupTimeout: '30',
  sweepInterval: '60',
  dockerSocket: '/var/run/docker.sock',
  maxMessageBytes: '65536',
  maxSdpBytes: '65536',
  metricsListen: '127.0.0.1:9464',
};

describe('agent configuration', () => {
  it('resolves the defaults a user expects', () => {
    const config = resolveAgentConfig(base);
    assert.equal(config.maxSessions, 500);
    assert.equal(config.idleTimeoutMs, 300_000);
    assert.equal(config.session.setupTimeoutMs, 30_000);
    assert.equal(config.sweepIntervalMs, 60_000);
    assert.deepEqual(config.session.shell, ['/bin/sh']);
    assert.deepEqual(config.metricsListen, { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(config.containerGlobs, ['vplc-*']);
  });

  it('parses ranges, lists, labels and off', () => {
    const config = resolveAgentConfig({
      ...base,
      portRange: '50000-50099',
      iceServer: ['stun:127.0.0.1:3478', 'turn:127.0.0.1:3479'],
      containerLabel: 'termgate.role=vplc',
      metricsListen: 'off',
      shell: '/bin/sh -l',
      maxSessions: '10',
    });
    assert.equal(config.session.portRangeBegin, 50000);
    assert.equal(config.session.portRangeEnd, 50099);
    assert.deepEqual(config.session.iceServers, ['stun:127.0.0.1:3478', 'turn:127.0.0.1:3479']);
    assert.deepEqual(config.containerLabel, { key: 'termgate.role', value: 'vplc' });
    assert.equal(config.metricsListen, undefined);
    assert.deepEqual(config.session.shell, ['/bin/sh', '-l']);
    assert.equal(config.maxSessions, 10);
  });

  const bad: Array<[Partial<AgentFlags>, RegExp]> = [
    [{ cloudUrl: undefined }, /--cloud-url: required/],
    [{ cloudUrl: 'ftp://x' }, /--cloud-url: scheme/],
    [{ containers: undefined }, /--containers: no container selector/],
    [{ containers: 'vplc-*,../etc' }, /--containers/],
    [{ workers: 'two' }, /--workers: expected an integer/],
    [{ workers: '0' }, /--workers: 0 is outside/],
    [{ idleTimeout: '-5' }, /--idle-timeout/],
    [{ setupTimeout: 'soon' }, /--setup-timeout/],
    [{ resumeGrace: '-1' }, /--resume-grace/],
    [{ replayBuffer: '100' }, /--replay-buffer/],
    [{ portRange: '60000-50000' }, /--port-range: end/],
    [{ iceUdpPort: '50000', portRange: '50000-50009' }, /--ice-udp-port: give either/],
    [
      { iceUdpPort: '65534', workers: '2' },
      /--ice-udp-port: the port and 2 workers behind it need ports 65534-65536/,
    ],
    [{ iceUdpPort: '80' }, /--ice-udp-port: 80 is outside/],
    [{ iceServer: ['http://x'] }, /--ice-server/],
    [{ metricsListen: 'nowhere' }, /--metrics-listen/],
    [{ bindAddress: 'my host' }, /--bind-address/],
    [{ maxMessageBytes: '10' }, /--max-message-bytes/],
    [{ flushOnInterrupt: 'yes' }, /--flush-on-interrupt/],
    [{ turnProxy: 'yes' }, /--turn-proxy/],
  ];
  for (const [flags, message] of bad) {
    it(`refuses ${JSON.stringify(flags)}`, () => {
      assert.throws(
        () => resolveAgentConfig({ ...base, ...flags }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  it('stops the executable at start-up with exit code 2 and the flag named', () => {
    const result = spawnSync(
      process.execPath,
      [CLI, 'agent', '--cloud-url', 'http://127.0.0.1:9', '--containers', 'vplc-*', '--workers', 'lots'],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    assert.equal(result.status, 2);
    assert.match(result.stderr, /invalid --workers: expected an integer, got "lots"/);
  });

  it('reads flags from the environment', () => {
    const result = spawnSync(process.execPath, [CLI, 'agent'], {
      encoding: 'utf8',
      timeout: 20_000,
      env: {
        ...process.env,
        TERMGATE_CLOUD_URL: 'http://127.0.0.1:9',
        TERMGATE_CONTAINERS: 'vplc-*',
        TERMGATE_IDLE_TIMEOUT: 'soon',
      },
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /invalid --idle-timeout/);
  });

  it('lists every flag, with its environment variable, in --help and in the README', () => {
    // The flags as the agent command defines them: a flag added later is covered without touching this.
    const options = addAgentOptions(new Command('agent')).options;
    assert.ok(options.length >= 23, `${options.length} flags defined`);
    const help = spawnSync(process.execPath, [CLI, 'agent', '--help'], {
      encoding: 'utf8',
      timeout: 20_000,
    }).stdout.replace(/\s+/g, ' ');
    const readme = readFileSync(README, 'utf8');
    for (const option of options) {
      assert.ok(option.long && option.envVar, `${option.flags} has a long name and an environment variable`);
      assert.ok(help.includes(`${option.flags} `), `--help lists ${option.flags}`);
      assert.ok(help.includes(`env: ${option.envVar})`), `--help names ${option.envVar}`);
      assert.match(
        readme,
        new RegExp(`\\| \`${option.long}[ \`]`),
        `the README's table lists ${option.long}`,
      );
      assert.ok(readme.includes(`\`${option.envVar}\``), `the README's table names ${option.envVar}`);
    }
  });

  it("has the README's flag table exactly as the flag table makes it (scripts/readme-flags.mjs writes it)", () => {
    const readme = readFileSync(README, 'utf8');
    const table = readmeTable();
    assert.ok(
      readme.includes(`\n${table}\n`),
      'README.md has the generated table: run node scripts/readme-flags.mjs',
    );
    assert.equal(table.split('\n').length, addAgentOptions(new Command('agent')).options.length + 2);
  });

  it('takes a default from the table when a flag is missing, the same default commander shows', () => {
    const { workers: _workers, shell: _shell, ...rest } = base;
    const config = resolveAgentConfig(rest);
    const options = addAgentOptions(new Command('agent')).options;
    const shell = options.find((o) => o.long === '--shell');
    assert.deepEqual(config.session.shell, [shell?.defaultValue]);
    assert.equal(config.session.slowConsumerTimeoutMs, 60_000);
    assert.equal(config.session.resumeGraceMs, 120_000);
    assert.equal(config.session.replayBufferBytes, 1024 * 1024);
    assert.equal(config.session.maxMessagesPerSecond, 1000);
    assert.equal(config.dockerTimeoutMs, 10_000);
  });
});
