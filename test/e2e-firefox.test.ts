/**
 * End to end in a real headless Firefox ESR (WebDriver BiDi): the page served by the cloud stand-in, the
 * real agent executable, a real container, the same flow as the Chromium test (type, resize, `stty
 * size`, close, no shell left), plus bulk output and Firefox's mDNS-hidden host candidates.
 *
 * Runs inside a private network namespace (the file re-executes itself under `unshare -n`) with `lo` and
 * a route that leads nowhere: Firefox gathers no loopback candidate, only its default route's address
 * (10.99.0.1), from which it reaches the agent bound to 127.0.0.1. The tests require that nothing tried
 * to reach any address through that route: neither Firefox (its background services are turned off)
 * nor the agent (it looks up no mDNS name).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import type { Page } from 'puppeteer-core';
import { startBrowserStack, type BrowserStack } from './helpers/browser-stack.js';
import { launchFirefox, type FirefoxSession } from './helpers/firefox.js';
import { DEAD_END_ADDRESS, deadEndDestinations, IN_NETNS, rerunInNetns } from './helpers/netns.js';
import {
  closeLeavesNoShell,
  run,
  screen,
  stateText,
  typeAndResize,
  waitConnected,
} from './helpers/terminal-page.js';
import { recordPeerConnections, type RecordedPeers } from './helpers/page-peers.js';

const SELF = fileURLToPath(import.meta.url);

const gathered = (page: Page) => page.evaluate(() => (globalThis as unknown as RecordedPeers).gathered);

/** Opens the terminal page on the stack's container, with the candidates recorded. */
async function openTerminal(browser: FirefoxSession, stack: BrowserStack): Promise<Page> {
  const page = await browser.newPage();
  await page.evaluateOnNewDocument(recordPeerConnections);
  await page.goto(stack.cloud.pageUrl(stack.container));
  try {
    await waitConnected(page);
  } catch (err) {
    const state = await stateText(page).catch(() => '?');
    throw new Error(`${(err as Error).message}; the page says: ${state}`);
  }
  return page;
}

if (!IN_NETNS) {
  rerunInNetns(
    SELF,
    'Firefox end to end, in a network namespace with loopback and a dead-end route',
    300_000,
    {
      deadEndRoute: true,
    },
  );
} else {
  void describe('Firefox end to end (inside the namespace)', { timeout: 240_000 }, () => {
    let stack: BrowserStack | undefined;
    let browser: FirefoxSession | undefined;

    // Each test has its own agent and browser; a failed one must not leave them (or a shell) behind.
    afterEach(async () => {
      await browser?.close();
      await stack?.close();
      browser = undefined;
      stack = undefined;
    });

    void it('types into the container, follows a resize, streams bulk output, and leaves no shell when the tab closes', async () => {
      stack = await startBrowserStack();
      browser = await launchFirefox({ viewport: { width: 1000, height: 640 } });
      const page = await openTerminal(browser, stack);
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      assert.match(await stateText(page), /connected to .*msgpack/);
      const candidates = await gathered(page);
      assert.ok(
        candidates.some((c) => c.includes(` ${DEAD_END_ADDRESS} `)),
        `Firefox offered its dead-end route's address: ${candidates.join(' | ')}`,
      );

      await typeAndResize(page, () => page.setViewport({ width: 760, height: 420 }));

      // About 290 KB of output: many 16 KiB messages, whatever size Firefox advertised.
      const done = `ff-${randomBytes(6).toString('hex')}`;
      await run(page, `seq 1 50000; echo ${done}`, new RegExp(`^${done}$`));
      assert.ok(
        (await screen(page)).split('\n').some((l) => l.trimEnd() === '50000'),
        'the last line arrived',
      );

      await closeLeavesNoShell(page, stack);
      assert.deepEqual(errors, []);
      assert.deepEqual(await deadEndDestinations(), [], 'nothing was tried beyond the namespace');
    });

    void it('connects when Firefox hides its address behind an mDNS name, and the agent looks nothing up', async () => {
      // Firefox pairs an mDNS-hidden candidate with no loopback candidate (nothing was checked against
      // 127.0.0.1), so this agent offers the namespace's other address, as a real host offers its own.
      stack = await startBrowserStack({ bindAddress: DEAD_END_ADDRESS });
      browser = await launchFirefox({ obfuscateHostAddresses: true });
      const page = await openTerminal(browser, stack);
      const candidates = await gathered(page);
      assert.ok(candidates.length > 0, 'Firefox gathered candidates');
      assert.ok(
        candidates.every((c) => /^candidate:\S+ \d+ \S+ \d+ [0-9a-f-]+\.local /.test(c)),
        `every candidate is an mDNS name: ${candidates.join(' | ')}`,
      );
      // The agent cannot resolve such a name (only the browser's own LAN could, by multicast); it drops
      // the candidate and learns Firefox's address from its connectivity checks (peer reflexive).
      const token = `ff-${randomBytes(6).toString('hex')}`;
      await run(page, `echo ${token}`, new RegExp(`^${token}$`));
      await closeLeavesNoShell(page, stack);
      assert.deepEqual(await deadEndDestinations(), [], 'no lookup of the mDNS name, nor anything else');
    });
  });
}
