/**
 * A host's worth of sessions: 100 concurrent terminals across 10 containers on a 2-worker agent, each
 * echoing its own token, then all closed with no shell left behind. The echoes and the cleanup are
 * bounded by progress (an echo or a shell gone within STALL_MS), not by a total deadline.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import { untilNoShells, untilProgress } from './helpers/progress.js';
import { useStack } from './helpers/stack.js';

const SESSIONS = 100;
const CONTAINERS = 10;
const CONCURRENCY = 20;
const STALL_MS = 60_000;

const stack = useStack({
  name: 'scale',
  containers: CONTAINERS,
  agentArgs: ['--offers-per-second', '1000'],
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('scale', () => {
  it(`holds ${SESSIONS} concurrent sessions across ${CONTAINERS} containers, each echoing its own token`, async () => {
    const browsers: BrowserPeer[] = [];
    const setupMs: number[] = [];
    try {
      for (let start = 0; start < SESSIONS; start += CONCURRENCY) {
        const settled = await Promise.allSettled(
          Array.from({ length: Math.min(CONCURRENCY, SESSIONS - start) }, async (_, j) => {
            const t0 = performance.now();
            const browser = await BrowserPeer.open(stack.cloud, {
              device: stack.containers[(start + j) % CONTAINERS]!,
              timeoutMs: 60_000,
            });
            setupMs.push(performance.now() - t0);
            return browser;
          }),
        );
        const batch = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        browsers.push(...batch);
        const failed = settled.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
      }
      assert.equal(browsers.length, SESSIONS);
      // Every session is live at once: type into all, then read every token back.
      browsers.forEach((b, i) => b.type(`echo unique-${i}-$((${i}*3))\n`));
      const echoed = () => browsers.filter((b, i) => b.screen().includes(`unique-${i}-${i * 3}`)).length;
      await untilProgress({
        what: `${SESSIONS} echoes`,
        stallMs: STALL_MS,
        progress: echoed,
        done: () => echoed() === SESSIONS,
      });
      // No session saw another's token.
      browsers.forEach((b, i) => {
        const others = b.screen().match(/unique-(\d+)-\d+/g) ?? [];
        assert.ok(
          others.every((t) => t.startsWith(`unique-${i}-`)),
          `session ${i} saw only its own output`,
        );
      });
      setupMs.sort((a, b) => a - b);
      console.log(
        `# ${SESSIONS} sessions: offer→pty_connected p50 ${percentile(setupMs, 50).toFixed(0)} ms, ` +
          `p99 ${percentile(setupMs, 99).toFixed(0)} ms (concurrency ${CONCURRENCY})`,
      );
    } finally {
      for (const b of browsers) b.close();
    }
    await untilNoShells(stack.containers);
  });
});
