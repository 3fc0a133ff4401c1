/**
 * One terminal session through a TURN relay, as the TURN tests run it in any browser (Chromium through
 * Playwright, Firefox through Puppeteer): the stack with the agent's metrics on, the page tapped and
 * connected, typing and a resize with setup time and echo round trips measured, 20 MB byte-exact by
 * progress, and what the agent's metrics and coturn's log must then show.
 */
import assert from 'node:assert/strict';
import { startBrowserStack, type BrowserStack, type BrowserStackOptions } from './browser-stack.js';
import type { Coturn } from './coturn.js';
import { freePort, scrapeUntil, type Scrape } from './metrics.js';
import {
  bulkOutput,
  echoRoundTrips,
  iceReport,
  setupMs,
  tapTerminal,
  type InitScriptPage,
  type TapPage,
} from './page-tap.js';
import { stateText, typeAndResize, waitConnected } from './terminal-page.js';

export const BULK_BYTES = 20 * 1024 * 1024;
const LINE = 'termgate over a TURN relay 0123456789 abcdefghijklmnopqrstuvwxyz';
const MARKERS = { start: '<<S1001>>\n', end: '<<E1002>>' };
/** Raw mode: the TTY passes the bytes through unchanged; markers computed so the echo cannot match. */
const BULK_COMMAND = `stty raw -echo; echo "<<S$((1000+1))>>"; yes '${LINE}' | head -c ${BULK_BYTES}; echo "<<E$((1000+2))>>"`;
const STALL_MS = 30_000;
const ECHOES = 20;

/** What a session cost to set up and to echo a key, on one path. */
export interface PathMeasure {
  path: string;
  /** What the page's status bar said. */
  shown: string;
  setupMs: number;
  echoP50Ms: number;
  echoP90Ms: number;
}

/** The page as the session steps drive it: tap, navigation, and the shared terminal steps. */
export type SessionPage = TapPage & InitScriptPage & { goto(url: string): Promise<unknown> };

/** A browser stack whose agent serves metrics; `metrics` is their base URL. */
export async function startMeteredStack(
  options: BrowserStackOptions,
): Promise<{ stack: BrowserStack; metrics: string }> {
  const port = await freePort();
  const stack = await startBrowserStack({
    ...options,
    agentArgs: ['--metrics-listen', `127.0.0.1:${port}`, ...(options.agentArgs ?? [])],
  });
  return { stack, metrics: `http://127.0.0.1:${port}` };
}

/**
 * Both sides relay-only through `turn` with its long-term credentials: the agent
 * (`--ice-transport-policy relay`, the server in its environment) over UDP, the only transport its ICE
 * library has for TURN, and the page (from the stand-in) over `browserTransport`.
 */
export function relayOnly(turn: Coturn, browserTransport: 'udp' | 'tcp' = 'udp'): BrowserStackOptions {
  const { username, credential } = turn.credentials();
  return {
    agentArgs: ['--ice-transport-policy', 'relay'],
    // In the environment, not on the command line, where the password would show in ps.
    agentEnv: { TERMGATE_ICE_SERVERS: `turn:${username}:${credential}@127.0.0.1:${turn.port}?transport=udp` },
    cloud: {
      browserIce: {
        ice_servers: [{ urls: turn.url(browserTransport), username, credential }],
        ice_transport_policy: 'relay',
      },
    },
  };
}

/**
 * Taps `page`, opens the stack's terminal in JSON mode and waits until it is connected. If it does not
 * connect, the error carries the page's ICE report and the end of `turn`'s log.
 */
export async function openTappedTerminal(
  page: SessionPage,
  stack: BrowserStack,
  turn?: Coturn,
): Promise<void> {
  await tapTerminal(page);
  const url = new URL(stack.cloud.pageUrl(stack.container));
  url.searchParams.set('encoding', 'json');
  await page.goto(url.href);
  try {
    await waitConnected(page, 30_000);
  } catch (err) {
    const said = await stateText(page).catch(() => '?');
    const ice = await iceReport(page).catch((e: Error) => `no ICE report: ${e.message}`);
    const log = turn ? `\ncoturn's sessions, the last lines:\n${sessionLines(turn.log)}` : '';
    throw new Error(`${(err as Error).message}; the page says: ${said}\n${ice}${log}`);
  }
}

/** coturn's log lines about its sessions (allocations, permissions, errors), not its start-up banner. */
function sessionLines(log: string): string {
  return log
    .split('\n')
    .filter((line) => /session \d+|error|refused/i.test(line))
    .slice(-40)
    .join('\n');
}

