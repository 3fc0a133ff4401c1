/** `termgate cloud`: runs the cloud stand-in until SIGINT/SIGTERM. */
import { Option, type Command } from 'commander';
import { createLogger } from '../logger.js';
import { CloudServer } from './CloudServer.js';

interface CloudFlags {
  listen: string;
  agentToken?: string;
  webRoot?: string;
  offerTimeout: string;
  logLevel: string;
}

/** Parses `HOST:PORT` (`[::1]:8080` for IPv6); throws naming the flag. */
export function parseListen(raw: string, flag = '--listen'): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(raw.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new Error(`invalid ${flag}: expected HOST:PORT, got ${JSON.stringify(raw)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function registerCloudCommand(program: Command): void {
  program
    .command('cloud')
    .description(
      'run a local stand-in of the cloud: Socket.IO signaling for agents and browsers, and the terminal page',
    )
    .addOption(
      new Option('--listen <host:port>', 'where HTTP and Socket.IO are served')
        .env('TERMGATE_CLOUD_LISTEN')
        .default('127.0.0.1:8080'),
    )
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
        listen = parseListen(flags.listen);
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
        webRoot: flags.webRoot,
        offerTimeoutMs,
        logger,
      });
      const url = await cloud.listen();
      process.stdout.write(`termgate cloud stand-in: open ${url}/\n`);
      const stop = () => {
        void cloud.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
