/**
 * TURN relay through a real coturn (issue 14): Chromium with `iceTransportPolicy: 'relay'` and the agent
 * with `--ice-transport-policy relay` open a terminal through coturn, type, follow a resize and move
 * 20 MB byte-exact; coturn's own log shows the allocations. Long-term credentials, time-limited ones
 * derived from `--turn-secret`, and ICE servers the cloud hands the agent in the offer (`ice_servers`).
 * All over UDP: the agent's ICE library (libjuice) reaches TURN servers over UDP only, and Chromium
 * over TURN/TCP does not get through to it (docs/turn.md, "What does not work"). The path
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
import type { CloudServerOptions } from '../standin/cloud/CloudServer.js';
import { startBrowserStack, type BrowserStack } from './helpers/browser-stack.js';
import { launchChromium, type ChromiumSession } from './helpers/chromium.js';
import { Coturn, restCredentials } from './helpers/coturn.js';
import { freePort, scrapeUntil, type Scrape } from './helpers/metrics.js';
import { IN_NETNS, rerunInNetns } from './helpers/netns.js';
import { bulkOutput, echoRoundTrips, setupMs, tapTerminal } from './helpers/page-tap.js';

const SELF = fileURLToPath(import.meta.url);
const BULK_BYTES = 20 * 1024 * 1024;
const LINE = 'termgate over a TURN relay 0123456789 abcdefghijklmnopqrstuvwxyz';
const START = '<<S1001>>\n';
const END = '<<E1002>>';
/** Raw mode: the TTY passes the bytes through unchanged; markers computed so the echo cannot match. */
const BULK_COMMAND = `stty raw -echo; echo "<<S$((1000+1))>>"; yes '${LINE}' | head -c ${BULK_BYTES}; echo "<<E$((1000+2))>>"`;
const STALL_MS = 30_000;
const ECHOES = 20;

/** One side of the "host vs relay" note: what a session cost to set up and to echo a key. */
const measured: Array<{ path: string; setupMs: number; echoP50Ms: number; echoP90Ms: number }> = [];

