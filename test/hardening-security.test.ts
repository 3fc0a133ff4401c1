/**
 * Security (issue 6): deny-by-default container access for `device_id` and `connect_pty`, tried with
 * names that try to escape a glob (`../`, wildcards, very long names, unicode) and with a property-based
 * fuzzer; terminal contents and tokens never appear in the logs, even at trace level; the metrics
 * endpoint binds to 127.0.0.1 unless told otherwise.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import Docker from 'dockerode';
import fc from 'fast-check';
import { addAgentOptions, resolveAgentConfig, type AgentFlags } from '../src/config.js';
import { ContainerAccess } from '../src/containers/ContainerAccess.js';
import { TermgateError } from '../src/errors.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { docker, shellsIn, startContainers, waitForNoShells } from './helpers/containers.js';
import { useStack } from './helpers/stack.js';

const TOKEN = 'tok-Zq81-never-logged';
let outsiders: string[];
let inputsTried = 0;

const stack = useStack({
  name: 'sec',
  containers: 2,
  agentArgs: ['--token', TOKEN, '--log-level', 'trace'],
  expectCleanDrain: 'exit-0',
  beforeAgent: async (s) => {
    // Names close to the allowed ones that the selector must still refuse.
    outsiders = s.track([
      ...(await startContainers(`${s.prefix.replace('vplc-', 'xplc-')}`, 1)),
      ...(await startContainers(`${s.prefix}x`, 1)),
    ]);
    s.cloud.requiredToken = TOKEN;
  },
  beforeTeardown: () =>
    console.log(
      `# security: ${inputsTried} container names tried, none reached a container outside the selector`,
    ),
});

/** Names that try to get out of `${prefix}-*`. */
async function escapeNames(): Promise<string[]> {
  const id = await docker('inspect', '--format', '{{.Id}}', outsiders[0]!);
  const allowedId = await docker('inspect', '--format', '{{.Id}}', stack.containers[0]!);
  return [
    `../${outsiders[0]}`,
    `${stack.containers[0]}/../${outsiders[0]}`,
    `${stack.prefix}-/../../${outsiders[0]}`,
    `/${outsiders[0]}`,
    outsiders[0]!,
    outsiders[1]!, // `${prefix}x-001`: shares the prefix, not the glob's dash
    '*',
    `${stack.prefix}-*`,
    `${stack.prefix}-00?`,
    `${stack.prefix}-[0-9]*`,
    `{${outsiders[0]},${stack.containers[0]}}`,
    `!(${stack.containers[0]})`,
    `${stack.prefix}-**/${outsiders[0]}`,
    id, // a full id resolves in Docker
    id.slice(0, 12),
    allowedId.slice(0, 12), // the allowed container's own id is not its name
    `${stack.containers[0]}\u0000`,
    `${stack.containers[0]} `,
    ` ${stack.containers[0]}`,
    `${stack.containers[0]}\n`,
    `${stack.prefix}-ǅ01`,
    `${stack.prefix.toUpperCase()}-001`,
    `\u202e${stack.containers[0]}`,
    `${stack.prefix}\uff0d001`, // fullwidth hyphen
    `${stack.prefix}-${'a'.repeat(250)}`,
    `${stack.prefix}-${'a'.repeat(5000)}`,
    `${stack.prefix}-%2e%2e%2f${outsiders[0]}`,
  ];
}

