/**
 * Driving the real terminal page in a real browser, whichever library drives it: Playwright's and
 * Puppeteer's pages both fit `TerminalPage` as they are, so the Chromium and the Firefox tests share
 * these steps (connect, type a command, read the screen, count the shells left).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { BrowserStack } from './browser-stack.js';

/** What the steps need of a page; a Playwright `Page` and a Puppeteer `Page` both have it. */
export interface TerminalPage {
  evaluate<R>(fn: () => R | Promise<R>): Promise<R>;
  click(selector: string): Promise<void>;
  keyboard: { type(text: string): Promise<void>; press(key: 'Enter'): Promise<void> };
  waitForSelector(selector: string, options?: { timeout?: number }): Promise<unknown>;
}

/** Polls `fn` until it gives a value; fails after `timeoutMs` with the last error it threw. */
export async function until<T>(
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

interface PageGlobals {
  termgate: { screenText(): string; term: { cols: number; rows: number } };
}

/** The terminal's screen as text, a line per row (the page's own `termgate.screenText()`). */
export const screen = (page: TerminalPage): Promise<string> =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).termgate.screenText());

export const termSize = (page: TerminalPage): Promise<{ cols: number; rows: number }> =>
  page.evaluate(() => {
    const t = (globalThis as unknown as PageGlobals).termgate.term;
    return { cols: t.cols, rows: t.rows };
  });

/** What the page's status line says (`#state`). */
export const stateText = (page: TerminalPage): Promise<string> =>
  page.evaluate(() => {
    type Doc = { querySelector(selector: string): { textContent: string | null } | null };
    return (globalThis as unknown as { document: Doc }).document.querySelector('#state')?.textContent ?? '';
  });

export async function waitConnected(page: TerminalPage, timeoutMs = 20_000): Promise<void> {
  await page.waitForSelector('#state[data-state="connected"]', { timeout: timeoutMs });
}

/** Types a command and waits for a screen line that matches `expect` exactly. */
export async function run(page: TerminalPage, command: string, expect: RegExp): Promise<string> {
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

/**
 * What every browser's end-to-end test does first: a command typed and its output read back, then the
 * viewport made smaller (`shrink`, the driving library's own call) and the new size seen by the shell
 * (`stty size`).
 */
export async function typeAndResize(page: TerminalPage, shrink: () => Promise<unknown>): Promise<void> {
  const token = `e2e-${randomBytes(6).toString('hex')}`;
  await run(page, `echo ${token}`, new RegExp(`^${token}$`));
  await shrink();
  // Settled: a browser may refit more than once (Firefox did, a row at a time) before it rests.
  const size = await until('terminal to refit and settle', async () => {
    const s = await termSize(page);
    if (s.cols >= 100) return undefined;
    await new Promise((r) => setTimeout(r, 300));
    const again = await termSize(page);
    return again.cols === s.cols && again.rows === s.rows ? s : undefined;
  });
  await run(page, 'stty size', new RegExp(`^${size.rows} ${size.cols}$`));
}

/** The shells (`sh`) running in the stack's container. */
export const shellsIn = async (stack: BrowserStack): Promise<string[]> =>
  (await stack.processes()).filter((c) => /(^|\/)sh(\s|$)/.test(c));

/** Closes the tab, which must end the session's shell and the cloud's session. */
export async function closeLeavesNoShell(
  page: { close(): Promise<void> },
  stack: BrowserStack,
): Promise<void> {
  assert.ok((await shellsIn(stack)).length >= 1, 'a shell runs while the tab is open');
  await page.close();
  await until(
    'the shell to end after the tab closed',
    async () => (await shellsIn(stack)).length === 0,
    15_000,
  );
  await until('the cloud to drop the session', () => Promise.resolve(stack.cloud.sessionCount === 0));
}
