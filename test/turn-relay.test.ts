/**
 * TURN relay through a real coturn (issue 14): Chromium with `iceTransportPolicy: 'relay'` and the agent
 * with `--ice-transport-policy relay` open a terminal through coturn, type, follow a resize and move
 * 20 MB byte-exact; coturn's own log shows the allocations. Long-term credentials, time-limited ones
 * derived from `--turn-secret`, and ICE servers the cloud hands the agent in the offer (`ice_servers`).
 * The agent reaches coturn over UDP (all its ICE library, libjuice, does); Chromium over UDP and over
 * TCP. Over TCP Chromium's checks carry a tie-breaker of 0, which libjuice alone refuses: the agent's
 * TURN proxy repairs them (docs/turn.md), and without it (`--turn-proxy off`) Chromium cannot connect,
 * which the last test checks, so that a libjuice that takes them one day shows here. The path
 * metrics and the page's status bar say relayed; a direct session beside them says host, and the file
 * prints setup time and echo round trip of both, side by side. Runs inside a private network namespace
 * with only `lo` (the file re-executes itself under `unshare -n`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { OfferIceServer } from '../common/protocol/signaling.js';
import type { BrowserStack, BrowserStackOptions } from './helpers/browser-stack.js';
import { launchChromium, type ChromiumSession } from './helpers/chromium.js';
import { Coturn, restCredentials } from './helpers/coturn.js';
import { scrapeUntil } from './helpers/metrics.js';
import { IN_NETNS, rerunInNetns } from './helpers/netns.js';
import { run, stateText, until } from './helpers/terminal-page.js';
import {
  assertPathMetrics,
  assertRelayedBulk,
  moveBulk,
  openTappedTerminal,
  printMeasured,
  relayOnly,
  startMeteredStack,
  typeResizeAndMeasure,
  type PathMeasure,
} from './helpers/turn-session.js';

const SELF = fileURLToPath(import.meta.url);

/** One side of the "host vs relay" note: what a session cost to set up and to echo a key. */
const measured: PathMeasure[] = [];

/** A stack (container, stand-in, agent with metrics on) and a Chromium for its page; closes both. */
async function withStack(
  options: BrowserStackOptions,
  body: (stack: BrowserStack, browser: ChromiumSession, metrics: string) => Promise<void>,
): Promise<void> {
  const { stack, metrics } = await startMeteredStack(options);
  let browser: ChromiumSession | undefined;
  try {
    browser = await launchChromium({ origin: stack.url });
    await body(stack, browser, metrics);
  } finally {
    await browser?.close();
    await stack.close();
  }
}

/** The page, connected in JSON mode, with the tap on its channel. */
async function openTerminal(stack: BrowserStack, browser: ChromiumSession): Promise<Page> {
  const page = await browser.context.newPage();
  await openTappedTerminal(page, stack);
  return page;
}

/** Types, follows a resize, measures setup and echo, and checks the status bar's path. */
async function typeResizeAndRecord(page: Page, label: string, pathShown: RegExp): Promise<void> {
  const shrink = () => page.setViewportSize({ width: 700, height: 400 });
  measured.push(await typeResizeAndMeasure(page, shrink, label, pathShown));
}

async function writeSecretFile(secret: string): Promise<{ file: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'termgate-turn-secret-'));
  const file = path.join(dir, 'secret');
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return { file, remove: () => rm(dir, { recursive: true, force: true }) };
}

