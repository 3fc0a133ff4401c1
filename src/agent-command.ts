/** `termgate agent`: parse and check the flags, start the agent, drain on SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { Agent } from './Agent.js';
import { ConfigError, resolveAgentConfig, type AgentConfig, type AgentFlags } from './config/agent-config.js';
import { ConfigFile, ConfigFileError } from './config/config-file.js';
import { addAgentOptions } from './config/options.js';
import { TermgateError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import type { DrainReport } from './pool/WorkerPool.js';

/**
 * Exit status after SIGINT/SIGTERM when the drain was not clean: a worker did not confirm its drain in
 * time, or still held peers once every session had been closed (a session that did not end within the
 * close timeout, or one the registry lost track of).
 * 0 means every session ended with its reason and every worker confirmed with no peer left.
 */
export const EXIT_UNCLEAN_DRAIN = 3;

/** How long an agent that could not start waits for what it had started (the worker threads) to stop. */
const START_FAILURE_CLOSE_MS = 5_000;

function exitStatusOf(drain: DrainReport): number {
  return drain.unconfirmed === 0 && drain.peersClosed === 0 ? 0 : EXIT_UNCLEAN_DRAIN;
}

export function registerAgentCommand(program: Command): void {
  const cmd = program
    .command('agent')
    .description('run the gateway: connect to the cloud and serve terminals');
  addAgentOptions(cmd).action(() => runAgent(configure(cmd)));
}

/**
 * The checked configuration: the config file (if any) under the flags and environment, then every value
 * checked. A refusal stops the agent with exit code 2, naming the flag, or the file's line and key.
 */
function configure(cmd: Command): AgentConfig {
  let file: ConfigFile | undefined;
  try {
    file = ConfigFile.applyGiven(cmd);
    const flags = cmd.opts<AgentFlags>();
    const config = resolveAgentConfig({
      ...flags,
      tokenSource: cmd.getOptionValueSource('token'),
      turnSecretSource: cmd.getOptionValueSource('turnSecret'),
    });
    config.warnings.push(...(file?.warnings ?? []));
    return config;
  } catch (err) {
    let message: string;
    if (err instanceof ConfigFileError) message = err.message;
    else if (err instanceof ConfigError) {
      const entry = file?.locate(cmd, err.flag);
      message = entry
        ? new ConfigFileError(entry.file, entry.line, entry.key, err.message).message
        : err.message;
    } else throw err;
    process.stderr.write(`termgate agent: ${message}\nRun "termgate agent --help" for every flag.\n`);
    process.exit(2);
  }
}

async function runAgent(config: AgentConfig): Promise<void> {
  const logger = createLogger(config.logLevel);
  const agent = new Agent(config, logger);
  try {
    await agent.start();
  } catch (err) {
    // It cannot run safely (e.g. it could not end the shells it starts): say why and what to do.
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof TermgateError ? err.code : undefined;
    logger.fatal({ code, err: message }, 'the agent cannot start');
    process.stderr.write(`termgate agent: ${message}\n`);
    // What it had started must stop first: exiting under worker threads still loading aborts the process.
    await agent.close(START_FAILURE_CLOSE_MS).catch(() => undefined);
    process.exit(2);
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutdown requested');
    agent.close().then(
      (drain) => {
        const status = exitStatusOf(drain);
        if (status !== 0) logger.warn({ ...drain, status }, 'the drain was not clean');
        process.exit(status);
      },
      (err: unknown) => {
        logger.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Test-only, off by default: a request on the IPC channel crashes a worker thread
  // (common/testing/fault-injection.ts).
  if (process.env.TERMGATE_FAULT_INJECTION === '1') {
    const { installFaultInjection } = await import('../common/testing/fault-injection.js');
    installFaultInjection(agent.pool, logger);
  }
}
