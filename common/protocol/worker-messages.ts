/**
 * Everything the main thread and a pool worker say to each other, in one place: the session task, the
 * messages on a session's port, and the messages on a worker's line to the pool. Both travel through a
 * `Channel` (common/Channel.ts), so each is a pair of maps of requests and notifications, one per
 * direction, and replies, timeouts and errors are the channel's.
 *
 * Each session is one long-lived Piscina task that owns one MessagePort for its whole life. A port per
 * session (not per worker) makes routing a map lookup with no session ids in the messages, lets Piscina's
 * own balancing pick the worker, and lets a session's task promise carry its end. Ports are cheap
 * (a few hundred bytes each); at 1000 sessions that is well under a megabyte.
 *
 * What concerns a worker rather than one of its sessions (the drain at shutdown, its logs) goes over the
 * worker's line: two BroadcastChannels, one each way, every message addressed by thread id. Piscina
 * hands every worker the same `workerData` and keeps `parentPort` for itself, so a named channel is the
 * one way to reach a given thread.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ChannelWire } from '../Channel.js';
import type { ErrorData } from '../errors.js';
import type { SessionId } from './signaling.js';

/** The session states the cloud's contract names. */
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
  | 'slow-consumer'
  | 'resume-expired'
  | 'shutdown';

export const CLOSE_REASONS: readonly CloseReason[] = [
  'browser-closed',
  'cloud-disconnect',
  'idle-timeout',
  'peer-failed',
  'offer-failed',
  'pty-failed',
  'worker-died',
  'slow-consumer',
  'resume-expired',
  'shutdown',
];

/** What the pool hands every worker thread at start (Piscina's `workerData`). */
export interface PoolWorkerData {
  /** The per-worker gauges (worker-stats.ts); absent with metrics off. */
  workerStats: SharedArrayBuffer | undefined;
  /** The ICE UDP port slots (ice-port-slots.ts); absent without `--ice-udp-port`. */
  icePorts: SharedArrayBuffer | undefined;
  /** Which browser each of the ICE UDP front's route sockets stands for (front-routes.ts); same. */
  frontRoutes: SharedArrayBuffer | undefined;
  logLevel: string;
}

/**
 * An ICE server as libdatachannel takes it: a `stun:` URL (or one in its `turn:user:pass@host` form), or
 * a TURN server with its credentials.
 */
export type PeerIceServer =
  | string
  | {
      hostname: string;
      port: number;
      username?: string;
      password?: string;
      relayType: 'TurnUdp' | 'TurnTcp' | 'TurnTls';
    };

/** Settings a worker needs for a session: the agent's, with the session's own ICE servers. */
export interface SessionSettings {
  iceServers: PeerIceServer[];
  /** `relay`: only TURN-relayed candidates (`--ice-transport-policy`). */
  iceTransportPolicy: 'all' | 'relay';
  bindAddress: string | undefined;
  portRangeBegin: number | undefined;
  portRangeEnd: number | undefined;
  /** Every peer of a worker shares one UDP port (`--ice-udp-port`); the worker sets the port range to it. */
  iceUdpMux: boolean;
  /**
   * `--ice-udp-port`: the public port of the ICE UDP front, which relays every session to its worker's
   * port; candidates name it instead of the worker's (workers/front-candidates.ts).
   */
  iceFrontPort: number | undefined;
  /** TURN servers are reached through the worker's proxy (workers/TurnProxy.ts); relay-only sessions. */
  turnProxy: boolean;
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
  /** Unacknowledged output bytes in flight to a browser that acks; past it the PTY is paused. */
  ackWindowBytes: number;
  /** After a Ctrl-C under a flood, drop what the engine holds from before it (InterruptFlush). */
  flushOnInterrupt: boolean;
  /** A session whose channel is not open this long after the answer is closed as `peer-failed`. */
  setupTimeoutMs: number;
  /** A session whose send buffer stays past the high-water mark this long is closed as `slow-consumer`. */
  slowConsumerTimeoutMs: number;
  /** A session whose browser dropped without a close waits this long for a resume offer; 0: no resume. */
  resumeGraceMs: number;
  /** Output bytes kept per session for a resume (ReplayBuffer). */
  replayBufferBytes: number;
  /** How long one Docker engine call may take. */
  dockerTimeoutMs: number;
}

/** Who started a shell: the session, the agent (`--agent-id`) and the agent's run (PID and start time). */
export interface ShellTags {
  session: string;
  agentId: string;
  instance: string;
}

