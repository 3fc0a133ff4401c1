/** `termgate agent`: parse and check the flags, start the agent, drain on SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { Agent } from './Agent.js';
import {
  addAgentOptions,
  ConfigError,
  resolveAgentConfig,
  type AgentConfig,
  type AgentFlags,
} from './config.js';
import { createLogger } from './logger.js';

export function registerAgentCommand(program: Command): void {
  const cmd = program
    .command('agent')
    .description('run the gateway: connect to the cloud and serve terminals');
  addAgentOptions(cmd).action((flags: AgentFlags) => runAgent(flags));
}

function runAgent(flags: AgentFlags): void {
  let config: AgentConfig;
  try {
    config = resolveAgentConfig(flags);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`termgate agent: ${err.message}\nRun "termgate agent --help" for every flag.\n`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  const agent = new Agent(config, logger);
  agent.start();

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutdown requested');
    agent.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Test-only fault injection, off by default: SIGUSR2 makes one worker thread throw an uncaught error.
  if (process.env.TERMGATE_FAULT_INJECTION === '1') {
    logger.warn('fault injection enabled (TERMGATE_FAULT_INJECTION=1): for tests only');
    process.on('SIGUSR2', () => {
      const threadId = agent.pool.injectCrash();
      logger.warn({ worker: threadId }, 'fault injected: crashing a worker thread');
    });
  }
}
