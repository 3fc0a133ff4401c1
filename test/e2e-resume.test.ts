/**
 * The page resumes by itself (issue 13, point 3), in a real headless Chromium against the real agent
 * (with `--resume-grace 30`) and a real container: a reload of the tab resumes the same shell and shows
 * what was printed while the tab was gone; a dropped peer connection shows "reconnecting…" and the same
 * shell goes on, on the same screen. The resume token stays out of the URL. Runs inside a private
 * network namespace with only `lo` (the file re-executes itself under `unshare -n`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { startBrowserStack, type BrowserStack } from './helpers/browser-stack.js';
import { launchChromium, type ChromiumSession } from './helpers/chromium.js';
import { IN_NETNS, rerunInNetns } from './helpers/netns.js';
import {
  PAGE_WAIT_MS as WAIT_MS,
  pageState,
  screenShows,
  screenText,
  sessionId,
  type PageApi as BasePageApi,
} from './helpers/page-api.js';
import { recordPeerConnections, type RecordedPeers } from './helpers/page-peers.js';

const SELF = fileURLToPath(import.meta.url);

const marker = (word: string) => `${word}-${randomBytes(4).toString('hex')}`;

/** The page's test object, and every RTCPeerConnection it made (helpers/page-peers.ts). */
type PageApi = BasePageApi & RecordedPeers<{ close(): void }>;

/**
 * Before the page's own script: when the test asked for it (a flag in sessionStorage), the stored
 * resume token is replaced by a wrong one, as a stale or forged one would be.
 */
function tamperTokenOnRequest(): void {
  const storage = (globalThis as unknown as { sessionStorage: Storage }).sessionStorage;
  if (storage.getItem('test.tamper') !== 'yes') return;
  storage.removeItem('test.tamper');
  const stored = JSON.parse(storage.getItem('termgate.session') ?? '{}') as { token?: string };
  storage.setItem('termgate.session', JSON.stringify({ ...stored, token: 'not-the-token' }));
}

/** The part of the DOM's Storage the init scripts use (no DOM types in the test build). */
interface Storage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

