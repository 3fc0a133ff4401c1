/**
 * A vPLC restart is survivable (issue 13, point 6). When a container stops, each of its sessions gets
 * `pty_disconnected` with reason `container-stopped` and lives on; once the container runs again, a
 * `connect_pty` to it attaches a new shell in the same peer connection, without a new offer. Five
 * node-datachannel sessions on one container through a `docker restart`; then the page in a real
 * Chromium, reattaching by its button and by itself. Runs inside a private network namespace with only
 * `lo` (the file re-executes itself under `unshare -n`), as the browser tests do.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { OutboundMessage } from '../common/protocol/terminal-messages.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { startBrowserStack, type BrowserStack } from './helpers/browser-stack.js';
import { launchChromium, type ChromiumSession } from './helpers/chromium.js';
import { cycleContainer } from './helpers/containers.js';
import { IN_NETNS, rerunInNetns } from './helpers/netns.js';
import { pageState, screenShows, sessionId } from './helpers/page-api.js';
import { untilNoShells } from './helpers/progress.js';
import { useStack } from './helpers/stack.js';

const SELF = fileURLToPath(import.meta.url);
const SESSIONS = 5;
/** A stop takes the engine's grace (1 s here) and a start about a second on this machine: generous. */
const RESTART_MS = 30_000;

const marker = (word: string) => `${word}-${randomBytes(4).toString('hex')}`;
const isDisconnect = (m: OutboundMessage) => m.type === 'pty_disconnected';
const isConnected = (m: OutboundMessage) => m.type === 'pty_connected';

/** Types `echo <word>-$((6*7))` and waits for `<word>-42`: the shell evaluated it, not an echo of keys. */
async function echo(browser: BrowserPeer, word: string): Promise<void> {
  const token = marker(word);
  browser.type(`echo ${token}-$((6*7))\n`);
  await browser.waitForScreen(`${token}-42`, RESTART_MS);
}

