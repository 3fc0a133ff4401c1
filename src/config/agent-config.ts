/**
 * The agent's configuration: the flag table's raw values (command line, environment, or the table's
 * defaults), checked once at start-up. A bad value stops the agent with a message naming the flag;
 * nothing past this file re-checks them.
 */
import { readFileSync, statSync } from 'node:fs';
import type { SessionSettings } from '../../common/protocol/worker-messages.js';
import { isLoopbackHost } from '../../common/host-port.js';
import { agentCannotUse, parseIceUrl } from '../../common/ice-url.js';
import type { TurnCredentialOptions } from '../sessions/IceServers.js';
import {
  AGENT_FLAGS,
  defaultOf,
  longFlag,
  type AgentFlagName,
  type AgentFlags,
  type AgentFlagValues,
  type FlagSpec,
} from './flags.js';
import { ConfigError, type ContainerLabel } from './parsers.js';

export { ConfigError } from './parsers.js';
export type { AgentFlags } from './flags.js';

export interface AgentConfig {
  cloudUrl: string;
  token: string | undefined;
  agentId: string;
  /** connect_pty may switch to any container the selector allows, not only those the cloud granted. */
  allowContainerSwitch: boolean;
  /** How long one Docker engine call may take before it fails with TG_ERR_DOCKER_TIMEOUT. */
  dockerTimeoutMs: number;
  /** Things worth a warning at start-up (a token on the command line, a token file others can read). */
  warnings: string[];
  containerGlobs: string[];
  containerLabel: ContainerLabel | undefined;
  workers: number;
  sessionsPerWorker: number;
  /**
   * `--ice-udp-port`: every session's one public UDP port (src/ice-front/IceUdpFront.ts); worker k's peers
   * listen behind it on iceUdpPort + 1 + k (common/protocol/ice-port-slots.ts).
   */
  iceUdpPort: number | undefined;
  maxSessions: number;
  maxSessionsPerContainer: number;
  offersPerSecond: number;
  idleTimeoutMs: number;
  sweepIntervalMs: number;
  maxSdpBytes: number;
  metricsListen: { host: string; port: number } | undefined;
  logLevel: string;
  /** `--ice-server`: each session's servers unless its offer brings its own (see IceServers). */
  iceServers: string[];
  /** Time-limited TURN credentials derived per session from `--turn-secret` (TURN REST convention). */
  turn: TurnCredentialOptions;
  session: SessionSettings;
}

/** Send-buffer marks and chunk sizes: not flags, fixed by what the data channel handles well. */
const HIGH_WATER_MARK = 1024 * 1024;
const LOW_WATER_MARK = 256 * 1024;
export const OUTPUT_CHUNK_BYTES = 16 * 1024;
const MAX_PENDING_INPUT_BYTES = 1024 * 1024;

/** One flag's value: given, else the table's default, parsed by the table's parser. */
function value<K extends AgentFlagName>(flags: AgentFlags, name: K): AgentFlagValues[K] {
  const spec = AGENT_FLAGS[name] as FlagSpec<AgentFlagValues[K]>;
  return spec.parse(flags[name] ?? defaultOf(spec), longFlag(spec));
}

/** Turns raw flags into a checked configuration, or throws a ConfigError naming the flag. */
export function resolveAgentConfig(flags: AgentFlags): AgentConfig {
  const v = <K extends AgentFlagName>(name: K) => value(flags, name);
  const globs = v('containers');
  const label = v('containerLabel');
  if (globs.length === 0 && label === undefined) {
    throw new ConfigError(
      '--containers',
      'no container selector: pass --containers and/or --container-label (access is deny-by-default)',
    );
  }
  const workers = v('workers');
  const sessionsPerWorker = v('sessionsPerWorker');
  const capacity = workers * sessionsPerWorker;
  const range = v('portRange');
  const iceUdpPort = checkedIceUdpPort(v('iceUdpPort'), range, workers);
  const dockerTimeoutMs = v('dockerTimeout');
  const warnings: string[] = [];
  const iceServers = v('iceServer');
  unusableIceServers(iceServers, warnings);
  return {
    cloudUrl: checkedCloudUrl(flags, v('cloudUrl'), v('insecureCloud')),
    token: token(flags, warnings),
    agentId: v('agentId'),
    allowContainerSwitch: v('allowContainerSwitch'),
    dockerTimeoutMs,
    warnings,
    containerGlobs: globs,
    containerLabel: label,
    workers,
    sessionsPerWorker,
    iceUdpPort,
    maxSessions: Math.min(v('maxSessions') ?? capacity, capacity),
    maxSessionsPerContainer: v('maxSessionsPerContainer'),
    offersPerSecond: v('offersPerSecond'),
    idleTimeoutMs: v('idleTimeout'),
    sweepIntervalMs: v('sweepInterval'),
    maxSdpBytes: v('maxSdpBytes'),
    metricsListen: v('metricsListen'),
    logLevel: v('logLevel'),
    iceServers,
    turn: { secret: turnSecret(flags, warnings), credentialTtlMs: v('turnCredentialTtl') },
    session: {
      iceServers,
      iceTransportPolicy: v('iceTransportPolicy'),
      bindAddress: v('bindAddress'),
      portRangeBegin: range?.[0],
      portRangeEnd: range?.[1],
      iceUdpMux: iceUdpPort !== undefined,
      iceFrontPort: iceUdpPort,
      shell: v('shell'),
      dockerSocket: v('dockerSocket'),
      maxMessageBytes: v('maxMessageBytes'),
      highWaterMark: HIGH_WATER_MARK,
      lowWaterMark: LOW_WATER_MARK,
      outputChunkBytes: OUTPUT_CHUNK_BYTES,
      maxPendingInputBytes: MAX_PENDING_INPUT_BYTES,
      setupTimeoutMs: v('setupTimeout'),
      slowConsumerTimeoutMs: v('slowConsumerTimeout'),
      resumeGraceMs: v('resumeGrace'),
      replayBufferBytes: v('replayBuffer'),
      dockerTimeoutMs,
      maxMessagesPerSecond: v('maxMessagesPerSecond'),
      ackWindowBytes: v('ackWindow'),
      flushOnInterrupt: v('flushOnInterrupt') === 'on',
      turnProxy: v('turnProxy') === 'on' && v('iceTransportPolicy') === 'relay',
    },
  };
}

