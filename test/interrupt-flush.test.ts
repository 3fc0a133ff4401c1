/**
 * Ctrl-C behind a page slower than the program (issue 13, point 4). A node-datachannel browser whose
 * modelled screen shows 1 MB/s (`yes` through the engine makes ~6 here, and 3 in CI with JSON, where a
 * 3 MB/s page kept up half the time and nothing backed up) acks output only once shown, so the agent's
 * ack window (32 KiB here, so that showing what is in flight takes ~33 ms) stays full and the engine's
 * pipeline backs up with ~1 MB, as behind a busy Chromium. Two agents side by side, one flushing
 * after Ctrl-C (the default) and one with `--flush-on-interrupt off`:
 *
 * - flushing, the flood is off the screen within 100 ms of the key, the TTY's `^C` is there, the prompt
 *   comes back, the offsets add up (nothing sent was lost), and the agent counts what it dropped;
 * - not flushing, everything the pipeline held arrives first, line by line intact;
 * - flushing, a raw-mode program that reads Ctrl-C as a byte (no echo) loses nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrowserPeer, checkSetupRetries } from './helpers/browser-peer.js';
import { assertStops, CTRL_C, percentile, repeatedFloods } from './helpers/interrupt.js';
import { freePort, scrape } from './helpers/metrics.js';
import { untilProgress } from './helpers/progress.js';
import { useStack, type Stack } from './helpers/stack.js';

const REPETITIONS = 10;
const FLOOD_BYTES = 2 * 1024 * 1024;
/** A third of `yes` through the engine on a slow machine, so output always backs up behind the page. */
const SCREEN_BYTES_PER_SECOND = 1_000_000;
const STOP_BOUND_MS = 100;
/** As in interrupt.test.ts: a Ctrl-C that reaches the shell late through a loaded engine, counted. */
const LATE_ALLOWED = 1;
const LATE_BOUND_MS = 1000;
const ACK_WINDOW = 32 * 1024;
const LINE = '0123456789abcdef';

let metricsPort = 0;
const flushing = useStack({
  name: 'flush',
  containers: 1,
  beforeAgent: async () => {
    metricsPort = await freePort();
  },
  agentArgs: () => [
    '--idle-timeout',
    '600',
    '--ack-window',
    String(ACK_WINDOW),
    '--metrics-listen',
    `127.0.0.1:${metricsPort}`,
  ],
});
const keeping = useStack({
  name: 'keep',
  containers: 1,
  agentArgs: ['--idle-timeout', '600', '--ack-window', String(ACK_WINDOW), '--flush-on-interrupt', 'off'],
});

const flushedTotal = async () =>
  (await scrape(`http://127.0.0.1:${metricsPort}`)).value('termgate_output_flushed_bytes_total') ?? 0;

/** Lines of the flood that are not `LINE` exactly, between its first whole line and `end`. */
function brokenLines(text: string, end: number, eol: string): number {
  const start = text.indexOf(LINE + eol);
  const lines = text.slice(start, end).split(eol);
  lines.pop(); // the last may be cut by the TTY's own flush, or by `end`
  return lines.filter((line) => line !== LINE).length;
}

/** Floods and presses Ctrl-C `REPETITIONS` times behind the slow page; checks what every rep must show. */
async function floodsBehindSlowPage(stack: Stack, encoding: 'msgpack' | 'json', label: string) {
  const browser = await BrowserPeer.open(stack.cloud, {
    device: stack.containers[0]!,
    encoding,
    showsBytesPerSecond: SCREEN_BYTES_PER_SECOND,
  });
  try {
    return await repeatedFloods(browser, {
      repetitions: REPETITIONS,
      floodBytes: FLOOD_BYTES,
      label: `${label} ${encoding}`,
      each: (text) => {
        const echoAt = text.indexOf('^C');
        assert.ok(echoAt > 0, "the TTY's ^C is on the screen");
        assert.equal(brokenLines(text, echoAt, '\r\n'), 0, 'every line of the flood before the ^C is whole');
      },
    });
  } finally {
    browser.close();
  }
}

describe('Ctrl-C behind a page slower than the program', () => {
  const medians = new Map<string, number>();

  for (const encoding of ['msgpack', 'json'] as const) {
    it(`${encoding}: flushing, ${REPETITIONS} floods stop on the screen within ${STOP_BOUND_MS} ms, ^C shown, the prompt back, the drop counted`, async () => {
      const before = await flushedTotal();
      const reps = await floodsBehindSlowPage(flushing, encoding, 'flush');
      assertStops(
        reps.map((r) => r.stopMs),
        { boundMs: STOP_BOUND_MS, lateAllowed: LATE_ALLOWED, lateBoundMs: LATE_BOUND_MS },
      );
      medians.set(
        `flush-${encoding}`,
        percentile(
          reps.map((r) => r.afterBytes),
          50,
        ),
      );
      const dropped = (await flushedTotal()) - before;
      assert.ok(
        dropped >= REPETITIONS * 64 * 1024,
        `the agent counts what it dropped: ${dropped} bytes over ${REPETITIONS} floods`,
      );
    });

    it(`${encoding}: not flushing (--flush-on-interrupt off), what the engine held arrives first`, async () => {
      const reps = await floodsBehindSlowPage(keeping, encoding, 'keep');
      const kept = percentile(
        reps.map((r) => r.afterBytes),
        50,
      );
      const flushed = medians.get(`flush-${encoding}`);
      assert.ok(flushed !== undefined, 'the flushing case ran first');
      assert.ok(
        kept > flushed + 4 * ACK_WINDOW,
        `after Ctrl-C (p50) ${kept} bytes not flushing against ${flushed} flushing`,
      );
    });
  }

  it('flushing, a raw-mode program that reads Ctrl-C as a byte loses nothing', async () => {
    const before = await flushedTotal();
    const browser = await BrowserPeer.open(flushing.cloud, {
      device: flushing.containers[0]!,
      encoding: 'msgpack',
      showsBytesPerSecond: SCREEN_BYTES_PER_SECOND,
    });
    try {
      // No ISIG, no echo, no output processing: Ctrl-C is a byte on yes's stdin, and lines end in \n.
      browser.type(`stty raw -echo; yes ${LINE}\n`);
      const waitFor = async (bytes: number, what: string) => {
        const from = browser.outputBytes;
        await untilProgress({
          what,
          stallMs: 30_000,
          progress: () => browser.outputBytes,
          done: () => browser.outputBytes - from >= bytes,
          pollMs: 20,
        });
      };
      await waitFor(FLOOD_BYTES, 'the raw flood');
      browser.type(CTRL_C);
      await waitFor(2 * FLOOD_BYTES, 'the raw flood after Ctrl-C');
      const text = browser.output().toString('latin1');
      assert.equal(brokenLines(text, text.length, '\n'), 0, 'every line of the flood is whole');
      assert.equal(browser.outputBytes, browser.lastOffset, 'bytes received = bytes sent');
      assert.equal((await flushedTotal()) - before, 0, 'nothing dropped');
    } finally {
      browser.close();
    }
  });

  it('ends: setup retries within their rate', () => checkSetupRetries());
});
