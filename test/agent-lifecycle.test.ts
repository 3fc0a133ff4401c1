/**
 * Lifecycle of the agent process: idle sessions time out, activity keeps a session alive, memory stays
 * bounded under an output flood, and SIGTERM drains every session with a reason and exits 0.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import { shellsIn, waitForNoShells } from './helpers/containers.js';
import { useStack } from './helpers/stack.js';

const stack = useStack({
  name: 'life',
  containers: 2,
  agentArgs: ['--idle-timeout', '1.5', '--sweep-interval', '0.25'],
  stop: 'SIGKILL',
});

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

describe('agent lifecycle', () => {
  it('closes an idle session with reason idle-timeout, and keeps an active one', async () => {
    const idle = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    const active = await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! });
    const pinger = setInterval(() => active.send({ type: 'ping' }), 300);
    try {
      const gone = await idle.waitFor((m) => m.type === 'pty_disconnected', 10_000);
      assert.deepEqual(gone, { type: 'pty_disconnected', reason: 'idle-timeout' });
      assert.equal((await stack.cloud.waitForDisconnectNotice(idle.sessionId)).reason, 'idle-timeout');
      await waitForNoShells([stack.containers[0]!]);
      // The pinging session outlived the timeout several times over.
      assert.ok(!active.channelClosed);
      active.type('echo alive-$((2*21))\n');
      await active.waitForScreen('alive-42');
    } finally {
      clearInterval(pinger);
      idle.close();
      active.close();
    }
  });

  it('keeps memory bounded while sessions flood output', async () => {
    const pid = stack.agent.child.pid!;
    const browsers = await Promise.all(
      stack.containers.map((device) => BrowserPeer.open(stack.cloud, { device })),
    );
    const samples: number[] = [];
    const received = browsers.map(() => 0);
    try {
      for (const b of browsers) b.type('yes "flood flood flood flood flood flood flood"\n');
      const keepAlive = setInterval(() => browsers.forEach((b) => b.send({ type: 'ping' })), 300);
      for (let i = 0; i < 16; i++) {
        await new Promise((r) => setTimeout(r, 500));
        samples.push(rssMiB(pid));
        browsers.forEach((b, j) => {
          received[j]! += b.outputBytes;
          b.clearOutput();
        });
      }
      clearInterval(keepAlive);
      for (const bytes of received)
        assert.ok(bytes > 10_000_000, `a flooding session received ${bytes} bytes`);
    } finally {
      for (const b of browsers) b.close();
    }
    const peak = Math.max(...samples);
    const early = Math.max(...samples.slice(0, 4));
    console.log(`# flood RSS MiB: early ${early.toFixed(0)}, peak ${peak.toFixed(0)}`);
    assert.ok(peak < 400, `agent RSS peaked at ${peak.toFixed(0)} MiB`);
    assert.ok(peak - early < 64, `RSS grew by ${(peak - early).toFixed(0)} MiB during the flood`);
    await waitForNoShells(stack.containers);
  });

  it('drains on SIGTERM: every session told why, no shell left, exit code 0', async () => {
    const browsers = await Promise.all(
      [0, 1, 0, 1].map((i) => BrowserPeer.open(stack.cloud, { device: stack.containers[i]! })),
    );
    try {
      assert.ok((await shellsIn(stack.containers[0]!)).length >= 2);
      const code = await stack.agent.stop('SIGTERM');
      assert.equal(code, 0);
      for (const b of browsers) {
        assert.deepEqual(await b.waitFor((m) => m.type === 'pty_disconnected', 5_000), {
          type: 'pty_disconnected',
          reason: 'shutdown',
        });
      }
      assert.match(stack.agent.log, /agent stopped/);
      await waitForNoShells(stack.containers);
    } finally {
      for (const b of browsers) b.close();
    }
  });
});
