/**
 * A signaling outage does not touch running terminals (issue 13, point 5). With 20 sessions open, the
 * cloud goes away for 60 s: every session keeps echoing throughout, since the data path is peer to peer;
 * the agent keeps trying to reconnect, with backoff (its connection attempts are counted on the cloud's
 * port while the cloud is gone); once the cloud is back, the agent is connected again and a new session
 * works.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import { freePort, scrapeUntil } from './helpers/metrics.js';
import { untilNoShells } from './helpers/progress.js';
import { useStack } from './helpers/stack.js';

const SESSIONS = 20;
const OUTAGE_SECONDS = Number(process.env.TERMGATE_OUTAGE_SECONDS ?? 60);
/**
 * Connection attempts the agent may make in the outage: with its backoff (0.5 s doubling to 10 s) about
 * 12 in 60 s; without backoff, one every 0.5 s would be 120.
 */
const MAX_ATTEMPTS = Math.ceil(OUTAGE_SECONDS / 10) * 2 + 8;

let metricsBase = '';
const stack = useStack({
  name: 'outage',
  containers: 4,
  agentArgs: () => [
    '--metrics-listen',
    metricsBase.replace('http://', ''),
    '--max-sessions-per-container',
    '10',
  ],
  beforeAgent: async () => {
    metricsBase = `http://127.0.0.1:${await freePort()}`;
  },
});

/** Counts the TCP connections made to `port` while the cloud is away; each is refused at once. */
async function countAttempts(port: number): Promise<{ attempts: () => number; close: () => Promise<void> }> {
  let attempts = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    attempts++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.destroy();
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    attempts: () => attempts,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Every browser types a line of its own and reads it back. */
async function echoAll(browsers: BrowserPeer[], round: number): Promise<void> {
  await Promise.all(
    browsers.map(async (b, i) => {
      b.type(`echo out-${round}-${i}-$((${round}+${i}))\n`);
      await b.waitForScreen(`out-${round}-${i}-${round + i}`, 15_000);
    }),
  );
}

describe('a signaling outage', () => {
  it(`leaves ${SESSIONS} terminals echoing for ${OUTAGE_SECONDS} s; the agent reconnects with backoff; new sessions work after`, async () => {
    const browsers: BrowserPeer[] = [];
    try {
      for (let i = 0; i < SESSIONS; i += 5) {
        browsers.push(
          ...(await Promise.all(
            Array.from({ length: 5 }, (_, j) =>
              BrowserPeer.open(stack.cloud, { device: stack.containers[(i + j) % 4]! }),
            ),
          )),
        );
      }
      await echoAll(browsers, 0);
      const port = Number(new URL(stack.cloud.url).port);

      await stack.cloud.stop();
      const counter = await countAttempts(port);
      await scrapeUntil(metricsBase, (m) => assert.equal(m.value('termgate_signaling_connected'), 0), 20_000);
      const started = performance.now();
      let rounds = 0;
      try {
        while (performance.now() - started < OUTAGE_SECONDS * 1000) {
          await echoAll(browsers, ++rounds);
          await new Promise((r) => setTimeout(r, 1_000));
        }
      } finally {
        await counter.close();
      }
      const attempts = counter.attempts();
      await stack.cloud.restart();
      await stack.cloud.waitForAgent(30_000);
      await scrapeUntil(metricsBase, (m) => assert.equal(m.value('termgate_signaling_connected'), 1), 20_000);
      console.log(
        `# outage of ${OUTAGE_SECONDS} s: ${SESSIONS} sessions echoed in all ${rounds} rounds; ` +
          `the agent tried to reconnect ${attempts} times (at most ${MAX_ATTEMPTS} with backoff)`,
      );
      assert.ok(rounds >= OUTAGE_SECONDS / 16, `${rounds} rounds of echoes in the outage`);
      assert.ok(attempts >= 2, `the agent kept trying to reconnect (${attempts} attempts)`);
      assert.ok(
        attempts <= MAX_ATTEMPTS,
        `the agent backed off: ${attempts} attempts in ${OUTAGE_SECONDS} s`,
      );

      const fresh = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
      browsers.push(fresh);
      await echoAll(browsers, rounds + 1);
      for (const b of browsers) b.close();
      await Promise.all(browsers.map((b) => stack.cloud.waitForDisconnectNotice(b.sessionId)));
      await untilNoShells(stack.containers);
    } finally {
      for (const b of browsers) b.close();
    }
  });
});
