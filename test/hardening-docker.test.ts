/**
 * Every Docker call has a deadline (issue 9, point 9). The agent runs against a private engine that the
 * test freezes with SIGSTOP (by the PID it recorded): new sessions, connect_pty and device lists fail
 * with TG_ERR_DOCKER_TIMEOUT within the timeout, and SIGTERM still ends the agent, its open session's
 * shell ended from the host, within a stated bound.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer, realOfferSdp } from './helpers/browser-peer.js';
import { uniquePrefix } from './helpers/containers.js';
import { PrivateEngine } from './helpers/private-engine.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

const TIMEOUT_S = 3;
/** What SIGTERM may take with the engine frozen: the agent's own close deadline (15 s). */
const SHUTDOWN_BOUND_MS = 15_000;
const prefix = uniquePrefix('hung');
const names = [`${prefix}-001`, `${prefix}-002`];
let engine: PrivateEngine;
let cloud: TestCloud;
let agent: AgentProcess;

before(
  async () => {
    engine = await PrivateEngine.start();
    for (const name of names) await engine.runContainer(name);
    cloud = await TestCloud.start();
    agent = AgentProcess.start(cloud.url, [
      '--containers',
      `${prefix}-*`,
      '--workers',
      '2',
      '--docker-socket',
      engine.socket,
      '--docker-timeout',
      String(TIMEOUT_S),
    ]);
    await cloud.waitForAgent();
  },
  { timeout: 120_000 },
);

onTeardown(async () => {
  await agent?.stop('SIGKILL');
});
onTeardown(() => cloud?.close());
onTeardown(() => engine?.destroy());

/** Runs `call`, returning its result and how long it took. */
async function timed<T>(call: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await call();
  return [result, performance.now() - started];
}

function withinTimeout(ms: number, what: string): void {
  assert.ok(ms >= TIMEOUT_S * 1000 - 100, `${what} waited for the engine (${ms.toFixed(0)} ms)`);
  assert.ok(ms <= TIMEOUT_S * 1000 + 3000, `${what} failed within the timeout (${ms.toFixed(0)} ms)`);
  console.log(`# hung engine: ${what} failed in ${(ms / 1000).toFixed(2)} s`);
}

describe('a frozen Docker engine', () => {
  it(`fails new sessions, connect_pty and device lists with TG_ERR_DOCKER_TIMEOUT within ${TIMEOUT_S} s`, async () => {
    const browser = await BrowserPeer.open(cloud, { device: names[0]! });
    const sdp = await realOfferSdp();
    try {
      browser.type('echo before-$((1+1))\n');
      await browser.waitForScreen('before-2');
      await engine.freeze();
      const [answer, offerMs] = await timed(() =>
        cloud.offer({ session_id: 'while-frozen', device_id: names[1], sdp, sdp_type: 'offer' }, 30_000),
      );
      assert.equal(answer.status === 'error' && answer.code, 'TG_ERR_DOCKER_TIMEOUT');
      assert.match(answer.status === 'error' ? answer.message : '', /did not answer .* within 3 s/);
      withinTimeout(offerMs, 'offer');
      const [code, ptyMs] = await timed(async () => {
        browser.send({ type: 'connect_pty', container: names[0]! });
        const error = await browser.waitFor((m) => m.type === 'error', 30_000);
        return error.type === 'error' ? error.code : undefined;
      });
      assert.equal(code, 'TG_ERR_DOCKER_TIMEOUT');
      withinTimeout(ptyMs, 'connect_pty');
      const [devices, devicesMs] = await timed(
        () => cloud.emitWithAck('agent:devices', {}, 30_000) as Promise<Record<string, unknown>>,
      );
      assert.equal(devices.code, 'TG_ERR_DOCKER_TIMEOUT');
      withinTimeout(devicesMs, 'agent:devices');
      assert.ok(!agent.exited);
    } finally {
      browser.close();
    }
  });

  it(`lets SIGTERM end the agent within ${SHUTDOWN_BOUND_MS / 1000} s, shells ended from the host`, async () => {
    engine.thaw();
    const browser = await BrowserPeer.open(cloud, { device: names[1]! });
    try {
      browser.type('sleep 1000 & echo open-$((2+2))\n');
      await browser.waitForScreen('open-4');
      await engine.freeze();
      const [code, ms] = await timed(() => agent.stop('SIGTERM', 60_000));
      assert.equal(code, 0);
      assert.ok(ms <= SHUTDOWN_BOUND_MS, `the agent took ${ms.toFixed(0)} ms to stop`);
      console.log(`# hung engine: SIGTERM to exit ${(ms / 1000).toFixed(2)} s`);
      assert.ok(
        browser.messages.some((m) => m.type === 'pty_disconnected' && m.reason === 'shutdown'),
        'the browser was told',
      );
    } finally {
      browser.close();
      engine.thaw();
    }
    // The engine answers again: nothing of either session is left in its containers.
    for (const name of names) assert.deepEqual(await engine.shellsIn(name), [], name);
  });
});
