/**
 * The agent's configuration: CLI flags, each with an environment variable, validated once at start-up.
 * A bad value stops the agent with a message naming the flag; nothing past this file re-checks them.
 */
import os from 'node:os';
import { Command, Option } from 'commander';
import type { SessionSettings } from './protocol/worker-messages.js';

export interface AgentConfig {
  cloudUrl: string;
  token: string | undefined;
  agentId: string;
  containerGlobs: string[];
  containerLabel: { key: string; value: string | undefined } | undefined;
  workers: number;
  sessionsPerWorker: number;
  maxSessions: number;
  maxSessionsPerContainer: number;
  offersPerSecond: number;
  idleTimeoutMs: number;
  sweepIntervalMs: number;
  maxSdpBytes: number;
  metricsListen: { host: string; port: number } | undefined;
  logLevel: string;
  session: SessionSettings;
}

export class ConfigError extends Error {
  constructor(flag: string, problem: string) {
    super(`invalid ${flag}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** The raw strings commander collects; every one is checked by `resolveAgentConfig`. */
export interface AgentFlags {
  cloudUrl?: string;
  token?: string;
  agentId?: string;
  containers?: string;
  containerLabel?: string;
  workers?: string;
  sessionsPerWorker?: string;
  maxSessions?: string;
  maxSessionsPerContainer?: string;
  offersPerSecond?: string;
  idleTimeout?: string;
  setupTimeout?: string;
  sweepInterval?: string;
  shell?: string;
  dockerSocket?: string;
  iceServer?: string[];
  bindAddress?: string;
  portRange?: string;
  maxMessageBytes?: string;
  maxSdpBytes?: string;
  maxMessagesPerSecond?: string;
  metricsListen?: string;
  logLevel?: string;
}

const DEFAULT_SESSIONS_PER_WORKER = 250;

/** Declares every agent flag on a commander command. */
export function addAgentOptions(cmd: Command): Command {
  const opt = (flags: string, description: string, env: string, defaultValue?: string) => {
    const o = new Option(flags, description).env(env);
    if (defaultValue !== undefined) o.default(defaultValue);
    return o;
  };
  return cmd
    .addOption(
      opt(
        '--cloud-url <url>',
        'Socket.IO URL of the cloud signaling server (required)',
        'TERMGATE_CLOUD_URL',
      ),
    )
    .addOption(opt('--token <token>', 'auth token sent in the Socket.IO handshake', 'TERMGATE_TOKEN'))
    .addOption(opt('--agent-id <id>', 'name this agent gives the cloud', 'TERMGATE_AGENT_ID', os.hostname()))
    .addOption(
      opt(
        '--containers <globs>',
        "comma-separated container name globs sessions may reach, e.g. 'vplc-*' (deny by default)",
        'TERMGATE_CONTAINERS',
      ),
    )
    .addOption(
      opt(
        '--container-label <key[=value]>',
        'Docker label a container must carry to be reachable (with --containers, both must match)',
        'TERMGATE_CONTAINER_LABEL',
      ),
    )
    .addOption(
      opt(
        '--workers <n>',
        'worker threads in the pool',
        'TERMGATE_WORKERS',
        String(os.availableParallelism()),
      ),
    )
    .addOption(
      opt(
        '--sessions-per-worker <n>',
        'sessions one worker hosts at once',
        'TERMGATE_SESSIONS_PER_WORKER',
        String(DEFAULT_SESSIONS_PER_WORKER),
      ),
    )
    .addOption(
      opt(
        '--max-sessions <n>',
        'sessions on this host at once (default: workers × sessions per worker)',
        'TERMGATE_MAX_SESSIONS',
      ),
    )
    .addOption(
      opt(
        '--max-sessions-per-container <n>',
        'sessions into one container at once',
        'TERMGATE_MAX_SESSIONS_PER_CONTAINER',
        '16',
      ),
    )
    .addOption(
      opt(
        '--offers-per-second <n>',
        'offers accepted per second (token bucket)',
        'TERMGATE_OFFERS_PER_SECOND',
        '100',
      ),
    )
    .addOption(
      opt('--idle-timeout <seconds>', 'close a session idle this long', 'TERMGATE_IDLE_TIMEOUT', '300'),
    )
    .addOption(
      opt(
        '--setup-timeout <seconds>',
        'close a session whose data channel has not opened this long after the answer (its shell goes too)',
        'TERMGATE_SETUP_TIMEOUT',
        '30',
      ),
    )
    .addOption(
      opt(
        '--sweep-interval <seconds>',
        'how often idle sessions are looked for',
        'TERMGATE_SWEEP_INTERVAL',
        '60',
      ),
    )
    .addOption(
      opt('--shell <command>', 'command run in the container, split on spaces', 'TERMGATE_SHELL', '/bin/sh'),
    )
    .addOption(
      opt(
        '--docker-socket <path>',
        'Docker engine unix socket',
        'TERMGATE_DOCKER_SOCKET',
        '/var/run/docker.sock',
      ),
    )
    .addOption(
      new Option(
        '--ice-server <url...>',
        'STUN/TURN server URL, repeatable (default: none, host candidates only)',
      ).env('TERMGATE_ICE_SERVERS'),
    )
    .addOption(
      opt('--bind-address <ip>', 'local address ICE binds to, e.g. 127.0.0.1', 'TERMGATE_BIND_ADDRESS'),
    )
    .addOption(
      opt('--port-range <begin-end>', 'UDP port range for ICE, e.g. 50000-50999', 'TERMGATE_PORT_RANGE'),
    )
    .addOption(
      opt(
        '--max-message-bytes <n>',
        'largest data channel message accepted',
        'TERMGATE_MAX_MESSAGE_BYTES',
        '65536',
      ),
    )
    .addOption(opt('--max-sdp-bytes <n>', 'largest SDP offer accepted', 'TERMGATE_MAX_SDP_BYTES', '65536'))
    .addOption(
      opt(
        '--max-messages-per-second <n>',
        'data channel messages one session may send per second; past it they are dropped with an error',
        'TERMGATE_MAX_MESSAGES_PER_SECOND',
        '1000',
      ),
    )
    .addOption(
      opt(
        '--metrics-listen <host:port|off>',
        'where /metrics, /healthz and /readyz are served',
        'TERMGATE_METRICS_LISTEN',
        '127.0.0.1:9464',
      ),
    )
    .addOption(
      opt('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'TERMGATE_LOG_LEVEL', 'info'),
    );
}

function integer(flag: string, raw: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === undefined || !/^\d+$/.test(raw.trim()))
    throw new ConfigError(flag, `expected an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(flag, `${n} is outside ${min}..${max}`);
  return n;
}

function seconds(flag: string, raw: string | undefined): number {
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new ConfigError(flag, `expected a positive number of seconds, got ${JSON.stringify(raw)}`);
  }
  return Math.round(n * 1000);
}

function cloudUrl(raw: string | undefined): string {
  if (!raw) throw new ConfigError('--cloud-url', 'required (or set TERMGATE_CLOUD_URL)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('--cloud-url', `not a URL: ${JSON.stringify(raw)}`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new ConfigError('--cloud-url', `scheme must be http, https, ws or wss, got ${url.protocol}`);
  }
  return raw;
}

function containerGlobs(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const globs = raw.split(',').map((g) => g.trim());
  for (const g of globs) {
    if (!/^[A-Za-z0-9_.*?[\]-]{1,255}$/.test(g)) {
      throw new ConfigError(
        '--containers',
        `${JSON.stringify(g)} is not a container name glob (letters, digits, _ . - and * ? [ ])`,
      );
    }
  }
  return globs;
}

function containerLabel(raw: string | undefined): AgentConfig['containerLabel'] {
  if (raw === undefined) return undefined;
  const eq = raw.indexOf('=');
  const key = eq < 0 ? raw : raw.slice(0, eq);
  if (!/^[A-Za-z0-9_.\-/]{1,255}$/.test(key))
    throw new ConfigError('--container-label', `bad label key ${JSON.stringify(key)}`);
  return { key, value: eq < 0 ? undefined : raw.slice(eq + 1) };
}

function portRange(raw: string | undefined): [number, number] | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+)-(\d+)$/.exec(raw.trim());
  if (!m) throw new ConfigError('--port-range', `expected BEGIN-END, got ${JSON.stringify(raw)}`);
  const begin = integer('--port-range', m[1], 1024, 65535);
  const end = integer('--port-range', m[2], 1024, 65535);
  if (end < begin) throw new ConfigError('--port-range', `end ${end} is below begin ${begin}`);
  return [begin, end];
}

