/** `termgate cloud`: runs the cloud stand-in until SIGINT/SIGTERM. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { createLogger } from '../../common/logger.js';
import { CloudServer } from './CloudServer.js';
import { isLoopbackHost, parseHostPort } from '../../common/host-port.js';
import { parseOrigin } from './OriginPolicy.js';

interface CloudFlags {
  listen: string;
  public?: boolean;
  allowOrigin?: string[];
  agentToken?: string;
  webRoot?: string;
  offerTimeout: string;
  logLevel: string;
}

/** Parses `HOST:PORT` (`[::1]:8080` for IPv6); throws naming the flag. */
export function parseListen(raw: string, flag = '--listen'): { host: string; port: number } {
  const listen = parseHostPort(raw);
  if (!listen) throw new Error(`invalid ${flag}: expected HOST:PORT, got ${JSON.stringify(raw)}`);
  return listen;
}

/**
 * `--listen` and `--public` together: a non-loopback address needs `--public`. Throws a message for
 * the person at the keyboard.
 */
export function checkExposure(raw: string, isPublic: boolean | undefined): { host: string; port: number } {
  const listen = parseListen(raw);
  if (!isLoopbackHost(listen.host) && !isPublic) {
    throw new Error(
      `--listen ${raw} is not a loopback address. The cloud stand-in is for demos, tests and benches on ` +
        'this machine; pass --public to listen there anyway (the browser token stays required, and ' +
        'TLS belongs in front of it: see docs/cloud.md)',
    );
  }
  return listen;
}

/** The warning printed when `--public` exposes the stand-in. */
export function exposureWarning(command: string): string {
  return (
    `${command}: listening beyond loopback (--public). Anyone with the printed URL, token included, ` +
    'gets a root shell in the served containers; traffic is plain HTTP: put TLS in front (docs/cloud.md).\n'
  );
}

/** Options shared by `termgate cloud` and `termgate demo`. */
export function exposureOptions(): Option[] {
  return [
    new Option(
      '--public',
      'allow a non-loopback --listen (the browser token stays required; put TLS in front)',
    ),
    new Option(
      '--allow-origin <origin...>',
      'further origin(s) the page may be loaded from, e.g. https://termgate.example (a TLS proxy)',
    ).argParser((raw: string, previous: string[] | undefined) => {
      try {
        parseOrigin(raw);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
      return [...(previous ?? []), raw];
    }),
  ];
}

export function registerCloudCommand(program: Command): void {
  const command = program
    .command('cloud')
    .description(
      'run a local stand-in of the cloud (for demos, tests and benches; not a product to expose): ' +
        'Socket.IO signaling for agents and browsers, and the terminal page',
    )
    .addOption(
      new Option('--listen <host:port>', 'where HTTP and Socket.IO are served (loopback unless --public)')
        .env('TERMGATE_CLOUD_LISTEN')
        .default('127.0.0.1:8080'),
    );
  for (const option of exposureOptions()) command.addOption(option);
  command
    .addOption(
      new Option('--agent-token <token>', 'token agents must present (required)').env('TERMGATE_AGENT_TOKEN'),
    )
    .addOption(
      new Option('--web-root <dir>', 'directory of the built page (default: web/dist)').env(
        'TERMGATE_WEB_ROOT',
      ),
    )
    .addOption(
      new Option('--offer-timeout <seconds>', 'how long an agent has to answer an offer')
        .env('TERMGATE_OFFER_TIMEOUT')
        .default('15'),
    )
    .addOption(
      new Option('--log-level <level>', 'fatal, error, warn, info, debug or trace')
        .env('TERMGATE_LOG_LEVEL')
        .default('info'),
    )
    .action(async (flags: CloudFlags) => {
      if (!flags.agentToken)
        program.error('termgate cloud: --agent-token (or TERMGATE_AGENT_TOKEN) is required');
      let listen;
      try {
        listen = checkExposure(flags.listen, flags.public);
      } catch (err) {
        program.error(`termgate cloud: ${(err as Error).message}`);
      }
      const offerTimeoutMs = Math.round(Number(flags.offerTimeout) * 1000);
      if (!Number.isFinite(offerTimeoutMs) || offerTimeoutMs <= 0) {
        program.error(`termgate cloud: invalid --offer-timeout ${JSON.stringify(flags.offerTimeout)}`);
      }
      const logger = createLogger(flags.logLevel, 'termgate-cloud');
      const cloud = new CloudServer({
        agentToken: flags.agentToken,
        host: listen.host,
        port: listen.port,
        public: flags.public ?? false,
        allowedOrigins: flags.allowOrigin,
        webRoot: flags.webRoot,
        offerTimeoutMs,
        logger,
      });
      const url = await cloud.listen();
      if (flags.public) process.stderr.write(exposureWarning('termgate cloud'));
      // The browser token appears here only, in the URL's fragment (never sent to a server, never logged).
      process.stdout.write(
        `termgate cloud stand-in: agents connect to ${url}\n` +
          `open ${cloud.pageUrl()}\n(the part after # is this run's browser token: share it only with who may use the terminals)\n`,
      );
      const stop = () => {
        void cloud.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
