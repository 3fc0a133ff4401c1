/**
 * The cloud link is private (issue 9, point 11): a clear-text http:/ws: URL to anything but loopback is
 * refused unless --insecure-cloud says otherwise, the token comes from the environment or a file (a
 * token on the command line still works, with a warning that never shows it), and a server that drops
 * the agent again and again is retried with a growing delay, not hammered.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Server } from 'socket.io';
import { ConfigError, resolveAgentConfig, type AgentFlags } from '../src/config/agent-config.js';
import { AgentProcess, CLI } from './helpers/agent-process.js';
import { TestCloud } from './helpers/test-cloud.js';

const base: AgentFlags = {
  cloudUrl: 'https://cloud.example',
  containers: 'vplc-*',
  workers: '1',
  sessionsPerWorker: '10',
  maxSessionsPerContainer: '16',
  offersPerSecond: '100',
  idleTimeout: '300',
  setupTimeout: '30',
  sweepInterval: '60',
  dockerSocket: '/var/run/docker.sock',
  maxMessageBytes: '65536',
  maxSdpBytes: '65536',
  metricsListen: 'off',
};
const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-link-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function refusal(flags: Partial<AgentFlags>): string | undefined {
  try {
    resolveAgentConfig({ ...base, ...flags });
    return undefined;
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
}

describe('the cloud URL', () => {
  it('refuses clear text to a host that is not loopback, and says what to do', () => {
    for (const url of [
      'http://cloud.example',
      'ws://cloud.example:8080/socket',
      'http://10.0.0.5',
      'http://[2001:db8::1]',
    ]) {
      const message = refusal({ cloudUrl: url });
      assert.match(message ?? '', /--cloud-url: .*clear text.*https: or wss:.*--insecure-cloud/, url);
    }
  });

  it('accepts https, wss, loopback in clear text, and clear text with --insecure-cloud', () => {
    for (const url of [
      'https://cloud.example',
      'wss://cloud.example',
      'http://127.0.0.1:8080',
      'http://127.9.8.7',
      'ws://localhost:3000',
      'http://[::1]:9',
    ]) {
      assert.equal(refusal({ cloudUrl: url }), undefined, url);
    }
    assert.equal(refusal({ cloudUrl: 'http://cloud.example', insecureCloud: true }), undefined);
  });

  it('stops the executable with exit code 2 for clear text to a remote host', () => {
    const result = spawnSync(
      process.execPath,
      [CLI, 'agent', '--cloud-url', 'http://cloud.example', '--containers', 'vplc-*'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    assert.equal(result.status, 2);
    assert.match(result.stderr, /invalid --cloud-url: .*clear text/);
  });
});

describe('the token', () => {
  it('is read from --token-file, trimmed; an empty, unreadable or doubled token is refused', () => {
    const file = path.join(dir, 'token');
    writeFileSync(file, 'tok-from-file\n', { mode: 0o600 });
    const config = resolveAgentConfig({ ...base, tokenFile: file });
    assert.equal(config.token, 'tok-from-file');
    assert.deepEqual(config.warnings, []);
    writeFileSync(path.join(dir, 'empty'), '\n', { mode: 0o600 });
    assert.match(refusal({ tokenFile: path.join(dir, 'empty') }) ?? '', /--token-file: .* is empty/);
    assert.match(refusal({ tokenFile: path.join(dir, 'missing') }) ?? '', /--token-file: cannot read/);
    assert.match(refusal({ tokenFile: file, token: 'x', tokenSource: 'env' }) ?? '', /give the token once/);
  });

  it('warns about a token file others can read, and a token typed on the command line', () => {
    const file = path.join(dir, 'open-token');
    writeFileSync(file, 'tok');
    chmodSync(file, 0o644);
    assert.match(
      resolveAgentConfig({ ...base, tokenFile: file }).warnings.join(),
      /can be read by other users/,
    );
    const cli = resolveAgentConfig({ ...base, token: 'tok', tokenSource: 'cli' });
    assert.equal(cli.token, 'tok');
    assert.match(cli.warnings.join(), /--token on the command line .* TERMGATE_TOKEN or --token-file/);
    assert.deepEqual(resolveAgentConfig({ ...base, token: 'tok', tokenSource: 'env' }).warnings, []);
  });

  it('reaches the cloud from --token-file, and a --token warning never shows the token', async () => {
    const cloud = await TestCloud.start();
    try {
      const file = path.join(dir, 'agent-token');
      writeFileSync(file, 'tok-Kq2-file\n', { mode: 0o600 });
      cloud.requiredToken = 'tok-Kq2-file';
      const fromFile = AgentProcess.start(cloud.url, ['--containers', 'vplc-none-*', '--token-file', file]);
      let code: number | string;
      try {
        await cloud.waitForAgent();
        assert.equal(cloud.handshakes.at(-1)?.token, 'tok-Kq2-file');
      } finally {
        code = await fromFile.stop();
      }
      assert.equal(code, 0);
      cloud.requiredToken = 'tok-Zx9-argv';
      // The first agent's socket may still read as connected for a moment after its process ended.
      const first = cloud.agent;
      const fromArgv = AgentProcess.start(cloud.url, [
        '--containers',
        'vplc-none-*',
        '--token',
        'tok-Zx9-argv',
      ]);
      try {
        while ((await cloud.waitForAgent()) === first) await new Promise((r) => setTimeout(r, 25));
        const warning = fromArgv.logLines().find((l) => /--token on the command line/.test(String(l.msg)));
        assert.ok(warning, 'the agent warns about the token on its command line');
        assert.ok(!fromArgv.log.includes('tok-Zx9-argv'), 'the log never shows the token');
      } finally {
        code = await fromArgv.stop();
      }
      assert.equal(code, 0);
    } finally {
      await cloud.close();
    }
  });
});

describe('reconnecting to a cloud that drops the agent', () => {
  it('waits longer after each drop that follows a short connection (backoff), instead of every second', async () => {
    const http = createServer();
    const io = new Server(http);
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const DROPS = 5;
    const connects: number[] = [];
    const drops: number[] = [];
    io.on('connection', (socket) => {
      connects.push(performance.now());
      if (drops.length < DROPS) {
        drops.push(performance.now());
        socket.disconnect(true); // 'io server disconnect': the agent decides when to come back
      }
    });
    const agent = AgentProcess.start(`http://127.0.0.1:${(http.address() as AddressInfo).port}`, [
      '--containers',
      'vplc-none-*',
    ]);
    try {
      const deadline = performance.now() + 60_000;
      while (connects.length <= DROPS && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      assert.equal(connects.length, DROPS + 1, 'the agent came back after every drop');
      // The k-th delay is 500 ms × 2^k with jitter down to half of it: 250, 500, 1000, 2000, 4000 ms at least.
      const gaps = drops.map((t, k) => connects[k + 1]! - t);
      gaps.forEach((gap, k) => assert.ok(gap >= 250 * 2 ** k - 20, `gap ${k}: ${gap.toFixed(0)} ms`));
      console.log(`# reconnect gaps after server drops: ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`);
    } finally {
      assert.equal(await agent.stop(), 0);
      await io.close();
    }
  });
});
