/**
 * One Ctrl-C under a flood, as a person does it: start `yes` in the shell, let output stream until the
 * whole path is full, press Ctrl-C, and time from the keystroke to the last output byte (the flood's
 * tail and the prompt after it), both on the terminal's own clock. The end is found by quiet: no output
 * for `QUIET_MS`. Then the shell
 * must answer a command, which says the prompt is back. Waits are bounded by progress, not by a total.
 */
import assert from 'node:assert/strict';
import type { BrowserPeer } from './browser-peer.js';
import { untilProgress } from './progress.js';

/** The flood: `yes` under `sh -c`, so it runs at the speed of the path, not of busybox's applet in ash. */
export const FLOOD_COMMAND = "sh -c 'yes 0123456789abcdef'\n";
export const CTRL_C = '\x03';
/** No output for this long after Ctrl-C: the flood is over. Far above any gap inside a flood. */
export const QUIET_MS = 400;
const STALL_MS = 30_000;

/** What the measure needs of a terminal: a node-datachannel BrowserPeer, or the real page. */
export interface FloodTerminal {
  type(text: string): void | Promise<void>;
  /** Output bytes (or characters) received so far; any growth counts. */
  received(): number | Promise<number>;
  /** When the last output was received (or shown), on the terminal's clock. */
  lastOutputAt(): number | Promise<number>;
  /** When the last input was sent, on the same clock. */
  lastInputAt(): number | Promise<number>;
  /** Whether `text` is on the screen (or in the recent output). */
  shows(text: string): boolean | Promise<boolean>;
}

export interface InterruptResult {
  /** Ctrl-C sent → last output byte received. */
  stopMs: number;
  /** Output received from Ctrl-C to the end. */
  afterBytes: number;
}

/** Floods until `floodBytes` arrived, presses Ctrl-C, and measures the stop; then checks the prompt is back. */
export async function interruptFlood(
  term: FloodTerminal,
  floodBytes: number,
  tag: string,
): Promise<InterruptResult> {
  const start = await term.received();
  await term.type(FLOOD_COMMAND);
  let now = start;
  await untilProgress({
    what: 'the flood',
    stallMs: STALL_MS,
    progress: async () => (now = await term.received()),
    done: () => now - start >= floodBytes,
    pollMs: 20,
  });
  const atCtrlC = await term.received();
  await term.type(CTRL_C);
  let movedAt = performance.now();
  await untilProgress({
    what: 'the end of the flood after Ctrl-C',
    stallMs: STALL_MS,
    progress: async () => {
      const next = await term.received();
      if (next !== now) movedAt = performance.now();
      return (now = next);
    },
    done: () => performance.now() - movedAt > QUIET_MS,
    pollMs: 50,
  });
  const stopMs = (await term.lastOutputAt()) - (await term.lastInputAt());
  const afterBytes = (await term.received()) - atCtrlC;
  await term.type(`echo ${tag}-$((40+2))\n`);
  let back = false;
  await untilProgress({
    what: 'the prompt after Ctrl-C',
    stallMs: STALL_MS,
    progress: () => term.received(),
    done: () => back,
    poll: async () => {
      back = await term.shows(`${tag}-42`);
    },
  });
  return { stopMs, afterBytes };
}

/** The p-th percentile (nearest rank) of `values`. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A node-datachannel browser as a FloodTerminal: output counts when shown (its modelled screen, if any). */
export function peerTerminal(browser: BrowserPeer): FloodTerminal {
  let inputAt = 0;
  return {
    type: (text) => {
      inputAt = performance.now();
      browser.type(text);
    },
    received: () => browser.outputBytes,
    lastOutputAt: () => browser.lastShownAt,
    lastInputAt: () => inputAt,
    shows: (text) => browser.tail().includes(text),
  };
}

export interface StopBounds {
  boundMs: number;
  /** Stops allowed past `boundMs` (a Ctrl-C that reached the shell late through a loaded engine). */
  lateAllowed: number;
  /** No stop may take longer than this. */
  lateBoundMs: number;
}

/** Every stop within the bound but at most `lateAllowed`, and those within `lateBoundMs`. */
export function assertStops(stops: number[], { boundMs, lateAllowed, lateBoundMs }: StopBounds): void {
  const late = stops.filter((ms) => ms > boundMs);
  assert.ok(
    late.length <= lateAllowed,
    `${late.length} of ${stops.length} stops past ${boundMs} ms: ${stops.map((ms) => ms.toFixed(0)).join(', ')}`,
  );
  for (const [rep, ms] of stops.entries())
    assert.ok(ms <= lateBoundMs, `rep ${rep} stopped in ${ms.toFixed(1)} ms`);
}

export interface RepeatedFloodOptions {
  repetitions: number;
  floodBytes: number;
  /** Names the floods in the log and in their markers. */
  label: string;
  /** Checks what the screen held after one flood (its text, as latin1), before it is cleared. */
  each?: (text: string) => void;
}

/**
 * `repetitions` floods, each stopped by Ctrl-C, on a node-datachannel browser. After each, nothing sent
 * was lost (every byte the agent counted, its last offset, arrived) and `each` holds; the screen is then
 * cleared. Logs each stop and the percentiles; returns the stops for the caller's bounds.
 */
export async function repeatedFloods(
  browser: BrowserPeer,
  options: RepeatedFloodOptions,
): Promise<InterruptResult[]> {
  const { repetitions, floodBytes, label } = options;
  const results: InterruptResult[] = [];
  let cleared = 0;
  for (let rep = 0; rep < repetitions; rep++) {
    const result = await interruptFlood(
      peerTerminal(browser),
      floodBytes,
      `${label.replace(/\W/g, '')}${rep}`,
    );
    results.push(result);
    console.log(
      `# ${label} rep ${rep}: stopped in ${result.stopMs.toFixed(1)} ms, ${result.afterBytes} bytes after Ctrl-C`,
    );
    options.each?.(browser.output().toString('latin1'));
    assert.equal(cleared + browser.outputBytes, browser.lastOffset, 'bytes received = bytes sent');
    cleared += browser.outputBytes;
    browser.clearOutput();
  }
  const stops = results.map((r) => r.stopMs);
  const after = results.map((r) => r.afterBytes);
  console.log(
    `# ${label}: stop p50 ${percentile(stops, 50).toFixed(1)} ms, p99 ${percentile(stops, 99).toFixed(1)} ms, ` +
      `max ${Math.max(...stops).toFixed(1)} ms; after Ctrl-C p50 ${percentile(after, 50)} bytes`,
  );
  return results;
}
