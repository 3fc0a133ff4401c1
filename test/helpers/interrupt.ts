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
