#!/usr/bin/env node
/**
 * `npm run bench -- <scenario> [options]`: runs a scenario against the built agent and a direct-exec
 * baseline, prints a markdown table on stdout and writes JSON to bench/results/<scenario>-<date>.json.
 */
import os from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AGENT_NODE_ARGS_ENV } from './agent.js';
import { closeAllHarnesses, type CommonOptions } from './harness.js';
import { markdown, writeJson } from './report.js';
import { runScenario, SCENARIOS, type Scenario, type ScenarioSizes } from './run.js';

interface Flags extends ScenarioSizes {
  workers: number[];
  quick?: boolean;
  progress: boolean;
  encoding: 'json' | 'msgpack';
  browserSetup: 'actpass' | 'active';
  agentArg?: string[];
  agentNodeArg?: string[];
  outDir?: string;
}

function positive(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function list(raw: string): number[] {
  return raw.split(',').map((s) => positive(s.trim()));
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('bench')
    .description('termgate benchmarks: each scenario runs termgate and a direct dockerode TTY exec baseline')
    .argument('<scenario>', `${SCENARIOS.join(', ')} or all`)
    .addOption(
      new Option('--workers <list>', 'agent worker threads; a list (1,2) runs once per count')
        .argParser(list)
        .default([os.availableParallelism()]),
    )
    .option('--quick', 'small sizes, a few seconds (what the test suite runs)')
    .option('--no-progress', 'no progress bar on stderr')
    .addOption(
      new Option(
        '--encoding <encoding>',
        "data channel encoding of the simulated browsers (msgpack is the browser page's default)",
      )
        .choices(['json', 'msgpack'])
        .default('msgpack'),
    )
    .addOption(
      new Option('--browser-setup <role>', "DTLS role in the simulated browsers' offer (see bench/README.md)")
        .choices(['actpass', 'active'])
        .default('actpass'),
    )
    .option(
      '--agent-arg <arg...>',
      'extra flag(s) for the agent, e.g. --agent-arg=--log-level --agent-arg=info',
    )
    .option(
      '--agent-node-arg <arg...>',
      'Node flag(s) for the agent process, e.g. --agent-node-arg=--cpu-prof --agent-node-arg=--cpu-prof-dir=/tmp/prof',
    )
    .option('--out-dir <dir>', 'where the JSON goes (default bench/results)')
    .option('--sessions <n>', 'setup: sessions to open (200)', positive)
    .option('--sequential <n>', 'setup: sessions opened one after another, actpass offers (100)', positive)
    .option(
      '--concurrency <n>',
      'setup/capacity: setups in flight (20); soak: open/close loops (8)',
      positive,
    )
    .option(
      '--containers <n>',
      'containers the sessions spread over (setup/echo 10, capacity 20, soak 4)',
      positive,
    )
    .option('--keystrokes <n>', 'echo: keystrokes measured (1000)', positive)
    .option('--idle <n>', 'echo: idle sessions kept open meanwhile (200)', positive)
    .option('--bytes <n>', 'throughput: bytes of each line-output transfer, yes/seq/cat (50000000)', positive)
    .option('--block-bytes <n>', 'throughput: bytes of the dd bs=64k transfer (200000000)', positive)
    .option(
      '--rounds <n>',
      'throughput: rounds of the one-session rows, sides alternated; each row shows the medians (3)',
      positive,
    )
    .option('--parallel <n>', 'throughput: sessions streaming at once (20)', positive)
    .option('--parallel-bytes <n>', 'throughput: bytes per parallel session (20000000)', positive)
    .option('--steps <list>', 'capacity: session counts to ramp through (100,250,500,1000)', list)
    .option('--window <s>', 'capacity: seconds of idle sampling per step (7)', positive)
    .option('--duration <s>', 'soak: seconds of open/close cycling per side (150)', positive)
    .option('--floods <n>', 'interrupt: floods interrupted with Ctrl-C per side (20)', positive)
    .option('--flood-bytes <n>', 'interrupt: output let through before each Ctrl-C (4194304)', positive)
    .showHelpAfterError();
  program.parse(argv);
  const scenarioArg = program.args[0]!;
  const flags = program.opts<Flags>();
  const scenarios: Scenario[] =
    scenarioArg === 'all'
      ? [...SCENARIOS]
      : SCENARIOS.includes(scenarioArg as Scenario)
        ? [scenarioArg as Scenario]
        : [];
  if (scenarios.length === 0)
    program.error(`unknown scenario "${scenarioArg}": expected ${SCENARIOS.join(', ')} or all`);

  if (flags.agentNodeArg) process.env[AGENT_NODE_ARGS_ENV] = JSON.stringify(flags.agentNodeArg);
  const stop = () => {
    process.stderr.write('\nbench: interrupted, cleaning up\n');
    void closeAllHarnesses().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  for (const scenario of scenarios) {
    for (const workers of flags.workers) {
      const common: CommonOptions = {
        workers,
        quick: flags.quick ?? false,
        progress: flags.progress && process.stderr.isTTY,
        encoding: flags.encoding,
        browserSetup: flags.browserSetup,
        agentArgs: flags.agentArg ?? [],
        outDir: flags.outDir,
      };
      const result = await runScenario(scenario, common, flags);
      const file = writeJson(result, flags.outDir);
      process.stdout.write(`${markdown(result)}\n\n`);
      process.stderr.write(
        `bench: ${scenario} (${workers} workers) took ${result.durationSeconds.toFixed(1)} s; JSON in ${file}\n`,
      );
    }
  }
}

main(process.argv).catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await closeAllHarnesses();
  process.exit(1);
});
