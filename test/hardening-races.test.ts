/**
 * Per-container and total accounting stays exact under races (issue 9, point 4). Hundreds of sessions
 * each ask to move to container B with connect_pty and end at once (a `close` message, a cloud
 * disconnect, or the browser going away). In half of the rounds the engine's answer to the move's
 * authorization is held until the session has ended, the interleaving that used to leak a slot in B; in
 * the others the race runs at its natural speed. Afterwards every count is zero, read from the agent's
 * metrics, and the limits admit exactly as many sessions as they should, in A and in B.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BrowserPeer, realOfferSdp } from './helpers/browser-peer.js';

import { DockerProxy } from './helpers/docker-proxy.js';
import { freePort, scrape } from './helpers/metrics.js';
import { useStack } from './helpers/stack.js';
import { untilNoShells } from './helpers/progress.js';

const LIMIT = 16;
const ROUNDS = 20;
const PER_ROUND = 15;

let proxy: DockerProxy;
let metricsBase = '';
let pairs = 0;
let heldRaces = 0;

const stack = useStack({
  name: 'race',
  containers: 2,
  agentArgs: () => [
    '--docker-socket',
    proxy.socket,
    '--metrics-listen',
    metricsBase.replace('http://', ''),
    '--max-sessions-per-container',
    String(LIMIT),
    '--offers-per-second',
    '1000',
  ],
  beforeAgent: async () => {
    proxy = await DockerProxy.start();
    metricsBase = `http://127.0.0.1:${await freePort()}`;
  },
  beforeTeardown: async () => {
    if (process.env.RACE_LOG) writeFileSync(process.env.RACE_LOG, stack.agent.log);
    console.log(
      `# races: ${pairs} connect_pty/end pairs, ${heldRaces} of them with the move held until the end`,
    );
    await proxy.close();
  },
});

type Ending = 'close-message' | 'cloud-disconnect' | 'browser-gone';
const ENDINGS: Ending[] = ['close-message', 'cloud-disconnect', 'browser-gone'];

function end(browser: BrowserPeer, how: Ending): void {
  if (how === 'close-message') browser.send({ type: 'close' });
  else if (how === 'cloud-disconnect') stack.cloud.disconnect(browser.sessionId);
  else browser.close();
}

/**
 * Waits until the agent counts `sessions` live sessions and `slots()` slots against containers. Bounded
 * by progress: sessions still closing (a goodbye flushed, a shell killed) may take a while on a loaded
 * host, so it fails only when the counts stop changing for `stallMs` without being right.
 */
async function countsSettle(sessions: number, slots = () => sessions, stallMs = 30_000): Promise<void> {
  let last = '';
  let changedAt = Date.now();
  for (;;) {
    const s = await scrape(metricsBase);
    const seen = { sessions: s.sum('termgate_sessions'), slots: s.value('termgate_container_slots') };
    if (seen.sessions === sessions && seen.slots === slots()) return;
    if (JSON.stringify(seen) !== last) {
      last = JSON.stringify(seen);
      changedAt = Date.now();
    }
    if (Date.now() - changedAt > stallMs) {
      assert.deepEqual(seen, { sessions, slots: slots() }, 'the counts settled elsewhere');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('accounting under races', () => {
  it(`stays exact over ${ROUNDS * PER_ROUND} racing connect_pty/end pairs`, async () => {
    const [A, B] = stack.containers as [string, string];
    const inspectB = (r: { method: string; path: string }) =>
      r.method === 'GET' && r.path.startsWith(`/containers/${B}/json`);
    for (let round = 0; round < ROUNDS; round++) {
      const browsers = await Promise.all(
        Array.from({ length: PER_ROUND }, () => BrowserPeer.open(stack.cloud, { device: A, devices: [B] })),
      );
      // Even rounds: the move's authorization waits until every session has ended.
      const held = round % 2 === 0 ? proxy.hold(inspectB) : undefined;
      try {
        browsers.forEach((b, i) => {
          b.send({ type: 'connect_pty', container: B });
          end(b, ENDINGS[(round + i) % ENDINGS.length]!);
          pairs++;
        });
        if (held) {
          // Every session has ended; the moves that reached the engine still hold their reserved slot
          // in B, and nothing else is counted.
          await until(() => held.held() > 0, 'a move to reach the engine');
          await countsSettle(0, () => held.held());
          heldRaces += held.held();
        }
      } finally {
        held?.release();
        for (const b of browsers) b.close();
      }
      await countsSettle(0);
    }
    await countsSettle(0);
    await untilNoShells(stack.containers);
  });

  it(`admits exactly ${LIMIT} sessions into each container afterwards`, async () => {
    const sdp = await realOfferSdp();
    for (const container of stack.containers) {
      const open = await Promise.all(
        Array.from({ length: LIMIT }, () => BrowserPeer.open(stack.cloud, { device: container })),
      );
      try {
        const extra = await stack.cloud.offer({
          session_id: `one-too-many-${container}`,
          device_id: container,
          sdp,
          sdp_type: 'offer',
        });
        assert.equal(extra.status === 'error' && extra.code, 'TG_ERR_CAPACITY_CONTAINER');
        await countsSettle(LIMIT);
      } finally {
        for (const b of open) b.close();
      }
      await Promise.all(open.map((b) => stack.cloud.waitForDisconnectNotice(b.sessionId)));
      await countsSettle(0);
    }
  });
});

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