if (!IN_NETNS) {
  rerunInNetns(SELF, 'TURN relay through coturn, in a network namespace with only loopback', 900_000);
} else {
  void describe('TURN relay through coturn (inside the namespace)', { timeout: 800_000 }, () => {
    after(() => printMeasured(measured));

    void it('a direct session says direct in the status bar, host (or prflx) in the path metrics', async () => {
      await withStack({}, async (stack, browser, metrics) => {
        const page = await openTerminal(stack, browser);
        await typeResizeAndRecord(page, 'host (direct)', /^direct · RTT \d/);
        const s = await scrapeUntil(metrics, (m) => assertPathMetrics(m, 'direct'));
        assert.equal(s.value('termgate_sessions_by_path', { path: 'relay' }), 0);
        assert.equal(s.value('termgate_relayed_bytes_total'), 0);
        await page.close();
      });
    });

    /** Both sides relay-only, long-term credentials, Chromium reaching coturn over `transport`: the whole session. */
    async function relayedSession(transport: 'udp' | 'tcp'): Promise<Coturn> {
      const label = `relay (coturn, ${transport})`;
      const turn = await Coturn.start({ auth: { kind: 'long-term', username: 'tg', password: 'relay-pw' } });
      try {
        await withStack(relayOnly(turn, transport), async (stack, browser, metrics) => {
          const page = await openTerminal(stack, browser);
          const shown = new RegExp(`^relayed \\(TURN/${transport}\\) · RTT \\d`);
          await typeResizeAndRecord(page, label, shown);
          await scrapeUntil(metrics, (m) => assertPathMetrics(m, 'relay'));
          await moveBulk(page, label);
          // The browser's allocation and the agent's, both made with the long-term user.
          await assertRelayedBulk(metrics, turn);
          await page.close();
        });
      } finally {
        await turn.close();
      }
      return turn;
    }

    void it('long-term credentials: both sides relay-only over UDP, type, resize, 20 MB byte-exact', async () => {
      const turn = await relayedSession('udp');
      assert.deepEqual(turn.tcpClients(), [], 'nobody reached coturn over TCP');
    });

    void it('Chromium reaches coturn over TCP, the agent relay-only over UDP: type, resize, 20 MB byte-exact', async () => {
      const turn = await relayedSession('tcp');
      assert.ok(
        turn.tcpClients().length > 0,
        `Chromium's TCP connection to coturn: ${turn.log.slice(-2000)}`,
      );
    });

    void it('without the TURN proxy (--turn-proxy off), Chromium over TCP is refused: the proxy is what carries it', async () => {
      const turn = await Coturn.start({ auth: { kind: 'long-term', username: 'tg', password: 'relay-pw' } });
      try {
        const options = relayOnly(turn, 'tcp');
        options.agentArgs = [...(options.agentArgs ?? []), '--turn-proxy', 'off'];
        await withStack(options, async (stack, browser) => {
          const page = await browser.context.newPage();
          await page.goto(stack.cloud.pageUrl(stack.container));
          const said = await until(
            'the page to say the peer failed',
            async () => {
              const text = await stateText(page);
              return /failed/.test(text) && text;
            },
            30_000,
          );
          assert.doesNotMatch(said, /connected/);
          assert.ok(turn.tcpClients().length > 0, "Chromium's TCP connection to coturn");
          await page.close();
        });
      } finally {
        await turn.close();
      }
    });

    void it('time-limited credentials derived from --turn-secret-file, a username per session', async () => {
      const secret = randomBytes(24).toString('base64');
      const turn = await Coturn.start({ auth: { kind: 'rest', secret } });
      const secretFile = await writeSecretFile(secret);
      try {
        const browserCredentials = restCredentials(secret, 'browser', 3600);
        await withStack(
          {
            agentArgs: [
              '--ice-transport-policy',
              'relay',
              '--ice-server',
              turn.url('udp'),
              '--turn-secret-file',
              secretFile.file,
            ],
            cloud: {
              browserIce: {
                ice_servers: [{ urls: turn.url('udp'), ...browserCredentials }],
                ice_transport_policy: 'relay',
              },
            },
          },
          async (stack, browser, metrics) => {
            const page = await openTerminal(stack, browser);
            await typeResizeAndRecord(page, 'relay (coturn, REST)', /^relayed \(TURN\/udp\) · RTT \d/);
            await scrapeUntil(metrics, (m) => assertPathMetrics(m, 'relay'));
            await moveBulk(page, 'relay (coturn, REST)');
            const allocations = turn.allocations();
            assert.ok(
              allocations.some((a) => a.username === browserCredentials.username),
              `the browser's allocation: ${JSON.stringify(allocations)}`,
            );
            // The agent's: a username of its own for the session, expiring a day from now (the default TTL).
            const agents = allocations.filter((a) => /^\d+:[0-9a-f-]{36}$/.test(a.username));
            assert.ok(agents.length >= 1, `the agent's allocation: ${JSON.stringify(allocations)}`);
            const expiry = Number(agents[0]!.username.split(':')[0]);
            assert.ok(Math.abs(expiry - (Date.now() / 1000 + 86_400)) < 600, `expiry ${expiry}`);
            await page.close();
          },
        );
      } finally {
        await secretFile.remove();
        await turn.close();
      }
    });

    void it('uses the ICE servers the cloud puts in the offer, for that session only', async () => {
      const secret = randomBytes(24).toString('base64');
      const turn = await Coturn.start({ auth: { kind: 'rest', secret } });
      try {
        const issued: string[] = [];
        const agentIceServers = (sessionId: string): OfferIceServer[] => {
          const credentials = restCredentials(secret, `cloud-${sessionId}`, 600);
          issued.push(credentials.username);
          return [{ urls: [turn.url('udp')], ...credentials }];
        };
        await withStack(
          {
            // Relay-only with no TURN server of its own: it can connect only through the offer's.
            agentArgs: ['--ice-transport-policy', 'relay'],
            cloud: {
              agentIceServers,
              browserIce: {
                ice_servers: [{ urls: turn.url('udp'), ...restCredentials(secret, 'browser', 3600) }],
                ice_transport_policy: 'relay',
              },
            },
          },
          async (stack, browser, metrics) => {
            const page = await openTerminal(stack, browser);
            await run(page, 'echo offered-$((6*7))', /^offered-42$/);
            await scrapeUntil(metrics, (m) => assertPathMetrics(m, 'relay'));
            assert.equal(issued.length, 1);
            assert.ok(
              turn.allocations().some((a) => a.username === issued[0]),
              `an allocation with the offer's credentials: ${JSON.stringify(turn.allocations())}`,
            );
            await page.close();
          },
        );
      } finally {
        await turn.close();
      }
    });
  });
}
