/** `termgate demo`: cloud stand-in + agent + demo containers; prints the URL; Ctrl-C stops all of it. */
import { Option, type Command } from 'commander';
import { checkExposure, exposureOptions, exposureWarning } from '../cloud/command.js';
import { createLogger } from '../../common/logger.js';
import { DemoRunner } from './DemoRunner.js';

interface DemoFlags {
  listen: string;
  public?: boolean;
  allowOrigin?: string[];
  containers: string;
  workers: string;
  logLevel: string;
}

/** A second Ctrl-C within this many ms is the same one delivered twice, not a request to force. */
const FORCE_AFTER_MS = 1000;

export function registerDemoCommand(program: Command): void {
  const command = program
    .command('demo')
    .description(
      'run the cloud stand-in, an agent and demo vPLC containers of its own on this machine, and print the URL to open',
    )
    .addOption(
      new Option(
        '--listen <host:port>',
        'where the page is served (a free port if taken; loopback unless --public)',
      )
        .env('TERMGATE_DEMO_LISTEN')
        .default('127.0.0.1:8080'),
    );
  for (const option of exposureOptions()) command.addOption(option);
  command
    .addOption(
      new Option('--containers <n>', "demo containers to create (labelled with this run's id)").default('3'),
    )
    .addOption(new Option('--workers <n>', 'agent worker threads').default('2'))
    .addOption(
      new Option('--log-level <level>', 'fatal, error, warn, info, debug or trace')
        .env('TERMGATE_LOG_LEVEL')
        .default('warn'),
    )
    .action(async (flags: DemoFlags) => {
      let listen;
      try {
        listen = checkExposure(flags.listen, flags.public);
      } catch (err) {
        program.error(`termgate demo: ${(err as Error).message}`);
      }
      const logger = createLogger(flags.logLevel, 'termgate-demo');
      const demo = new DemoRunner({
        host: listen.host,
        port: listen.port,
        public: flags.public ?? false,
        allowedOrigins: flags.allowOrigin,
        containers: Number(flags.containers),
        namePrefix: process.env.TERMGATE_DEMO_PREFIX,
        workers: Number(flags.workers),
        agentLogLevel: flags.logLevel,
        logger,
      });
      let stoppingSince: number | undefined;
      const stop = (code: number) => {
        if (stoppingSince !== undefined) {
          // One Ctrl-C may arrive twice: the terminal signals the whole process group, and `npm start`
          // forwards it to its child as well. Only a later one forces.
          if (Date.now() - stoppingSince < FORCE_AFTER_MS) return;
          process.stderr.write('termgate demo: forced exit (its containers may be left)\n');
          process.exit(130);
        }
        stoppingSince = Date.now();
        process.stderr.write('\ntermgate demo: stopping… (Ctrl-C again to force)\n');
        void demo.close().then(
          () => {
            const left = demo.containersLeft;
            if (left.length > 0) {
              process.stderr.write(`termgate demo: stopped, but could not remove ${left.join(', ')}\n`);
              process.exit(1);
            }
            const removed = demo.containers;
            process.stderr.write(
              `termgate demo: stopped; removed its ${removed.length} containers${removed.length ? ` (${removed.join(', ')})` : ''}\n`,
            );
            process.exit(code);
          },
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
        const { url, devices, label, pageUrl } = await demo.start();
        if (flags.public) process.stderr.write(exposureWarning('termgate demo'));
        // The browser token appears here only, in the URLs' fragment (never sent to a server, never logged).
        process.stdout.write(
          `\ntermgate demo is up (${Date.now() - started} ms): devices ${devices.join(', ')}\n` +
            `  (its own containers, label ${label}: the only ones its agent serves)\n\n` +
            `  open ${url}\n  or   ${pageUrl(devices[0])}\n\n` +
            "The part after # is this run's browser token: whoever has the URL gets a shell in the demo containers.\n" +
            'Ctrl-C stops it and removes the demo containers.\n',
        );
      } catch (err) {
        process.stderr.write(`termgate demo: ${(err as Error).message}\n`);
        stop(1);
        return;
      }
      void demo.agentExited.then(() => {
        if (stoppingSince === undefined) {
          process.stderr.write('termgate demo: the agent exited unexpectedly\n');
          stop(1);
        }
      });
    });
}
