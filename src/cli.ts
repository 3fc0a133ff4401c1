#!/usr/bin/env node
/** The `termgate` executable: `agent` runs the gateway, `cloud` a local signaling stand-in, `demo` both. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerAgentCommand } from './agent-command.js';
import { registerCloudCommand } from '../standin/cloud/command.js';
import { registerDemoCommand } from '../standin/demo/command.js';

// dist/src/cli.js → the package's own package.json, installed or in a checkout.
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command('termgate')
  .description('WebRTC terminals from browsers into docker exec PTYs of vPLC containers')
  .version(version, '-V, --version', 'print the version and exit')
  .showHelpAfterError();

registerAgentCommand(program);
registerCloudCommand(program);
registerDemoCommand(program);

await program.parseAsync(process.argv);
