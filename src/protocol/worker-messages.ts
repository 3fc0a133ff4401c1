/**
 * Everything the main thread and a pool worker say to each other, in one place.
 *
 * Each session is one long-lived Piscina task that owns one MessagePort for its whole life. A port per
 * session (not per worker) makes routing a map lookup with no session ids in the messages, lets Piscina's
 * own balancing pick the worker, and lets a session's task promise carry its end. Ports are cheap
 * (a few hundred bytes each); at 1000 sessions that is well under a megabyte.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ErrorData } from '../errors.js';
import type { SessionId } from './signaling-messages.js';

/** The seed's session states. */
export type SessionState = 'created' | 'connecting' | 'connected' | 'disconnected' | 'closed';

/** Why a session ended; readable by a person, low-cardinality for metrics. */
export type CloseReason =
  | 'browser-closed'
  | 'cloud-disconnect'
  | 'idle-timeout'
  | 'peer-failed'
  | 'offer-failed'
  | 'pty-failed'
  | 'worker-died'
  | 'shutdown';

export const CLOSE_REASONS: readonly CloseReason[] = [
  'browser-closed',
  'cloud-disconnect',
  'idle-timeout',
  'peer-failed',
  'offer-failed',
  'pty-failed',
  'worker-died',
  'shutdown',
];

/** Settings a worker needs for a session, fixed at agent start. */
export interface SessionSettings {
  iceServers: string[];
  bindAddress: string | undefined;
  portRangeBegin: number | undefined;
  portRangeEnd: number | undefined;
  shell: string[];
  dockerSocket: string;
  maxMessageBytes: number;
  /** Exec output is paused when the channel's buffered amount passes this, resumed below the low mark. */
  highWaterMark: number;
  lowWaterMark: number;
  /** Largest output message sent on the channel. */
  outputChunkBytes: number;
  /** Input bytes allowed to wait for the exec's stdin before input is refused. */
  maxPendingInputBytes: number;
  /** Data channel messages one session may send per second (token bucket, bursts of one second). */
  maxMessagesPerSecond: number;
  /** A session whose channel is not open this long after the answer is closed as `peer-failed`. */
  setupTimeoutMs: number;
}

/** The Piscina task that runs one session from offer to close. */
export interface SessionTask {
  sessionId: SessionId;
  container: string;
  offerSdp: string;
  port: MessagePort;
  /** Counters the worker writes and the main thread reads at scrape time; see session-stats.ts. */
  stats: SharedArrayBuffer;
  settings: SessionSettings;
}

export interface SessionResult {
  reason: CloseReason;
  error?: ErrorData;
}

/** Main → worker, on the session's port. */
export type MainToWorker =
  | { type: 'remote-candidate'; candidate: string; mid: string }
  | { type: 'pty-grant'; requestId: number; container: string }
  | { type: 'pty-deny'; requestId: number; error: ErrorData }
  | { type: 'close'; reason: CloseReason };

/** Worker → main, on the session's port. */
export type WorkerToMain =
  | { type: 'answer'; sdp: string }
  | { type: 'offer-failed'; error: ErrorData }
  | { type: 'local-candidate'; candidate: string; mid: string }
  | { type: 'state'; state: SessionState }
  | { type: 'pty-request'; requestId: number; container: string }
  | { type: 'pty-opened'; container: string }
  | { type: 'pty-closed'; container: string };

/**
 * Broadcast to every worker at shutdown, and the workers' replies. `crash` is test-only fault injection:
 * a worker obeys it only when TERMGATE_FAULT_INJECTION=1 was set at start (see session-worker.ts).
 */
export const DRAIN_CHANNEL = 'termgate:drain';
export type DrainMessage =
  | { type: 'drain' }
  | { type: 'drained'; threadId: number; peersClosed: number }
  | { type: 'crash'; threadId: number };
