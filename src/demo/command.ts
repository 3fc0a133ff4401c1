/** `termgate demo`: cloud stand-in + agent + demo containers; prints the URL; Ctrl-C stops all of it. */
import { Option, type Command } from 'commander';
import { parseListen } from '../cloud/command.js';
import { createLogger } from '../logger.js';
import { DemoRunner } from './DemoRunner.js';

interface DemoFlags {
  listen: string;
  containers: string;
  newContainers?: boolean;
  workers: string;
  logLevel: string;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'run the cloud stand-in, an agent and demo vPLC containers on this machine, and print the URL to open',
    )
    .addOption(
      new Option('--listen <host:port>', 'where the page is served (a free port if taken)')
        .env('TERMGATE_DEMO_LISTEN')
        .default('127.0.0.1:8080'),
    )
    .addOption(
      new Option('--containers <n>', 'demo containers created when no vplc-* container runs').default('3'),
    )
    .addOption(new Option('--new-containers', 'create the demo containers even if vplc-* containers run'))
    .addOption(new Option('--workers <n>', 'agent worker threads').default('2'))
    .addOption(
      new Option('--log-level <level>', 'fatal, error, warn, info, debug or trace')
        .env('TERMGATE_LOG_LEVEL')
        .default('warn'),
    )
    .action(async (flags: DemoFlags) => {
      let listen;
      try {
        listen = parseListen(flags.listen);
      } catch (err) {
        program.error(`termgate demo: ${(err as Error).message}`);
      }
      const logger = createLogger(flags.logLevel, 'termgate-demo');
      const demo = new DemoRunner({
        host: listen.host,
        port: listen.port,
        containers: Number(flags.containers),
        newContainers: flags.newContainers ?? false,
        namePrefix: process.env.TERMGATE_DEMO_PREFIX,
        workers: Number(flags.workers),
        agentLogLevel: flags.logLevel,
        logger,
      });
      let stopping = false;
      const stop = (code: number) => {
        if (stopping) {
          process.stderr.write('termgate demo: forced exit\n');
          process.exit(130);
        }
        stopping = true;
        process.stderr.write('\ntermgate demo: stopping…\n');
        void demo.close().then(
          () => process.exit(code),
          (err: unknown) => {
            process.stderr.write(`termgate demo: teardown failed: ${String(err)}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => stop(0));
      process.on('SIGTERM', () => stop(0));
      const started = Date.now();
      try {
        const { url, devices } = await demo.start();
        process.stdout.write(
          `\ntermgate demo is up (${Date.now() - started} ms): devices ${devices.join(', ')}\n\n` +
            `  open ${url}\n  or   ${url}?device=${encodeURIComponent(devices[0]!)}\n\nCtrl-C stops it and removes the demo containers.\n`,
        );
      } catch (err) {
        process.stderr.write(`termgate demo: ${(err as Error).message}\n`);
        stop(1);
        return;
      }
      void demo.agentExited.then(() => {
        if (!stopping) {
          process.stderr.write('termgate demo: the agent exited unexpectedly\n');
          stop(1);
        }
      });
    });
}