/**
 * `--ice-udp-port`: the front takes PORT and worker k PORT+1+k behind it, so the whole range must be
 * valid; a port range would contradict it.
 */
function checkedIceUdpPort(
  port: number | undefined,
  range: [number, number] | undefined,
  workers: number,
): number | undefined {
  if (port === undefined) return undefined;
  if (range) {
    throw new ConfigError('--ice-udp-port', 'give either --ice-udp-port or --port-range, not both');
  }
  if (port + workers > 65535) {
    throw new ConfigError(
      '--ice-udp-port',
      `the port and ${workers} workers behind it need ports ${port}-${port + workers}, past 65535: choose a lower port`,
    );
  }
  return port;
}

/**
 * In clear text the token can be read and the DTLS fingerprints in the SDP swapped by anyone on the
 * path, which defeats the data channel's encryption; only loopback is exempt.
 */
function checkedCloudUrl(flags: AgentFlags, url: URL, insecureAllowed: boolean): string {
  const clear = url.protocol === 'http:' || url.protocol === 'ws:';
  if (clear && !isLoopbackHost(url.hostname) && !insecureAllowed) {
    throw new ConfigError(
      '--cloud-url',
      `${url.protocol}//${url.host} is clear text to a host that is not loopback: use https: or wss:, ` +
        'or pass --insecure-cloud to accept that the token and the session keys can be read or swapped on the way',
    );
  }
  return String(flags.cloudUrl);
}

/** The cloud token: from `--token-file` or TERMGATE_TOKEN; `--token` on the command line still works, with a warning. */
function token(flags: AgentFlags, warnings: string[]): string | undefined {
  return secret(flags, warnings, {
    file: 'tokenFile',
    value: 'token',
    source: flags.tokenSource,
    what: 'token',
  });
}

/** The TURN shared secret: from `--turn-secret-file` or TERMGATE_TURN_SECRET, like the token. */
function turnSecret(flags: AgentFlags, warnings: string[]): string | undefined {
  return secret(flags, warnings, {
    file: 'turnSecretFile',
    value: 'turnSecret',
    source: flags.turnSecretSource,
    what: 'TURN secret',
  });
}

interface SecretFlags {
  file: 'tokenFile' | 'turnSecretFile';
  value: 'token' | 'turnSecret';
  /** Where commander took the value from; 'cli' is warned about. */
  source: string | undefined;
  /** For messages: "token". */
  what: string;
}

/** A secret from its file (preferred) or its value; never both, warned about where others can read it. */
function secret(flags: AgentFlags, warnings: string[], s: SecretFlags): string | undefined {
  const file = value(flags, s.file);
  const given = value(flags, s.value);
  const fileFlag = longFlag(AGENT_FLAGS[s.file]);
  const valueFlag = longFlag(AGENT_FLAGS[s.value]);
  const env = AGENT_FLAGS[s.value].env;
  if (file !== undefined) {
    if (given) throw new ConfigError(fileFlag, `give the ${s.what} once: ${fileFlag}, or ${env}, not both`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(fileFlag, `cannot read ${file}: ${(err as Error).message}`);
    }
    const trimmed = text.trim();
    if (!trimmed) throw new ConfigError(fileFlag, `${file} is empty`);
    if ((statSync(file).mode & 0o077) !== 0) {
      warnings.push(`the ${s.what} file ${file} can be read by other users; chmod 600 it`);
    }
    return trimmed;
  }
  if (given && s.source === 'cli') {
    warnings.push(
      `${valueFlag} on the command line can be read by every user of this host (ps, /proc): use ${env} or ${fileFlag}`,
    );
  }
  return given || undefined;
}

/** `--ice-server` URLs the agent's ICE library cannot use: said at start-up rather than found out later. */
function unusableIceServers(urls: string[], warnings: string[]): void {
  for (const url of urls) {
    const parsed = parseIceUrl(url);
    if (parsed && agentCannotUse(parsed)) {
      warnings.push(
        `--ice-server ${parsed.scheme}:${parsed.host}:${parsed.port}${parsed.transport ? `?transport=${parsed.transport}` : ''}: ` +
          'the agent reaches TURN servers over UDP only (libjuice); this one is skipped',
      );
    }
  }
}