function metricsListen(raw: string | undefined): AgentConfig['metricsListen'] {
  if (raw === undefined || raw === 'off') return undefined;
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d+)$/.exec(raw);
  if (!m) throw new ConfigError('--metrics-listen', `expected HOST:PORT or off, got ${JSON.stringify(raw)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: integer('--metrics-listen', m[2], 0, 65535) };
}

function iceServers(raw: string[] | string | undefined): string[] {
  if (raw === undefined) return [];
  const list = (Array.isArray(raw) ? raw : [raw])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const url of list) {
    if (!/^(stun|turn|turns):/.test(url))
      throw new ConfigError(
        '--ice-server',
        `expected a stun:, turn: or turns: URL, got ${JSON.stringify(url)}`,
      );
  }
  return list;
}

function bindAddress(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!/^[0-9a-fA-F.:]+$/.test(raw))
    throw new ConfigError('--bind-address', `expected an IP address, got ${JSON.stringify(raw)}`);
  return raw;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Turns raw flags into a checked configuration, or throws a ConfigError naming the flag. */
export function resolveAgentConfig(flags: AgentFlags): AgentConfig {
  const globs = containerGlobs(flags.containers);
  const label = containerLabel(flags.containerLabel);
  if (globs.length === 0 && label === undefined) {
    throw new ConfigError(
      '--containers',
      'no container selector: pass --containers and/or --container-label (access is deny-by-default)',
    );
  }
  const workers = integer('--workers', flags.workers, 1, 256);
  const sessionsPerWorker = integer('--sessions-per-worker', flags.sessionsPerWorker, 1, 10_000);
  const maxSessions =
    flags.maxSessions === undefined
      ? workers * sessionsPerWorker
      : integer('--max-sessions', flags.maxSessions, 1, 1_000_000);
  const range = portRange(flags.portRange);
  const maxMessageBytes = integer('--max-message-bytes', flags.maxMessageBytes, 256, 16 * 1024 * 1024);
  const shell = (flags.shell ?? '/bin/sh').split(' ').filter(Boolean);
  if (shell.length === 0) throw new ConfigError('--shell', 'empty command');
  const logLevel = flags.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError('--log-level', `expected one of ${LOG_LEVELS.join(', ')}`);
  if (!flags.dockerSocket) throw new ConfigError('--docker-socket', 'empty path');

  return {
    cloudUrl: cloudUrl(flags.cloudUrl),
    token: flags.token || undefined,
    agentId: flags.agentId || os.hostname(),
    containerGlobs: globs,
    containerLabel: label,
    workers,
    sessionsPerWorker,
    maxSessions: Math.min(maxSessions, workers * sessionsPerWorker),
    maxSessionsPerContainer: integer(
      '--max-sessions-per-container',
      flags.maxSessionsPerContainer,
      1,
      100_000,
    ),
    offersPerSecond: integer('--offers-per-second', flags.offersPerSecond, 1, 100_000),
    idleTimeoutMs: seconds('--idle-timeout', flags.idleTimeout),
    sweepIntervalMs: seconds('--sweep-interval', flags.sweepInterval),
    maxSdpBytes: integer('--max-sdp-bytes', flags.maxSdpBytes, 1024, 1024 * 1024),
    metricsListen: metricsListen(flags.metricsListen),
    logLevel,
    session: {
      iceServers: iceServers(flags.iceServer),
      bindAddress: bindAddress(flags.bindAddress),
      portRangeBegin: range?.[0],
      portRangeEnd: range?.[1],
      shell,
      dockerSocket: flags.dockerSocket,
      maxMessageBytes,
      highWaterMark: 1024 * 1024,
      lowWaterMark: 256 * 1024,
      outputChunkBytes: 16 * 1024,
      maxPendingInputBytes: 1024 * 1024,
      setupTimeoutMs: seconds('--setup-timeout', flags.setupTimeout),
      maxMessagesPerSecond: integer(
        '--max-messages-per-second',
        flags.maxMessagesPerSecond ?? '1000',
        1,
        1_000_000,
      ),
    },
  };
}