if (!IN_NETNS) {
  rerunInNetns(SELF, 'page resume, in a network namespace with only loopback', 300_000);
} else {
  void describe('the page resumes its session by itself (Chromium)', { timeout: 240_000 }, () => {
    let stack: BrowserStack;
    let chromium: ChromiumSession;
    let page: Page;

    before(async () => {
      stack = await startBrowserStack({ agentArgs: ['--resume-grace', '30'] });
      chromium = await launchChromium({ origin: stack.url });
      await chromium.context.addInitScript(recordPeerConnections);
      await chromium.context.addInitScript(tamperTokenOnRequest);
      page = await chromium.context.newPage();
      await page.goto(stack.cloud.pageUrl(stack.container));
      await pageState(page, 'connected');
    });

    after(async () => {
      await page?.close();
      await chromium?.close();
      await stack?.close();
    });

    it('a reload resumes the same shell and shows what was printed while the tab was gone', async () => {
      const session = await sessionId(page);
      const pid = await shellPid(page);
      const away = marker('away');
      await runSoon(page, `sleep 1; echo ${away}-1-$((6*7)); sleep 2; echo ${away}-2-$((6*7))`);
      await page.reload();

      await pageState(page, 'connected');
      assert.equal(await sessionId(page), session, 'the same session, resumed');
      await screenShows(page, new RegExp(`^${away}-2-42\\s*$`, 'm'));
      assert.equal(await shellPid(page), pid, 'the same shell answers');

      const token = await page.evaluate(() => {
        const storage = (globalThis as unknown as { sessionStorage: Storage }).sessionStorage;
        return (JSON.parse(storage.getItem('termgate.session') ?? '{}') as { token?: string }).token;
      });
      assert.ok(token && token.length >= 32, 'the tab keeps the resume token');
      assert.ok(!page.url().includes(token), 'the token is not in the URL');
      assert.ok(!page.url().includes('#token'), 'nor is the browser token');
    });

    it('a dropped connection shows reconnecting…, then the same shell goes on on the same screen', async () => {
      const session = await sessionId(page);
      const pid = await shellPid(page);
      const gap = marker('gap');
      await runSoon(page, `sleep 1; echo ${gap}-$((6*7))`);
      // As a network loss would: the peer connection goes, without a close message or a disconnect.
      await page.evaluate(() => (globalThis as unknown as PageApi).testPeers.at(-1)?.close());

      await pageState(page, 'reconnecting');
      assert.match((await page.textContent('#state')) ?? '', /reconnecting…/);
      await pageState(page, 'connected');
      assert.equal(await sessionId(page), session, 'the same session, resumed');
      await screenShows(page, new RegExp(`^${gap}-42\\s*$`, 'm'));
      assert.equal(await shellPid(page), pid, 'the same shell answers');
      // Not reset on an in-page resume: what was on the screen before the drop is still there.
      assert.match(await screenText(page), new RegExp(`^P:${pid}:`, 'm'));
    });

    it('a refused resume says the session ended, forgets it, and Reconnect opens a new one', async () => {
      const session = await sessionId(page);
      await page.evaluate(() =>
        (globalThis as unknown as { sessionStorage: Storage }).sessionStorage.setItem('test.tamper', 'yes'),
      );
      await page.reload();
      await pageState(page, 'disconnected');
      assert.match((await page.textContent('#state')) ?? '', /session ended: .*\(TG_ERR_RESUME_REFUSED\)/);
      const left = await page.evaluate(() =>
        (globalThis as unknown as { sessionStorage: Storage }).sessionStorage.getItem('termgate.session'),
      );
      assert.equal(left, null, 'the refused session is forgotten');
      await page.click('#connect');
      await pageState(page, 'connected');
      assert.notEqual(await sessionId(page), session, 'a new session');
      await shellPid(page);
    });

    it('a drop while the container is stopped resumes into the detached session, which reattaches', async () => {
      const session = await sessionId(page);
      await stack.lifecycle('stop');
      await pageState(page, 'detached');
      await page.evaluate(() => (globalThis as unknown as PageApi).testPeers.at(-1)?.close());
      await pageState(page, 'reconnecting');
      // Resumed without a shell: detached again, not stuck reconnecting.
      await pageState(page, 'detached');
      assert.equal(await sessionId(page), session, 'the same session, resumed');
      await stack.lifecycle('start');
      await page.click('#reattach');
      await pageState(page, 'connected');
      await shellPid(page);
      assert.equal(await sessionId(page), session, 'still the same session');
    });
  });
}

/** The shell's PID, as `echo $$` prints it (`P:<pid>:`; the typed line shows `$$`, not digits). */
async function shellPid(page: Page): Promise<string> {
  const before = (await screenText(page)).match(/^P:\d+:/gm)?.length ?? 0;
  await page.click('#terminal');
  await page.keyboard.type('echo P:$$:');
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    (n) => ((globalThis as unknown as PageApi).termgate.screenText().match(/^P:\d+:/gm)?.length ?? 0) > n,
    before,
    { timeout: WAIT_MS },
  );
  const all = (await screenText(page)).match(/^P:(\d+):/gm) ?? [];
  return all.at(-1)!.slice(2, -1);
}

/**
 * Starts `script` in a child shell and returns once the shell has echoed the typed line (it has the
 * keys), so a reload or a drop right after cannot lose them.
 */
async function runSoon(page: Page, script: string): Promise<void> {
  const line = `sh -c '${script}'`;
  await page.click('#terminal');
  await page.keyboard.type(line);
  await page.waitForFunction(
    (l) => (globalThis as unknown as PageApi).termgate.screenText().includes(l),
    line,
    { timeout: WAIT_MS },
  );
  await page.keyboard.press('Enter');
  // The Enter's own echo is a line break: give it a moment to reach the shell before the tab goes.
  await new Promise((r) => setTimeout(r, 200));
}
