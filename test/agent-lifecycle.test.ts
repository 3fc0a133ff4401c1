/**
 * Lifecycle of the agent process: idle sessions time out, activity keeps a session alive, memory stays
 * bounded under an output flood, and SIGTERM drains every session with a reason and exits 0.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import { shellsIn } from './helpers/containers.js';
import { untilNoShells, untilProgress } from './helpers/progress.js';
import { useStack } from './helpers/stack.js';

const stack = useStack({
  name: 'life',
  containers: 2,
  agentArgs: ['--idle-timeout', '1.5', '--sweep-interval', '0.25'],
  stop: 'SIGKILL',
});

/** What each flooding session must receive; the flood is bounded by progress, not by a time window. */
const FLOOD_MB = 16;
const STALL_MS = 30_000;

/**
 * Opens a session that pings from the moment it is open, so the file's 1.5 s idle timeout spares it
 * however long the other setups of a test take; `stopPings` ends every such pinger.
 */
const pingers: NodeJS.Timeout[] = [];
async function openPinging(options: Parameters<typeof BrowserPeer.open>[1]): Promise<BrowserPeer> {
  const peer = await BrowserPeer.open(stack.cloud, options);
  const ping = () => {
    try {
      peer.send({ type: 'ping' });
    } catch {
      // Closed meanwhile.
    }
  };
  pingers.push(setInterval(ping, 300));
  return peer;
}
const stopPings = () => pingers.splice(0).forEach((t) => clearInterval(t));

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
      await untilNoShells([stack.containers[0]!]);
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

  it('does not sweep a session whose setup outlasts the idle timeout', async () => {
    // The answer is applied after twice the idle timeout, so ICE, DTLS and the channel start after it.
    const slow = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]!, answerDelayMs: 3_000 });
    try {
      slow.type('echo slow-$((6*7))\n');
      await slow.waitForScreen('slow-42');
      assert.ok(!slow.messages.some((m) => m.type === 'pty_disconnected'));
    } finally {
      slow.close();
    }
  });

  it(`keeps memory bounded while sessions flood ${FLOOD_MB} MB each`, async () => {
    const pid = stack.agent.child.pid!;
    const received = stack.containers.map(() => 0);
    const browsers = await Promise.all(
      stack.containers.map((device, j) =>
        openPinging({ device, onOutput: (bytes) => (received[j]! += bytes.length) }),
      ),
    );
    const total = () => received.reduce((a, b) => a + b, 0);
    // RSS against the bytes moved so far, so "early" means the same share of the flood on any machine.
    const samples: Array<{ bytes: number; rss: number }> = [];
    const sample = () => samples.push({ bytes: total(), rss: rssMiB(pid) });
    const sampler = setInterval(sample, 250);
    try {
      for (const b of browsers) b.type('yes "flood flood flood flood flood flood flood"\n');
      await untilProgress({
        what: 'the flood',
        stallMs: STALL_MS,
        progress: total,
        done: () => received.every((bytes) => bytes >= FLOOD_MB * 1e6),
        detail: () => `received ${received.join(', ')} bytes`,
      });
      sample();
    } finally {
      clearInterval(sampler);
      stopPings();
      for (const b of browsers) b.close();
    }
    const earlyBytes = (FLOOD_MB * 1e6 * browsers.length) / 4;
    const early = Math.max(...samples.filter((s, i) => i === 0 || s.bytes <= earlyBytes).map((s) => s.rss));
    const peak = Math.max(...samples.map((s) => s.rss));
    assert.ok(peak < 400, `agent RSS peaked at ${peak.toFixed(0)} MiB`);
    assert.ok(peak - early < 64, `RSS grew by ${(peak - early).toFixed(0)} MiB during the flood`);
    console.log(
      `# flood of ${(total() / 1e6).toFixed(0)} MB: agent RSS ${early.toFixed(0)} MiB over the first quarter, ` +
        `peak ${peak.toFixed(0)} MiB (${samples.length} samples)`,
    );
    await untilNoShells(stack.containers);
  });

  it('drains on SIGTERM: every session told why, no shell left, exit code 0', async () => {
    const browsers = await Promise.all(
      [0, 1, 0, 1].map((i) => openPinging({ device: stack.containers[i]! })),
    );
    try {
      assert.ok((await shellsIn(stack.containers[0]!)).length >= 2);
      // 0: a clean drain, every session ended and every worker confirmed with no peer left (README).
      assert.equal(await stack.agent.stop('SIGTERM'), 0, stack.agent.log.slice(-2000));
      for (const b of browsers) {
        assert.deepEqual(await b.waitFor((m) => m.type === 'pty_disconnected', 5_000), {
          type: 'pty_disconnected',
          reason: 'shutdown',
        });
      }
      await untilNoShells(stack.containers);
    } finally {
      stopPings();
      for (const b of browsers) b.close();
    }
  });
});