/**
 * `openTappedTerminal` on a new page, and once more on another if that one did not connect: Firefox's
 * first relay-only session failed to connect once in CI (not here in dozens of runs; cause unknown).
 * The failed try's ICE report and coturn's log are printed, so a second occurrence says more; a second
 * failure fails the test.
 */
export async function openTappedTerminalOnceMore<P extends SessionPage & { close(): Promise<unknown> }>(
  newPage: () => Promise<P>,
  stack: BrowserStack,
  turn: Coturn,
): Promise<P> {
  const first = await newPage();
  try {
    await openTappedTerminal(first, stack, turn);
    return first;
  } catch (err) {
    console.log(
      `# the first try did not connect; trying once more. ${(err as Error).message.replace(/\n/g, '\n# ')}`,
    );
    await first.close();
  }
  const second = await newPage();
  await openTappedTerminal(second, stack, turn);
  return second;
}

/** The status bar's path (`#path`), once the page has shown it. */
export async function pathText(page: TapPage): Promise<string> {
  await page.waitForSelector('#path:not([hidden])', { timeout: 15_000 });
  return page.evaluate(() => {
    type Doc = { querySelector(selector: string): { textContent: string | null } | null };
    return (globalThis as unknown as { document: Doc }).document.querySelector('#path')?.textContent ?? '';
  });
}

/**
 * Types, follows a resize (`shrink`: the driver's own viewport call), checks the status bar's path and
 * measures setup and echo.
 */
export async function typeResizeAndMeasure(
  page: TapPage,
  shrink: () => Promise<unknown>,
  label: string,
  pathShown: RegExp,
): Promise<PathMeasure> {
  await typeAndResize(page, shrink);
  const shown = await pathText(page);
  assert.match(shown, pathShown);
  const echoes = await echoRoundTrips(page, ECHOES);
  assert.equal(echoes.length, ECHOES);
  return {
    path: label,
    shown,
    setupMs: await setupMs(page),
    echoP50Ms: percentile(echoes, 50),
    echoP90Ms: percentile(echoes, 90),
  };
}

/** 20 MB of known output through the page, byte-exact, waited for by progress. */
export async function moveBulk(page: TapPage, label: string): Promise<void> {
  const result = await bulkOutput(page, BULK_COMMAND, MARKERS, STALL_MS);
  assert.equal(result.bytes, BULK_BYTES);
  assert.equal(result.sha256, await expectedSha256());
  console.log(`# ${label}: 20 MB byte-exact at ${result.mbPerSecond.toFixed(1)} MB/s`);
}

/** The path metrics of one live session on `path`. */
export function assertPathMetrics(s: Scrape, path: 'direct' | 'relay'): void {
  // A direct pair's browser end is `prflx` when the browser's check reached the agent before its
  // candidate did (trickled through the cloud); on loopback that is a matter of timing.
  const kinds = path === 'direct' ? ['host', 'prflx'] : ['relay'];
  const sessions = kinds.map((k) => s.sum('termgate_sessions_by_path', { path: k }));
  assert.equal(
    sessions.reduce((a, b) => a + b, 0),
    1,
    `sessions by path ${kinds.join('/')}: ${sessions.join('/')}`,
  );
  // A histogram's series exists only once its path was observed: summed, an absent one is 0.
  const rtts = kinds.map((k) => s.sum('termgate_path_rtt_seconds_count', { path: k }));
  assert.ok(
    rtts.some((n) => n >= 1),
    'an RTT was observed',
  );
}

/**
 * After the bulk: the agent counted it as relayed and no host session, and coturn allocated for both
 * the browser and the agent with its long-term user.
 */
export async function assertRelayedBulk(metrics: string, turn: Coturn): Promise<void> {
  const s = await scrapeUntil(metrics, (m) =>
    assert.ok(m.value('termgate_relayed_bytes_total') >= BULK_BYTES),
  );
  assert.equal(s.value('termgate_sessions_by_path', { path: 'host' }), 0);
  const { username } = turn.credentials();
  const allocations = turn.allocations().filter((a) => a.username === username);
  assert.ok(allocations.length >= 2, turn.log.slice(-3000));
}

export function printMeasured(measured: PathMeasure[]): void {
  for (const m of measured) {
    console.log(
      `# path ${m.path.padEnd(28)} setup ${m.setupMs.toFixed(0).padStart(5)} ms   ` +
        `echo p50 ${m.echoP50Ms.toFixed(2)} ms, p90 ${m.echoP90Ms.toFixed(2)} ms   (page: ${m.shown})`,
    );
  }
}

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