if (!IN_NETNS) {
  rerunInNetns(SELF, 'container restart, in a network namespace with only loopback', 400_000);
} else {
  const stack = useStack({ name: 'restart', containers: 2, agentArgs: ['--idle-timeout', '600'] });

  void describe('a container restart, seen by simulated browsers', { timeout: 180_000 }, () => {
    it(`docker restart under ${SESSIONS} sessions: each is told container-stopped and attaches again in its channel`, async () => {
      const [plc, bystanderPlc] = stack.containers as [string, string];
      const browsers = await Promise.all(
        Array.from({ length: SESSIONS }, () => BrowserPeer.open(stack.cloud, { device: plc })),
      );
      const bystander = await BrowserPeer.open(stack.cloud, { device: bystanderPlc });
      try {
        await Promise.all(browsers.map((b) => echo(b, 'before')));
        await cycleContainer(plc, 'restart');
        for (const b of browsers) {
          const gone = await b.waitFor(isDisconnect, RESTART_MS);
          assert.deepEqual(gone, { type: 'pty_disconnected', reason: 'container-stopped' });
          assert.equal(b.channelClosed, false, 'the session and its channel stay');
        }
        // Another container's session never noticed.
        await echo(bystander, 'bystander');
        assert.equal(bystander.messages.filter(isDisconnect).length, 0);

        // Each session, in its same data channel, attaches again (at most 3 connect_pty in a row reach
        // the engine per session, so all five at once are fine).
        for (const b of browsers) b.send({ type: 'connect_pty', container: plc });
        for (const b of browsers) {
          assert.deepEqual(await b.waitFor(isConnected, RESTART_MS), {
            type: 'pty_connected',
            container: plc,
          });
        }
        // A BrowserPeer has one peer connection and one channel for its life: this is the same session.
        await Promise.all(browsers.map((b) => echo(b, 'after')));
      } finally {
        for (const b of [...browsers, bystander]) b.close();
      }
      await untilNoShells(stack.containers);
    });

    it('connect_pty while the container is down is refused with TG_ERR_CONTAINER_NOT_RUNNING, then works', async () => {
      const plc = stack.containers[0]!;
      const browser = await BrowserPeer.open(stack.cloud, { device: plc });
      try {
        await cycleContainer(plc, 'stop');
        assert.deepEqual(await browser.waitFor(isDisconnect, RESTART_MS), {
          type: 'pty_disconnected',
          reason: 'container-stopped',
        });
        browser.send({ type: 'connect_pty', container: plc });
        const refused = await browser.waitFor((m) => m.type === 'error', RESTART_MS);
        assert.equal(refused.type === 'error' && refused.code, 'TG_ERR_CONTAINER_NOT_RUNNING');
        await cycleContainer(plc, 'start');
        browser.send({ type: 'connect_pty', container: plc });
        await browser.waitFor(isConnected, RESTART_MS);
        await echo(browser, 'started');
        // A shell that exits is still told apart from a container that stopped.
        browser.type('exit\n');
        assert.deepEqual(await browser.waitFor(isDisconnect, RESTART_MS), {
          type: 'pty_disconnected',
          reason: 'shell-exited',
        });
      } finally {
        browser.close();
      }
      await untilNoShells(stack.containers);
    });
  });

  void describe('a container restart, seen by the page in Chromium', { timeout: 240_000 }, () => {
    let page: Page;
    let browserStack: BrowserStack;
    let chromium: ChromiumSession;

    before(async () => {
      browserStack = await startBrowserStack();
      chromium = await launchChromium({ origin: browserStack.url });
      page = await chromium.context.newPage();
      await page.goto(browserStack.cloud.pageUrl(browserStack.container));
      await pageState(page, 'connected');
    });

    after(async () => {
      await page?.close();
      await chromium?.close();
      await browserStack?.close();
    });

    it('shows container-stopped and reattaches the same session with the button', async () => {
      const session = await sessionId(page);
      await typeAndSee(page, 'before');
      assert.equal(await page.isHidden('#reattach'), true, 'no reattach button while attached');
      await browserStack.lifecycle('restart');
      await pageState(page, 'detached');
      await screenShows(page, /stopped \(container-stopped\)/);
      await page.click('#reattach');
      await pageState(page, 'connected');
      await typeAndSee(page, 'clicked');
      assert.equal(await sessionId(page), session, 'the same session: no new offer');
    });

    it('reattaches by itself with the auto-reattach setting, which a reload keeps', async () => {
      await page.check('#auto-reattach');
      await page.reload();
      await pageState(page, 'connected');
      assert.equal(await page.isChecked('#auto-reattach'), true, 'the setting outlives a reload');
      const session = await sessionId(page);

      // Down for a while: the page's tries are refused (shown in its state) until the container is back.
      await browserStack.lifecycle('stop');
      await pageState(page, 'detached');
      await page.waitForSelector('#state:text-matches("not back: .*TG_ERR_CONTAINER_NOT_RUNNING")', {
        timeout: RESTART_MS,
      });
      await browserStack.lifecycle('start');
      await pageState(page, 'connected');
      await typeAndSee(page, 'auto');

      // And a plain restart, which may be over before the page's first try.
      await browserStack.lifecycle('restart');
      await screenShows(page, /stopped \(container-stopped\)[\s\S]*stopped \(container-stopped\)/);
      await pageState(page, 'connected');
      await typeAndSee(page, 'auto-again');
      assert.equal(await sessionId(page), session, 'the same session throughout');
    });
  });
}

/** Types `echo <word>-$((6*7))` into the page's terminal and waits for a screen line `<word>-42`. */
async function typeAndSee(page: Page, word: string): Promise<void> {
  const token = marker(word);
  await page.click('#terminal');
  await page.keyboard.type(`echo ${token}-$((6*7))`);
  await page.keyboard.press('Enter');
  await screenShows(page, new RegExp(`^${token}-42\\s*$`, 'm'));
}
