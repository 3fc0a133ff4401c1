#!/usr/bin/env node
/** The `termgate` executable: `agent` runs the gateway, `cloud` a local signaling stand-in, `demo` both. */
import { Command } from 'commander';
import { registerAgentCommand } from './agent-command.js';
import { registerCloudCommand } from './cloud/command.js';
import { registerDemoCommand } from './demo/command.js';

const program = new Command('termgate')
  .description('WebRTC terminals from browsers into docker exec PTYs of vPLC containers')
  .showHelpAfterError();

registerAgentCommand(program);
registerCloudCommand(program);
registerDemoCommand(program);

await program.parseAsync(process.argv);
