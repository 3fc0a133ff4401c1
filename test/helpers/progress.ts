/**
 * Waiting on bulk and load work by its progress, never by a total deadline: a wait fails only when the
 * figure it watches (bytes received, replies, sessions done) has not moved for `stallMs`, and then says
 * how far the work got. A slower machine, or one busy with other work, makes a test slower, not red.
 */
import { shellsIn } from './containers.js';

export interface ProgressWait {
  /** What is awaited, for the failure message: "50 sessions' output". */
  what: string;
  /** Fail once `progress()` has not changed for this long. */
  stallMs: number;
  /** A figure that changes while the work moves. Any change counts, up or down. */
  progress: () => number | Promise<number>;
  /** True once the work is complete. */
  done: () => boolean;
  /** More state for the failure message (which sessions are stuck, and where). */
  detail?: () => string;
  /** How often the figures are read; default 100 ms. */
  pollMs?: number;
  /** Work to do on each round before the figures are read again (send the next burst, type again). */
  poll?: () => unknown;
}

export interface ProgressResult {
  /** How long the whole wait took. */
  ms: number;
  /** The longest time the figure stood still before the work was done. */
  longestStallMs: number;
}

export class StallError extends Error {
  constructor(wait: ProgressWait, value: number) {
    const detail = wait.detail?.();
    super(
      `${wait.what}: no progress for ${wait.stallMs} ms, stuck at ${value}${detail ? `; ${detail}` : ''}`,
    );
    this.name = 'StallError';
  }
}

/** Resolves once `done()` holds; rejects with a StallError when `progress()` stands still for `stallMs`. */
export async function untilProgress(wait: ProgressWait): Promise<ProgressResult> {
  const started = performance.now();
  let value = await wait.progress();
  let movedAt = started;
  let longestStallMs = 0;
  for (;;) {
    if (wait.done()) return { ms: performance.now() - started, longestStallMs };
    await wait.poll?.();
    await new Promise((r) => setTimeout(r, wait.pollMs ?? 100));
    const now = performance.now();
    const next = await wait.progress();
    if (next !== value) {
      value = next;
      movedAt = now;
    } else if (now - movedAt > wait.stallMs && !wait.done()) {
      throw new StallError(wait, value);
    }
    longestStallMs = Math.max(longestStallMs, now - movedAt);
  }
}

/** Awaits `work`, failing early (StallError) if `progress()` stands still for `stallMs` before it settles. */
export async function withProgress<T>(work: Promise<T>, wait: Omit<ProgressWait, 'done'>): Promise<T> {
  let settled = false;
  const tracked = work.finally(() => (settled = true));
  // If the wait stalls, the work's own failure (if it comes later) must not be an unhandled rejection.
  tracked.catch(() => undefined);
  await untilProgress({ ...wait, done: () => settled });
  return tracked;
}

/** Waits until no shell started by termgate is left in `containers`, failing if their count stops falling. */
export async function untilNoShells(containers: string[], stallMs = 30_000): Promise<void> {
  let left: string[] = [];
  await untilProgress({
    what: "the sessions' shells ending",
    stallMs,
    pollMs: 200,
    progress: async () => {
      const lists = await Promise.all(
        containers.map(async (c) => (await shellsIn(c)).map((p) => `${c}: ${p}`)),
      );
      left = lists.flat();
      return left.length;
    },
    done: () => left.length === 0,
    detail: () => `left behind:\n${left.join('\n')}`,
  });
}
