/**
 * End to end in a real headless Chromium: the page served by the cloud stand-in, the real agent
 * executable, a real container. Runs inside a private network namespace with only `lo` (the file
 * re-executes itself under `unshare -n`), so every packet stays on loopback.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium, type ChromiumSession } from './helpers/chromium.js';
import { startBrowserStack, type BrowserStack } from './helpers/browser-stack.js';

const SELF = fileURLToPath(import.meta.url);
const SCREENSHOT = fileURLToPath(new URL('../../docs/terminal.png', import.meta.url));

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | undefined;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err instanceof Error ? err : new Error(String(err));
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const screen = (page: Page) =>
  page.evaluate(() =>
    (globalThis as unknown as { termgate: { screenText(): string } }).termgate.screenText(),
  );
const termSize = (page: Page) =>
  page.evaluate(() => {
    const t = (globalThis as unknown as { termgate: { term: { cols: number; rows: number } } }).termgate.term;
    return { cols: t.cols, rows: t.rows };
  });

async function waitConnected(page: Page): Promise<void> {
  await page.waitForSelector('#state[data-state="connected"]', { timeout: 20_000 });
}

/** Types a command and waits for a screen line that matches `expect` exactly. */
async function run(page: Page, command: string, expect: RegExp): Promise<string> {
  await page.click('#terminal');
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
  try {
    return await until(`${JSON.stringify(command)} output`, async () => {
      const text = await screen(page);
      return text.split('\n').find((l) => expect.test(l.trimEnd()));
    });
  } catch (err) {
    const text = (await screen(page)).trimEnd();
    throw new Error(`${(err as Error).message}; the screen shows:\n${text}`);
  }
}

const shellsIn = async (stack: BrowserStack) =>
  (await stack.processes()).filter((c) => /(^|\/)sh(\s|$)/.test(c));

if (!process.env.TERMGATE_IN_NETNS) {
  void it('browser end to end, in a network namespace with only loopback', { timeout: 300_000 }, async () => {
    // NODE_TEST_CONTEXT would make the inner runner report to us in its wire format, or skip files.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const child = spawn(
      'unshare',
      [
        '-n',
        'sh',
        '-c',
        'ip link set lo up && exec "$0" --test --test-reporter=spec "$1"',
        process.execPath,
        SELF,
      ],
      { env: { ...env, TERMGATE_IN_NETNS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.pipe(process.stderr);
    child.stderr.pipe(process.stderr);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, 'the browser tests inside the namespace failed (output above)');
  });
} else {
  void describe('browser end to end (inside the namespace)', { timeout: 240_000 }, () => {
    let stack: BrowserStack;
    let browser: ChromiumSession;

    let current: Page | undefined;

    before(async () => {
      stack = await startBrowserStack();
      browser = await launchChromium({ origin: stack.url, viewport: { width: 1000, height: 640 } });
    });

    // A failed test must not leave its tab (and so its shell) to the next one.
    afterEach(async () => {
      if (current && !current.isClosed()) await current.close();
      current = undefined;
      await until('no shell left', async () => (await shellsIn(stack)).length === 0, 15_000);
    });

    after(async () => {
      await browser?.close();
      await stack?.close();
    });

    void it('types into the container, follows a resize, and leaves no shell when the tab closes', async () => {
      const page = await browser.context.newPage();
      current = page;
      const consoleErrors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
      page.on('pageerror', (e) => consoleErrors.push(String(e)));
      await page.goto(`${stack.url}/?device=${stack.container}`);
      await waitConnected(page);
      assert.match((await page.textContent('#state')) ?? '', /connected to .*msgpack/);

      const token = `e2e-${randomBytes(6).toString('hex')}`;
      await run(page, `echo ${token}`, new RegExp(`^${token}$`));

      await page.setViewportSize({ width: 760, height: 420 });
      const size = await until('terminal to refit', async () => {
        const s = await termSize(page);
        return s.cols < 100 ? s : undefined;
      });
      await run(page, 'stty size', new RegExp(`^${size.rows} ${size.cols}$`));

      await run(page, 'uname -s; id -un', /^root$/);
      await mkdir(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT });

      assert.ok((await shellsIn(stack)).length >= 1, 'a shell runs while the tab is open');
      await page.close();
      await until(
        'the shell to end after the tab closed',
        async () => (await shellsIn(stack)).length === 0,
        15_000,
      );
      await until('the cloud to drop the session', () => Promise.resolve(stack.cloud.sessionCount === 0));
      assert.deepEqual(consoleErrors, []);
    });

    void it('speaks JSON when picked, and reconnects with the button', async () => {
      const page = await browser.context.newPage();
      current = page;
      await page.goto(`${stack.url}/?device=${stack.container}&encoding=json`);
      await waitConnected(page);
      assert.match((await page.textContent('#state')) ?? '', /\(json\)/);
      const first = `e2e-${randomBytes(6).toString('hex')}`;
      await run(page, `echo ${first}`, new RegExp(`^${first}$`));

      await page.click('#connect');
      await page.waitForSelector('#state[data-state="connecting"], #state[data-state="connected"]');
      await waitConnected(page);
      const second = `e2e-${randomBytes(6).toString('hex')}`;
      await run(page, `echo ${second}`, new RegExp(`^${second}$`));
      // The replaced session's shell is gone; only the new one runs.
      await until(
        'one shell after reconnect',
        async () => (await shellsIn(stack)).length === 1,
        15_000,
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}; processes: ${JSON.stringify(await stack.processes())}`);
      });
      await page.close();
      await until('no shell after close', async () => (await shellsIn(stack)).length === 0, 15_000);
    });
  });
}
