/**
 * Ctrl-C stops a flood in the real page (issue 13, point 4): headless Chromium, the page served by the
 * cloud stand-in, the real agent and a container, inside a network namespace with only loopback. The
 * page acks output once xterm.js has processed it, so the agent's window covers the page's write queue;
 * each Ctrl-C must stop the output (as xterm.js shows it) within `STOP_BOUND_MS` (all but `LATE_ALLOWED`
 * of them), and the prompt return.
 */
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium, type ChromiumSession } from './helpers/chromium.js';
import { startBrowserStack, type BrowserStack } from './helpers/browser-stack.js';
import { assertStops, CTRL_C, interruptFlood, percentile, type FloodTerminal } from './helpers/interrupt.js';
import { IN_NETNS, rerunInNetns } from './helpers/netns.js';

const SELF = fileURLToPath(import.meta.url);
const REPETITIONS = 20;
const FLOOD_BYTES = 2 * 1024 * 1024;
const STOP_BOUND_MS = 100;
/**
 * Stops allowed past the bound, and the bound for those. What has to be shown after the key is the ack
 * window in flight (~280 KB here, 25–45 ms at this page's pace on an idle machine): the agent flushes
 * what the engine held from before the key (InterruptFlush; without it, 100–270 ms at p99). With both
 * cores busy, Chromium takes that window in at 2–3 MB/s, so 100–190 ms now and then (measured with two
 * busy loops beside it: 9 of 20 past 100 ms, while the flush found the echo within 40 ms in 19 of 20); one in ten past
 * the bound in CI. Counted and bounded, as in interrupt.test.ts.
 */
const LATE_ALLOWED = 4;
const LATE_BOUND_MS = 1000;

interface PageFigures {
  outputBytes: number;
  lastShownAt: number;
  lastReceivedAt: number;
  lastKeyAt: number;
  outputBytesAtKey: number;
}

const figures = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { termgate: { figures: PageFigures } }).termgate.figures);

/** The page's figures as they were when the stop was measured (before the echo's keys). */
let atStop: PageFigures | undefined;

function pageTerminal(page: Page): FloodTerminal {
  return {
    type: async (text) => {
      if (text === CTRL_C) await page.keyboard.press('Control+C');
      else await page.keyboard.type(text);
    },
    received: async () => (await figures(page)).outputBytes,
    lastOutputAt: async () => (await figures(page)).lastShownAt,
    lastInputAt: async () => (atStop = await figures(page)).lastKeyAt,
    shows: async (text) =>
      (
        await page.evaluate(() =>
          (globalThis as unknown as { termgate: { screenText(): string } }).termgate.screenText(),
        )
      ).includes(text),
  };
}

if (!IN_NETNS) {
  rerunInNetns(SELF, 'Ctrl-C in Chromium, in a network namespace with only loopback', 600_000);
} else {
  void describe('Ctrl-C under a flood in Chromium (inside the namespace)', { timeout: 540_000 }, () => {
    let stack: BrowserStack;
    let browser: ChromiumSession;

    before(async () => {
      stack = await startBrowserStack();
      browser = await launchChromium({ origin: stack.url });
    });

    after(async () => {
      await browser?.close();
      await stack?.close();
    });

    for (const encoding of ['msgpack', 'json'] as const) {
      void it(`${encoding}: ${REPETITIONS} times \`yes\` + Ctrl-C, shown stopped within ${STOP_BOUND_MS} ms, the prompt back`, async () => {
        const page = await browser.context.newPage();
        try {
          const url = new URL(stack.cloud.pageUrl(stack.container));
          url.searchParams.set('encoding', encoding);
          await page.goto(url.href);
          await page.waitForSelector('#state[data-state="connected"]', { timeout: 20_000 });
          await page.click('#terminal');
          const term = pageTerminal(page);
          const stops: number[] = [];
          for (let rep = 0; rep < REPETITIONS; rep++) {
            const { stopMs, afterBytes } = await interruptFlood(term, FLOOD_BYTES, `c${rep}`);
            const f = atStop!;
            stops.push(stopMs);
            console.log(
              `# chromium ${encoding} rep ${rep}: shown stopped in ${stopMs.toFixed(1)} ms ` +
                `(received ${(f.lastReceivedAt - f.lastKeyAt).toFixed(1)} ms); ${afterBytes} bytes after the press, ` +
                `${f.outputBytes - f.outputBytesAtKey} after the page saw the key`,
            );
          }
          console.log(
            `# chromium ${encoding}: stop p50 ${percentile(stops, 50).toFixed(1)} ms, ` +
              `p99 ${percentile(stops, 99).toFixed(1)} ms, max ${Math.max(...stops).toFixed(1)} ms`,
          );
          assertStops(stops, {
            boundMs: STOP_BOUND_MS,
            lateAllowed: LATE_ALLOWED,
            lateBoundMs: LATE_BOUND_MS,
          });
        } finally {
          await page.close();
        }
      });
    }
  });
}
