/**
 * Security (issue 6): deny-by-default container access for `device_id` and `connect_pty`, tried with
 * names that try to escape a glob (`../`, wildcards, very long names, unicode) and with a property-based
 * fuzzer, while Docker's own event stream shows that no exec ever reached a container outside the
 * selector; terminal contents and tokens never appear in the logs, even at trace level; an agent started
 * with the default metrics address answers on loopback and cannot be reached from a non-loopback address.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import Docker from 'dockerode';
import fc from 'fast-check';
import { ContainerAccess } from '../src/containers/ContainerAccess.js';
import { TermgateError } from '../common/errors.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { docker, shellsIn, startContainers } from './helpers/containers.js';
import { useStack } from './helpers/stack.js';
import { untilNoShells } from './helpers/progress.js';

const TOKEN = 'tok-Zq81-never-logged';
/** The probe's one non-loopback address, inside its private network namespace. */
const NON_LOOPBACK = '10.99.0.1';
const PROBE = fileURLToPath(new URL('./helpers/metrics-bind-probe.js', import.meta.url));
let outsiders: string[];
let inputsTried = 0;
let execs: ExecWatch;

/**
 * Docker's own record of every exec created in some containers, from its event stream, started before
 * the agent: what reached a container, whatever the agent says or logs.
 */
class ExecWatch {
  readonly #child: ChildProcess;
  #out = '';

  constructor(containers: string[]) {
    const filters = containers.flatMap((c) => ['--filter', `container=${c}`]);
    this.#child = spawn('docker', ['events', ...filters, '--format', '{{json .}}'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.#child.stdout!.on('data', (d: Buffer) => (this.#out += d.toString()));
  }

  /** Execs created so far, per container name. */
  created(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const line of this.#out.split('\n').filter((l) => l.startsWith('{'))) {
      const e = JSON.parse(line) as { Action?: string; Actor?: { Attributes?: { name?: string } } };
      const name = e.Actor?.Attributes?.name ?? '?';
      if (e.Action?.startsWith('exec_create')) counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    return counts;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill();
    await once(this.#child, 'exit');
  }
}

const stack = useStack({
  name: 'sec',
  containers: 2,
  agentArgs: ['--token', TOKEN, '--log-level', 'trace'],
  expectCleanDrain: true,
  beforeAgent: async (s) => {
    // Names close to the allowed ones that the selector must still refuse.
    outsiders = s.track([
      ...(await startContainers(`${s.prefix.replace('vplc-', 'xplc-')}`, 1)),
      ...(await startContainers(`${s.prefix}x`, 1)),
    ]);
    s.cloud.requiredToken = TOKEN;
    execs = new ExecWatch([...outsiders, s.containers[0]!]);
    // `docker events` streams from when it is connected: an exec made only for that, seen, says it is.
    // An exec made before it connected is never shown, so one is made each second until one is seen.
    const deadline = Date.now() + 60_000;
    while (!execs.created().has(s.containers[0]!)) {
      if (Date.now() > deadline) throw new Error('docker events showed no exec_create');
      await docker('exec', s.containers[0]!, 'true');
      for (let i = 0; i < 10 && !execs.created().has(s.containers[0]!); i++)
        await new Promise((r) => setTimeout(r, 100));
    }
  },
  beforeTeardown: () => execs?.stop(),
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

  it('reached no container outside the selector: Docker saw execs in the allowed one only', () => {
    const created = execs.created();
    for (const c of outsiders) assert.equal(created.get(c) ?? 0, 0, `execs in ${c}`);
    // The control: the sessions above did reach the allowed container, and the watch saw them.
    const allowed = created.get(stack.containers[0]!) ?? 0;
    assert.ok(
      allowed >= 2,
      `${allowed} execs seen in the allowed container (one at the start, one a session)`,
    );
    console.log(
      `# security: ${inputsTried} container names tried; Docker saw ${allowed} execs in the allowed ` +
        `container and none in the ${outsiders.length} outside the selector`,
    );
  });

  it('binds the metrics endpoint to 127.0.0.1 by default: reachable on loopback, not from another address', async () => {
    // In a private network namespace with `lo` and 10.99.0.1 on a veth pair with no route out: the default
    // port is the namespace's own, and nothing leaves it.
    const setup = [
      'ip link set lo up',
      'ip link add v0 type veth peer name v1',
      `ip addr add ${NON_LOOPBACK}/24 dev v0`,
      'ip link set v0 up',
      'ip link set v1 up',
      'exec "$0" "$1" "$2"',
    ].join(' && ');
    const child = spawn('unshare', ['-n', 'sh', '-c', setup, process.execPath, PROBE, NON_LOOPBACK], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, `the probe failed:\n${err}${out}`);
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as Record<
      'byDefault' | 'allAddresses',
      { loopback: number | string; nonLoopback: number | string }
    >;
    assert.equal(result.byDefault.loopback, 200, 'the default endpoint answers on 127.0.0.1');
    assert.equal(result.byDefault.nonLoopback, 'ECONNREFUSED', `from ${NON_LOOPBACK}`);
    // The control: an agent told to listen everywhere is reachable that way, so the refusal above is the
    // default address at work, not a path that never works.
    assert.equal(result.allAddresses.loopback, 200);
    assert.equal(result.allAddresses.nonLoopback, 200, `--metrics-listen 0.0.0.0 from ${NON_LOOPBACK}`);
  });

  it('leaves no shell behind', async () => {
    await untilNoShells([...stack.containers, ...outsiders]);
  });
});
