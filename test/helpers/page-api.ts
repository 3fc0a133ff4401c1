/**
 * The page's view of its session, read in Chromium through the object main.ts exposes for tests
 * (`window.termgate`): its state label, its session id, and the terminal's screen as text.
 */
import type { Page } from 'playwright-core';

/** How long a page may take to reach a state or show a line (generous: CI may be slower). */
export const PAGE_WAIT_MS = 30_000;

/** What main.ts exposes for tests. */
export interface PageApi {
  termgate: { state: string; sessionId: string | undefined; screenText(): string };
}

export function pageState(page: Page, state: string, timeoutMs = PAGE_WAIT_MS): Promise<unknown> {
  return page.waitForSelector(`#state[data-state="${state}"]`, { timeout: timeoutMs });
}

export function sessionId(page: Page): Promise<string | undefined> {
  return page.evaluate(() => (globalThis as unknown as PageApi).termgate.sessionId);
}

export function screenText(page: Page): Promise<string> {
  return page.evaluate(() => (globalThis as unknown as PageApi).termgate.screenText());
}

export function screenShows(page: Page, pattern: RegExp, timeoutMs = PAGE_WAIT_MS): Promise<unknown> {
  return page.waitForFunction(
    ({ source, flags }) =>
      new RegExp(source, flags).test((globalThis as unknown as PageApi).termgate.screenText()),
    { source: pattern.source, flags: pattern.flags },
    { timeout: timeoutMs },
  );
}
