/**
 * Per-session counters in a SharedArrayBuffer: the worker writes plain numbers on the data path, the main
 * thread reads them when it sweeps or is scraped. No message per byte, no lock: each slot has one writer.
 */
export const StatSlot = {
  bytesFromBrowser: 0,
  bytesToBrowser: 1,
  messagesFromBrowser: 2,
  messagesToBrowser: 3,
  /** Date.now() of the last message either way; the idle sweep reads it. */
  lastActivityMs: 4,
  /** Browser messages refused: malformed, too large, over the rate, or not servable (no PTY, connect_pty denied). */
  protocolErrors: 5,
  backpressurePauses: 6,
  /** A handler on the data path threw (a bug, caught at its boundary; the session went on). */
  handlerFaults: 7,
  /** Replies (pong, error) not sent because the browser was not taking what was already queued. */
  repliesDropped: 8,
  /** A shell of this session could not be seen or ended. */
  cleanupFailures: 9,
  /** A PTY could not be opened or resized (told to the browser as an `error`). */
  ptyErrors: 10,
  /** The selected ICE path: an index of PATH_KINDS (workers/selected-path.ts), 0 while unknown. */
  pathKind: 11,
  /** SCTP's round trip on that path, in ms, at the last sample. */
  rttMs: 12,
  /** Output bytes written before a Ctrl-C and dropped, as the TTY drops its own queue (InterruptFlush). */
  outputFlushed: 13,
} as const;

const SLOT_COUNT = 14;

export function createSessionStats(): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOT_COUNT * Float64Array.BYTES_PER_ELEMENT);
}

export function statsView(buffer: SharedArrayBuffer): Float64Array {
  return new Float64Array(buffer);
}

export interface SessionStats {
  bytesFromBrowser: number;
  bytesToBrowser: number;
  messagesFromBrowser: number;
  messagesToBrowser: number;
  lastActivityMs: number;
  protocolErrors: number;
  backpressurePauses: number;
  handlerFaults: number;
  repliesDropped: number;
  cleanupFailures: number;
  ptyErrors: number;
  pathKind: number;
  rttMs: number;
  outputFlushed: number;
}

export function readStats(view: Float64Array): SessionStats {
  return {
    bytesFromBrowser: view[StatSlot.bytesFromBrowser] ?? 0,
    bytesToBrowser: view[StatSlot.bytesToBrowser] ?? 0,
    messagesFromBrowser: view[StatSlot.messagesFromBrowser] ?? 0,
    messagesToBrowser: view[StatSlot.messagesToBrowser] ?? 0,
    lastActivityMs: view[StatSlot.lastActivityMs] ?? 0,
    protocolErrors: view[StatSlot.protocolErrors] ?? 0,
    backpressurePauses: view[StatSlot.backpressurePauses] ?? 0,
    handlerFaults: view[StatSlot.handlerFaults] ?? 0,
    repliesDropped: view[StatSlot.repliesDropped] ?? 0,
    cleanupFailures: view[StatSlot.cleanupFailures] ?? 0,
    ptyErrors: view[StatSlot.ptyErrors] ?? 0,
    pathKind: view[StatSlot.pathKind] ?? 0,
    rttMs: view[StatSlot.rttMs] ?? 0,
    outputFlushed: view[StatSlot.outputFlushed] ?? 0,
  };
}
