import type { Encoding } from '../../common/protocol/terminal-messages.js';
import type { BrowserSetup } from './BenchPeer.js';
import type { BulkWorkload } from './workloads.js';

/** What the bench parent and its load processes say to each other over IPC. */

export type TerminalKind = 'termgate' | 'baseline';

export interface OpenParams {
  id: string;
  kind: TerminalKind;
  device: string;
  timeoutMs: number;
  /** termgate only: the simulated browser's encoding and DTLS role, when not the load process's own. */
  encoding?: Encoding;
  setup?: BrowserSetup;
}

/** Times on the `nowMs()` clock (wall-clock ms, comparable across the bench's processes). */
export type OpenResult =
  | {
      ok: true;
      startedAt: number;
      /** Baseline only: the exec was created. */
      createdAt?: number;
      /** termgate: `pty_connected` arrived; baseline: exec started, attached and resized. */
      readyAt: number;
      /** termgate only: the peer connection reached `connected` (ICE + DTLS). */
      connectedAt?: number;
      /** termgate only: `ready` arrived (the channel is open). */
      channelAt?: number;
      /** termgate only: the first try failed on the offerer's side; this session id made it. */
      retriedAs?: string;
    }
  | { ok: false; startedAt: number; error: string };

export interface RemoteCandidate {
  sessionId: string;
  candidate: string;
  mid: string;
}

export interface OfferRequest {
  sessionId: string;
  device: string;
  sdp: string;
}

export interface KeystrokesParams {
  id: string;
  count: number;
}

export interface InterruptParams {
  id: string;
  /** Ctrl-Cs, each after a fresh flood. */
  count: number;
  /** Output let through before each Ctrl-C. */
  floodBytes: number;
}

export interface BulkParams {
  id: string;
  bytes: number;
  workload: BulkWorkload;
}

export interface BulkResult {
  startMs: number;
  endMs: number;
  bytes: number;
  /** sha256 (hex) of those bytes. */
  sha256: string;
  /** CPU this load process spent during the transfer. */
  cpuMs: number;
}

export interface LoadStats {
  rssBytes: number;
  cpuMs: number;
  fds: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

export interface SoakParams {
  kind: TerminalKind;
  prefix: string;
  devices: string[];
  concurrency: number;
  durationMs: number;
}

export interface SoakResult {
  cycles: number;
  failures: number;
  /** Cycles whose open needed a second try (see `OpenResult.retriedAs`). */
  retries: number;
  cycleMs: number[];
  errors: string[];
}