describe('security', () => {
  it('refuses device_id names that try to escape the glob', async () => {
    for (const name of await escapeNames()) {
      inputsTried++;
      const answer = await stack.cloud.offer({
        session_id: `esc-${inputsTried}`,
        device_id: name,
        sdp: 'v=0',
        sdp_type: 'offer',
      });
      assert.equal(answer.status, 'error', JSON.stringify(name).slice(0, 80));
      const code = answer.status === 'error' ? answer.code : '';
      assert.ok(
        code === 'TG_ERR_CONTAINER_NOT_ALLOWED' || code === 'TG_ERR_INVALID_PAYLOAD',
        `${JSON.stringify(name).slice(0, 80)}: ${code}`,
      );
    }
    for (const c of outsiders) assert.deepEqual(await shellsIn(c), []);
  });

  it('refuses connect_pty names that try to escape the glob, and the session stays put', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      for (const name of await escapeNames()) {
        inputsTried++;
        browser.send({ type: 'connect_pty', container: name });
        const error = await browser.waitFor((m) => m.type === 'error');
        const code = error.type === 'error' ? error.code : '';
        assert.ok(
          code === 'TG_ERR_CONTAINER_NOT_ALLOWED' || code === 'TG_ERR_INVALID_MESSAGE',
          `${JSON.stringify(name).slice(0, 80)}: ${code}`,
        );
      }
      assert.ok(
        !browser.messages.some((m) => m.type === 'pty_disconnected'),
        'the terminal was never replaced',
      );
      browser.type('echo stayed-$((4*4))\n');
      await browser.waitForScreen('stayed-16');
      for (const c of outsiders) assert.deepEqual(await shellsIn(c), []);
    } finally {
      browser.close();
    }
  });

  it('authorizes only names the selector allows (property-based, real Docker)', async () => {
    const access = new ContainerAccess(new Docker(), { globs: [`${stack.prefix}-*`], label: undefined });
    const allowed = new Set(stack.containers);
    const near = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => `${stack.prefix}-${s}`),
      fc.string({ maxLength: 20 }).map((s) => `${s}${stack.prefix}-001`),
      fc
        .constantFrom(...stack.containers, ...outsiders)
        .chain((c) => fc.string({ maxLength: 6 }).map((s) => `${c}${s}`)),
      fc
        .constantFrom('..', '/', '*', '?', '[', ']', '{', '}', '!', '\\', '%2f')
        .chain((special) =>
          fc
            .nat(stack.containers[0]!.length)
            .map((at) => stack.containers[0]!.slice(0, at) + special + stack.containers[0]!.slice(at)),
        ),
    );
    await fc.assert(
      fc.asyncProperty(near, async (name) => {
        inputsTried++;
        const outcome = await access.authorize(name).then(
          () => 'allowed',
          (err: unknown) => (err instanceof TermgateError ? err.code : String(err)),
        );
        if (allowed.has(name)) return outcome === 'allowed';
        return outcome === 'TG_ERR_CONTAINER_NOT_ALLOWED' || outcome === 'TG_ERR_CONTAINER_NOT_FOUND';
      }),
      { numRuns: 500 },
    );
  });

  it('never logs terminal contents or the token, even at trace level', async () => {
    const secretIn = 'pw-Hq7Xk2-typed';
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! });
    try {
      browser.type(`echo ${secretIn}; echo out-$((7000+13))-secret\n`);
      await browser.waitForScreen('out-7013-secret');
      browser.send({ type: 'input', data: Buffer.from('echo bin-Wv3-secret\n') }, 'msgpack');
      await browser.waitForScreen('bin-Wv3-secret');
    } finally {
      browser.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
    const log = stack.agent.log;
    assert.ok(log.length > 1000, 'trace logging produced a log to search');
    for (const secret of [TOKEN, secretIn, 'out-7013', 'bin-Wv3', '7000+13']) {
      assert.ok(!log.includes(secret), `the log contains ${secret}`);
    }
  });

  it('binds the metrics endpoint to 127.0.0.1 unless told otherwise', () => {
    const saved = process.env.TERMGATE_METRICS_LISTEN;
    delete process.env.TERMGATE_METRICS_LISTEN;
    try {
      const cmd = addAgentOptions(new Command('agent')).exitOverride();
      cmd.parse(['--cloud-url', 'http://127.0.0.1:1', '--containers', 'vplc-*'], { from: 'user' });
      const config = resolveAgentConfig(cmd.opts<AgentFlags>());
      assert.equal(config.metricsListen?.host, '127.0.0.1');
      cmd.parse(
        ['--cloud-url', 'http://127.0.0.1:1', '--containers', 'vplc-*', '--metrics-listen', '0.0.0.0:9464'],
        {
          from: 'user',
        },
      );
      assert.equal(resolveAgentConfig(cmd.opts<AgentFlags>()).metricsListen?.host, '0.0.0.0');
    } finally {
      if (saved !== undefined) process.env.TERMGATE_METRICS_LISTEN = saved;
    }
  });

  it('leaves no shell behind', async () => {
    await waitForNoShells([...stack.containers, ...outsiders]);
  });
});