function expectedSha256(): Promise<string> {
  const line = `${LINE}\n`;
  const whole = line.repeat(Math.ceil(BULK_BYTES / line.length)).slice(0, BULK_BYTES);
  return crypto.subtle
    .digest('SHA-256', new TextEncoder().encode(whole))
    .then((h) => Buffer.from(h).toString('hex'));
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface RelayCase {
  agentArgs?: string[];
  agentEnv?: Record<string, string>;
  cloud?: Partial<CloudServerOptions>;
}

/** A stack (container, stand-in, agent with metrics on) and a Chromium for its page; closes both. */
async function withStack(
  options: RelayCase,
  body: (stack: BrowserStack, browser: ChromiumSession, metrics: string) => Promise<void>,
): Promise<void> {
  const port = await freePort();
  const stack = await startBrowserStack({
    ...options,
    agentArgs: ['--metrics-listen', `127.0.0.1:${port}`, ...(options.agentArgs ?? [])],
  });
  let browser: ChromiumSession | undefined;
  try {
    browser = await launchChromium({ origin: stack.url });
    await body(stack, browser, `http://127.0.0.1:${port}`);
  } finally {
    await browser?.close();
    await stack.close();
  }
}

/** The page, connected in JSON mode, with the tap on its channel. */
async function openTerminal(stack: BrowserStack, browser: ChromiumSession): Promise<Page> {
  const page = await browser.context.newPage();
  await tapTerminal(page);
  const url = new URL(stack.cloud.pageUrl(stack.container));
  url.searchParams.set('encoding', 'json');
  await page.goto(url.href);
  await page
    .waitForSelector('#state[data-state="connected"]', { timeout: 30_000 })
    .catch(async (err: Error) => {
      throw new Error(`${err.message}; the page says: ${await page.textContent('#state')}`);
    });
  return page;
}

const screen = (page: Page) =>
  page.evaluate(() =>
    (globalThis as unknown as { termgate: { screenText(): string } }).termgate.screenText(),
  );

/** Types a command and waits for a screen line that matches `expect`. */
async function run(page: Page, command: string, expect: RegExp): Promise<void> {
  await page.click('#terminal');
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
  await page
    .waitForFunction(
      (source) =>
        (globalThis as unknown as { termgate: { screenText(): string } }).termgate
          .screenText()
          .split('\n')
          .some((l) => new RegExp(source).test(l.trimEnd())),
      expect.source,
      { timeout: 15_000 },
    )
    .catch(async (err: Error) => {
      throw new Error(`${err.message}; the screen shows:\n${(await screen(page)).trimEnd()}`);
    });
}

/** Types, follows a resize, measures setup and echo, and checks the status bar's path. */
async function typeResizeAndMeasure(page: Page, label: string, pathShown: RegExp): Promise<void> {
  const token = `turn-${randomBytes(6).toString('hex')}`;
  await run(page, `echo ${token}`, new RegExp(`^${token}$`));
  await page.setViewportSize({ width: 700, height: 400 });
  await page.waitForFunction(
    () => (globalThis as unknown as { termgate: { term: { cols: number } } }).termgate.term.cols < 100,
  );
  const size = await page.evaluate(() => {
    const t = (globalThis as unknown as { termgate: { term: { cols: number; rows: number } } }).termgate.term;
    return { cols: t.cols, rows: t.rows };
  });
  await run(page, 'stty size', new RegExp(`^${size.rows} ${size.cols}$`));
  await page.waitForSelector('#path:not([hidden])', { timeout: 15_000 });
  assert.match((await page.textContent('#path')) ?? '', pathShown);
  const echoes = await echoRoundTrips(page, ECHOES);
  assert.equal(echoes.length, ECHOES);
  measured.push({
    path: label,
    setupMs: await setupMs(page),
    echoP50Ms: percentile(echoes, 50),
    echoP90Ms: percentile(echoes, 90),
  });
}

/** 20 MB of known output through the page, byte-exact. */
async function moveBulk(page: Page, label: string): Promise<void> {
  const result = await bulkOutput(page, BULK_COMMAND, { start: START, end: END }, STALL_MS);
  assert.equal(result.bytes, BULK_BYTES);
  assert.equal(result.sha256, await expectedSha256());
  console.log(`# ${label}: 20 MB byte-exact at ${result.mbPerSecond.toFixed(1)} MB/s`);
}

/** The path metrics of one live session on `path`. */
function assertPathMetrics(s: Scrape, path: 'host' | 'relay'): void {
  assert.equal(s.value('termgate_sessions_by_path', { path }), 1);
  assert.ok(s.value('termgate_path_rtt_seconds_count', { path }) >= 1, 'an RTT was observed');
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
    after(() => {
      for (const m of measured) {
        console.log(
          `# path ${m.path.padEnd(28)} setup ${m.setupMs.toFixed(0).padStart(5)} ms   ` +
            `echo p50 ${m.echoP50Ms.toFixed(2)} ms, p90 ${m.echoP90Ms.toFixed(2)} ms`,
        );
      }
    });

    void it('a direct session says host: in the status bar and in the path metrics', async () => {
      await withStack({}, async (stack, browser, metrics) => {
        const page = await openTerminal(stack, browser);
        await typeResizeAndMeasure(page, 'host (direct)', /^direct · RTT \d/);
        const s = await scrapeUntil(metrics, (m) => assertPathMetrics(m, 'host'));
        assert.equal(s.value('termgate_sessions_by_path', { path: 'relay' }), 0);
        assert.equal(s.value('termgate_relayed_bytes_total'), 0);
        await page.close();
      });
    });

    void it('long-term credentials: both sides relay-only over UDP, type, resize, 20 MB byte-exact', async () => {
      const turn = await Coturn.start({ auth: { kind: 'long-term', username: 'tg', password: 'relay-pw' } });
      try {
        const { username, credential } = turn.credentials();
        await withStack(
          {
            agentArgs: ['--ice-transport-policy', 'relay'],
            // In the environment, not on the command line, where the password would show in ps.
            agentEnv: { TERMGATE_ICE_SERVERS: `turn:tg:relay-pw@127.0.0.1:${turn.port}?transport=udp` },
            cloud: {
              browserIce: {
                ice_servers: [{ urls: turn.url('udp'), username, credential }],
                ice_transport_policy: 'relay',
              },
            },
          },
          async (stack, browser, metrics) => {
            const page = await openTerminal(stack, browser);
            await typeResizeAndMeasure(page, 'relay (coturn, udp)', /^relayed \(TURN\/udp\) · RTT \d/);
            await scrapeUntil(metrics, (m) => assertPathMetrics(m, 'relay'));
            await moveBulk(page, 'relay (coturn, udp)');
            const s = await scrapeUntil(metrics, (m) =>
              assert.ok(m.value('termgate_relayed_bytes_total') >= BULK_BYTES),
            );
            assert.equal(s.value('termgate_sessions_by_path', { path: 'host' }), 0);
            // The browser's allocation and the agent's, both made with the long-term user.
            const allocations = turn.allocations();
            assert.ok(allocations.filter((a) => a.username === 'tg').length >= 2, turn.log.slice(-3000));
            await page.close();
          },
        );
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
            await typeResizeAndMeasure(page, 'relay (coturn, REST)', /^relayed \(TURN\/udp\) · RTT \d/);
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
