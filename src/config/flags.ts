/**
 * Every flag of `termgate agent`, once: its long form, environment variable, config key, parser, default,
 * help text and README row. commander's options, the environment names, the defaults applied when a value
 * is missing and the README's table are all made from this table, so a flag added here is everywhere.
 * A config file (issue 15) takes the same keys: `configKey`, the long flag without its dashes.
 */
import os from 'node:os';
import {
  agentId,
  cloudUrl,
  command,
  containerGlobs,
  containerLabel,
  flagSwitch,
  iceServers,
  integer,
  ipAddress,
  listenAddress,
  oneOf,
  optionalInteger,
  path,
  portRange,
  seconds,
  secondsOrOff,
  text,
} from './parsers.js';
import { spec, type FlagSpec } from './flag-spec.js';

export { configKey, defaultOf, longFlag, type FlagSpec } from './flag-spec.js';

export const ICE_TRANSPORT_POLICIES = ['all', 'relay'] as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** In the order of the README's table. Keys are commander's attribute names (and the code's). */
export const AGENT_FLAGS = {
  config: spec({
    flag: '--config <path>',
    env: 'TERMGATE_CONFIG',
    parse: text,
    help: 'TOML file of these settings, keys named as the flags (cloud-url = "…"); flags and environment win over it',
    readme:
      'a TOML file of these settings (`deploy/agent.toml.example`), keys named as the flags without `--`; flags and environment win over it',
  }),
  cloudUrl: spec({
    flag: '--cloud-url <url>',
    env: 'TERMGATE_CLOUD_URL',
    parse: cloudUrl,
    defaultText: '(required)',
    help: 'Socket.IO URL of the cloud signaling server (required)',
    readme:
      'Socket.IO URL of the cloud: https or wss (http and ws only to loopback, or with `--insecure-cloud`)',
  }),
  tokenFile: spec({
    flag: '--token-file <path>',
    env: 'TERMGATE_TOKEN_FILE',
    parse: text,
    help: 'file holding the auth token sent in the Socket.IO handshake',
    readme:
      'file holding the token sent as `auth.token` in the Socket.IO handshake (warned about if others can read it)',
  }),
  token: spec({
    flag: '--token <token>',
    env: 'TERMGATE_TOKEN',
    parse: text,
    help: 'auth token (deprecated on the command line, where other users see it: use TERMGATE_TOKEN or --token-file)',
    readme:
      'the token itself, best from the environment: `--token` works but warns (other users see command lines)',
  }),
  insecureCloud: spec({
    flag: '--insecure-cloud',
    env: 'TERMGATE_INSECURE_CLOUD',
    parse: flagSwitch,
    help: 'allow a clear-text http:/ws: cloud URL to a host other than loopback (exposes the token)',
    readme: 'allow a clear-text `http:`/`ws:` cloud URL to a host that is not loopback',
  }),
  agentId: spec({
    flag: '--agent-id <id>',
    env: 'TERMGATE_AGENT_ID',
    parse: agentId,
    default: () => os.hostname(),
    defaultText: 'host name',
    help: 'name this agent gives the cloud',
    readme: 'sent as `auth.agent_id`; also tags every shell, so a restart ends those of a crashed run',
  }),
  containers: spec({
    flag: '--containers <globs>',
    env: 'TERMGATE_CONTAINERS',
    parse: containerGlobs,
    help: "comma-separated container name globs sessions may reach, e.g. 'vplc-*' (deny by default)",
    readme: 'comma-separated name globs a session may reach, e.g. `vplc-*`',
  }),
  containerLabel: spec({
    flag: '--container-label <key[=value]>',
    env: 'TERMGATE_CONTAINER_LABEL',
    parse: containerLabel,
    help: 'Docker label a container must carry to be reachable (with --containers, both must match)',
    readme: 'label a container must carry (with globs, both must match)',
  }),
  allowContainerSwitch: spec({
    flag: '--allow-container-switch',
    env: 'TERMGATE_ALLOW_CONTAINER_SWITCH',
    parse: flagSwitch,
    help: "let connect_pty switch to any container the selector allows, not only the offer's device_id/devices",
    readme:
      "`connect_pty` may switch to any container the selector allows, not only the offer's `device_id` and `devices`",
  }),
  workers: spec({
    flag: '--workers <n>',
    env: 'TERMGATE_WORKERS',
    parse: integer(1, 256),
    default: () => String(os.availableParallelism()),
    defaultText: 'CPU count',
    help: 'worker threads in the pool',
    readme: 'worker threads in the pool (fixed)',
  }),
  sessionsPerWorker: spec({
    flag: '--sessions-per-worker <n>',
    env: 'TERMGATE_SESSIONS_PER_WORKER',
    parse: integer(1, 10_000),
    default: '250',
    help: 'sessions one worker hosts at once',
    readme: 'sessions one worker hosts at once',
  }),
  maxSessions: spec({
    flag: '--max-sessions <n>',
    env: 'TERMGATE_MAX_SESSIONS',
    parse: optionalInteger(1, 1_000_000),
    defaultText: 'workers × sessions per worker',
    help: 'sessions on this host at once (default: workers × sessions per worker)',
    readme: 'sessions on this host',
  }),
  maxSessionsPerContainer: spec({
    flag: '--max-sessions-per-container <n>',
    env: 'TERMGATE_MAX_SESSIONS_PER_CONTAINER',
    parse: integer(1, 100_000),
    default: '16',
    help: 'sessions into one container at once',
    readme: 'sessions into one container',
  }),
  offersPerSecond: spec({
    flag: '--offers-per-second <n>',
    env: 'TERMGATE_OFFERS_PER_SECOND',
    parse: integer(1, 100_000),
    default: '100',
    help: 'offers accepted per second (token bucket)',
    readme: 'offer rate (token bucket)',
  }),
  idleTimeout: spec({
    flag: '--idle-timeout <s>',
    env: 'TERMGATE_IDLE_TIMEOUT',
    parse: seconds,
    default: '300',
    help: 'close a session idle this long',
    readme: 'close a session with no accepted message from the browser and no output for this long',
  }),
  setupTimeout: spec({
    flag: '--setup-timeout <s>',
    env: 'TERMGATE_SETUP_TIMEOUT',
    parse: seconds,
    default: '30',
    help: 'close a session whose data channel has not opened this long after the answer (its shell goes too)',
    readme:
      'close a session whose data channel has not opened this long after the answer (the shell, started at the answer, goes with it)',
  }),
  slowConsumerTimeout: spec({
    flag: '--slow-consumer-timeout <s>',
    env: 'TERMGATE_SLOW_CONSUMER_TIMEOUT',
    parse: seconds,
    default: '60',
    help: 'close a session whose browser has not taken its output (send buffer past the high-water mark) this long',
    readme:
      'close a session (`slow-consumer`) whose send buffer stays past the high-water mark (1 MiB) this long',
  }),
  resumeGrace: spec({
    flag: '--resume-grace <s>',
    env: 'TERMGATE_RESUME_GRACE',
    parse: secondsOrOff,
    default: '120',
    help: 'keep the shell of a session whose browser dropped without a close this long, for a resume offer (0: off)',
    readme:
      'a session whose connection drops without a `close` keeps its shell this long (`disconnected`) for a resume offer with its `resume_token`; 0 ends it at once',
  }),
  replayBuffer: spec({
    flag: '--replay-buffer <bytes>',
    env: 'TERMGATE_REPLAY_BUFFER',
    parse: integer(4096, 256 * 1024 * 1024),
    default: '1048576',
    help: "output bytes kept per session for a resume; a dropped session's shell is paused when it is full",
    readme:
      'output bytes kept per session for a resume (the last ones sent; while `disconnected` the shell is paused once it is full)',
  }),
  sweepInterval: spec({
    flag: '--sweep-interval <s>',
    env: 'TERMGATE_SWEEP_INTERVAL',
    parse: seconds,
    default: '60',
    help: 'how often idle sessions are looked for',
    readme: 'how often idle sessions are looked for',
  }),
  shell: spec({
    flag: '--shell <command>',
    env: 'TERMGATE_SHELL',
    parse: command,
    default: '/bin/sh',
    help: 'command run in the container, split on spaces',
    readme: 'command run in the container (split on spaces)',
  }),
  dockerSocket: spec({
    flag: '--docker-socket <path>',
    env: 'TERMGATE_DOCKER_SOCKET',
    parse: path,
    default: '/var/run/docker.sock',
    help: 'Docker engine unix socket',
    readme: 'Docker engine socket',
  }),
  dockerTimeout: spec({
    flag: '--docker-timeout <s>',
    env: 'TERMGATE_DOCKER_TIMEOUT',
    parse: seconds,
    default: '10',
    help: 'how long one Docker engine call may take before it fails',
    readme: 'how long one Docker engine call may take before it fails with `TG_ERR_DOCKER_TIMEOUT`',
  }),
  iceServer: spec({
    flag: '--ice-server <url...>',
    env: 'TERMGATE_ICE_SERVERS',
    parse: iceServers,
    help: 'STUN/TURN server URL, repeatable (default: none, host candidates only)',
    readme: 'STUN/TURN URLs (repeatable / comma-separated)',
    readmeFlag: '--ice-server <url…>',
  }),
  iceTransportPolicy: spec({
    flag: '--ice-transport-policy <policy>',
    env: 'TERMGATE_ICE_TRANSPORT_POLICY',
    parse: oneOf(ICE_TRANSPORT_POLICIES),
    default: 'all',
    help: 'all: direct paths when they work; relay: every session through a TURN server',
    readme:
      '`relay`: browsers are offered TURN relay candidates only, so every session goes through a TURN server; `all`',
  }),
  turnProxy: spec({
    flag: '--turn-proxy <on|off>',
    env: 'TERMGATE_TURN_PROXY',
    parse: oneOf(['on', 'off'] as const),
    default: 'on',
    help: 'relay-only: reach TURN servers through a proxy in each worker that repairs the checks Chromium sends over TURN/TCP (tie-breaker 0, which the ICE library refuses; docs/turn.md)',
    readme:
      'with `--ice-transport-policy relay`: reach TURN servers through a proxy in each worker that repairs the checks Chromium sends over TURN/TCP, which the ICE library would refuse ([docs/turn.md](docs/turn.md))',
  }),
  turnSecretFile: spec({
    flag: '--turn-secret-file <path>',
    env: 'TERMGATE_TURN_SECRET_FILE',
    parse: text,
    help: "file holding the TURN server's shared secret (coturn static-auth-secret) for time-limited credentials",
    readme:
      "file holding the TURN server's shared secret (coturn `static-auth-secret`): each session gets its own time-limited TURN username and password",
  }),
  turnSecret: spec({
    flag: '--turn-secret <secret>',
    env: 'TERMGATE_TURN_SECRET',
    parse: text,
    help: 'the TURN shared secret itself (on the command line other users see it: use the file or TERMGATE_TURN_SECRET)',
    readme: 'the TURN shared secret itself, best from the environment: `--turn-secret` works but warns',
  }),
  turnCredentialTtl: spec({
    flag: '--turn-credential-ttl <s>',
    env: 'TERMGATE_TURN_CREDENTIAL_TTL',
    parse: seconds,
    default: '86400',
    help: 'how long a derived TURN credential is valid (longer than the longest session: refreshes use it)',
    readme: 'validity of a derived TURN credential (must outlast a session: its allocation refreshes use it)',
  }),
  bindAddress: spec({
    flag: '--bind-address <ip>',
    env: 'TERMGATE_BIND_ADDRESS',
    parse: ipAddress,
    defaultText: 'all',
    help: 'local address ICE binds to, e.g. 127.0.0.1',
    readme: 'local address ICE binds to',
  }),
  portRange: spec({
    flag: '--port-range <begin-end>',
    env: 'TERMGATE_PORT_RANGE',
    parse: portRange,
    defaultText: 'OS-chosen',
    help: 'UDP port range for ICE, e.g. 50000-50999',
    readme: 'UDP ports ICE may use',
  }),
  iceUdpPort: spec({
    flag: '--ice-udp-port <port>',
    env: 'TERMGATE_ICE_UDP_PORT',
    parse: optionalInteger(1024, 65535),
    defaultText: 'off',
    help: 'one UDP port for every session: a front thread listens on PORT and relays to the workers, which listen behind it on PORT+1… (ICE UDP mux)',
    readme:
      'one UDP port for every session of every worker, so one firewall rule lets browsers in; the workers listen behind it on PORT+1…PORT+workers, which need not be open (docs/deploy.md)',
  }),
  maxMessageBytes: spec({
    flag: '--max-message-bytes <n>',
    env: 'TERMGATE_MAX_MESSAGE_BYTES',
    parse: integer(256, 16 * 1024 * 1024),
    default: '65536',
    help: 'largest data channel message accepted',
    readme: 'largest data channel message accepted',
  }),
  maxSdpBytes: spec({
    flag: '--max-sdp-bytes <n>',
    env: 'TERMGATE_MAX_SDP_BYTES',
    parse: integer(1024, 1024 * 1024),
    default: '65536',
    help: 'largest SDP offer accepted',
    readme: 'largest SDP offer accepted',
  }),
  maxMessagesPerSecond: spec({
    flag: '--max-messages-per-second <n>',
    env: 'TERMGATE_MAX_MESSAGES_PER_SECOND',
    parse: integer(1, 1_000_000),
    default: '1000',
    help: 'data channel messages one session may send per second; past it they are dropped with an error (an ack that moves the flow-control window on by 1 KiB or more, or to its end, is flow control: never counted, never dropped)',
    readme:
      'data channel messages one session may send a second; past it they are dropped with an error. An `ack` that moves the window on by 1 KiB or more (or to its end) is flow control: not counted, never dropped',
  }),
  ackWindow: spec({
    flag: '--ack-window <bytes>',
    env: 'TERMGATE_ACK_WINDOW',
    parse: integer(16 * 1024, 64 * 1024 * 1024),
    default: '262144',
    help: 'unacknowledged output bytes a browser that sends `ack` may have in flight (bounds how long Ctrl-C takes to stop a flood)',
    readme:
      'output in flight, unacknowledged, to a browser that sends `ack`: bounds how long Ctrl-C takes to stop a flood',
  }),
  flushOnInterrupt: spec({
    flag: '--flush-on-interrupt <on|off>',
    env: 'TERMGATE_FLUSH_ON_INTERRUPT',
    parse: oneOf(['on', 'off'] as const),
    default: 'on',
    help: 'after a Ctrl-C under a flood, drop the output the engine still holds from before it, as the TTY drops its own queue (the `^C` echo marks where; without one nothing is dropped)',
    readme:
      "after a Ctrl-C typed while output is backed up, drop what the Docker engine still holds from before it, as the terminal's own flush does: up to the TTY's `^C` echo, never without it (README, Ctrl-C)",
  }),
  metricsListen: spec({
    flag: '--metrics-listen <host:port|off>',
    env: 'TERMGATE_METRICS_LISTEN',
    parse: listenAddress,
    default: '127.0.0.1:9464',
    help: 'where /metrics, /healthz and /readyz are served',
    readme: '`/metrics`, `/healthz`, `/readyz`',
  }),
  logLevel: spec({
    flag: '--log-level <level>',
    env: 'TERMGATE_LOG_LEVEL',
    parse: oneOf(LOG_LEVELS),
    default: 'info',
    help: 'fatal, error, warn, info, debug or trace',
    readme: 'pino JSON logs on stderr',
  }),
};

export type AgentFlagName = keyof typeof AGENT_FLAGS;

/** Every flag's value once parsed. */
export type AgentFlagValues = {
  [K in AgentFlagName]: (typeof AGENT_FLAGS)[K] extends FlagSpec<infer T> ? T : never;
};

/** What commander (or a test, or a config file) hands over: raw values by flag name. */
export type AgentFlags = Partial<Record<AgentFlagName, string | string[] | boolean>> & {
  /** Where commander took `token` from ('cli', 'env', …); a token typed on the command line is warned about. */
  tokenSource?: string | undefined;
  /** Likewise for `turnSecret`. */
  turnSecretSource?: string | undefined;
};
