/**
 * How long to wait so that the next read gathers about `targetBytes`, judged by the rate the last one
 * showed: `bytes` that came `sinceLastMs` after the read before. Within `minMs` and `maxMs`; a first
 * read, or one after a quiet spell, shows a rate near 0 and gets the longest wait. Both of the PTY's
 * output stages use it: OutputFlow's hold (pieces for the channel) and SocketReadPacer's pause (reads of
 * the exec's socket).
 */
export interface WaitBounds {
  minMs: number;
  maxMs: number;
  targetBytes: number;
}

export function aimedWait(
  bytes: number,
  sinceLastMs: number,
  { minMs, maxMs, targetBytes }: WaitBounds,
): number {
  // In bytes per ms.
  const rate = bytes / Math.max(sinceLastMs, minMs);
  const ms = rate > 0 ? targetBytes / rate : maxMs;
  return Math.min(maxMs, Math.max(minMs, ms));
}