/** The Piscina task that runs one session from its offer to its close. */
export interface SessionTask {
  sessionId: SessionId;
  /** The container's name, as authorized and as the browser knows it. */
  container: string;
  /** The full id the name resolved to when it was authorized: the exec goes there and nowhere else. */
  containerId: string;
  /** Added to every exec's environment, so a shell can be traced to its session and agent run. */
  shellTags: ShellTags;
  /** The session's port: the main thread's offer, candidates and close come on it (`MainToSession`). */
  port: MessagePort;
  /** Counters the worker writes and the main thread reads at scrape time; see session-stats.ts. */
  stats: SharedArrayBuffer;
  settings: SessionSettings;
}

export interface SessionResult {
  reason: CloseReason;
  error?: ErrorData;
}

/** An ICE candidate as the signaling topic carries it: a browser's `sdp_mid`/`sdp_mline_index` may be absent. */
export interface IceCandidate {
  candidate: string;
  sdpMid: string | null;
  sdpMLineIndex: number | null;
}

/** A container a session may attach a PTY to: its name, and the full id it resolved to when authorized. */
export interface PtyTarget {
  container: string;
  containerId: string;
}

/** A resume offer's proof and position: the token from `pty_connected`, the last `offset` received. */
export interface ResumeRequest {
  token: string;
  offset: number;
}

/** Main thread → a session's worker, on the session's port. */
export interface MainToSession {
  requests: {
    /**
     * Applies the browser's offer; the answer SDP comes back. With `resume`, the offer reattaches a new
     * connection to this session's shell (issue 13), or is refused (TG_ERR_RESUME_*).
     */
    offer: { params: { sdp: string; resume?: ResumeRequest }; result: { sdp: string } };
  };
  notifications: {
    'remote-candidate': IceCandidate;
    close: { reason: CloseReason };
    /**
     * The browser's signaling went away (the cloud's `webrtc:disconnect` with reason `browser-gone`: a
     * tab reloaded or killed): a resumable session waits for a resume, any other ends.
     */
    'browser-gone': Record<string, never>;
  };
}

/** A session's worker → the main thread, on the session's port. */
export interface SessionToMain {
  requests: {
    /** connect_pty: may the terminal move to `container`? Granted with its full id, or refused. */
    pty: { params: { container: string }; result: PtyTarget };
  };
  notifications: {
    /** The agent's candidate, with the media section it belongs to (sdp_mid and its index). */
    'local-candidate': { candidate: string; sdpMid: string; sdpMLineIndex: number };
    state: { state: SessionState };
    'pty-opened': { container: string };
    /** A shell could not be seen or ended from the host (logged and counted by the main thread). */
    'cleanup-failed': { error: ErrorData };
    /** A handler in the worker threw on something this session received; the session went on. */
    'handler-fault': { error: ErrorData };
    /** The selected ICE path became known or changed kind; `rttMs` is SCTP's round trip on it. */
    path: SessionPath;
  };
}

/** What a session's selected ICE candidate pair says about its path (workers/selected-path.ts). */
export type PathKind = 'unknown' | 'host' | 'srflx' | 'prflx' | 'relay';

/** A session's selected ICE path and SCTP's round trip on it (ms, undefined until measured). */
export interface SessionPath {
  kind: PathKind;
  rttMs: number | undefined;
}

/** In the order of their codes in a session's stats (session-stats.ts `pathKind`). */
export const PATH_KINDS: readonly PathKind[] = ['unknown', 'host', 'srflx', 'prflx', 'relay'];

/** The pool → one worker, on its line. */
export interface PoolToWorker {
  requests: {
    /** Shutdown: close every session's peer, clean the addon up; then the thread may be destroyed. */
    drain: { params: Record<string, never>; result: { peersClosed: number } };
  };
  notifications: Record<never, never>;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** One log line of a worker, written by the main thread's logger with the worker's id bound. */
export interface WorkerLogRecord {
  level: LogLevel;
  msg: string;
  /** Structured fields (`session`, `code`, `err`…); never terminal contents. */
  fields: Record<string, unknown>;
}

/** One worker → the pool, on its line. */
export interface WorkerToPool {
  requests: Record<never, never>;
  notifications: {
    /** The worker loaded the session module (its first task): from now on it holds an addon and answers `drain`. */
    loaded: Record<string, never>;
    log: WorkerLogRecord;
  };
}

/** The worker lines: the pool posts on the first, workers on the second, each message addressed. */
export const POOL_TO_WORKERS = 'termgate:pool-to-workers';
export const WORKERS_TO_POOL = 'termgate:workers-to-pool';

/** A message on a worker line, for or from the thread `thread`. */
export interface LineEnvelope {
  thread: number;
  message: ChannelWire;
}
