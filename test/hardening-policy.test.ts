/**
 * Sessions stay inside what the cloud authorized, and one browser cannot flood the Docker engine
 * (issue 9, points 3, 6 and 8). The agent talks to the real engine through a counting proxy
 * (helpers/docker-proxy.ts), so each test can say how many engine calls a browser caused, and hold a call
 * to open a race window on purpose.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SessionDeviceMessage } from '../common/protocol/signaling.js';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { docker, removeContainers, shellsIn, startContainer, startContainers } from './helpers/containers.js';
import { DockerProxy } from './helpers/docker-proxy.js';
import { freePort, scrape } from './helpers/metrics.js';
import { useStack, type Stack } from './helpers/stack.js';
import { TestCloud } from './helpers/test-cloud.js';
import { untilNoShells } from './helpers/progress.js';

let proxy: DockerProxy;
let metricsBase = '';
let outsider = '';
const switches: SessionDeviceMessage[] = [];

const stack = useStack({
  name: 'pol',
  containers: 4,
  agentArgs: () => ['--docker-socket', proxy.socket, '--metrics-listen', metricsBase.replace('http://', '')],
  beforeAgent: async (s) => {
    proxy = await DockerProxy.start();
    metricsBase = `http://127.0.0.1:${await freePort()}`;
    outsider = s.track(await startContainers(`${s.prefix.replace('vplc-', 'xplc-')}`, 1))[0]!;
  },
  afterAgent: (s) => {
    listenForSwitches(s);
    return Promise.resolve();
  },
  beforeTeardown: async () => {
    console.log(`# policy: ${proxy.requests.length} engine calls seen, ${switches.length} switches reported`);
    await proxy.close();
  },
});

function listenForSwitches(s: Stack): void {
  s.cloud.agent!.on('agent:session-device', (m: SessionDeviceMessage) => switches.push(m));
}

const container = (i: number) => () => stack.containers[i]!;
const [A, B, C, D] = [container(0), container(1), container(2), container(3)];

async function errorCode(browser: BrowserPeer): Promise<string | undefined> {
  const error = await browser.waitFor((m) => m.type === 'error');
  return error.type === 'error' ? error.code : undefined;
}

async function echo(browser: BrowserPeer, tag: string): Promise<void> {
  browser.type(`echo ${tag}-$((40+2))\n`);
  await browser.waitForScreen(`${tag}-42`);
}

describe("connect_pty stays inside the cloud's authorization", () => {
  it('refuses a switch to another container of the selector that the offer did not grant', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: A() });
    try {
      browser.send({ type: 'connect_pty', container: B() });
      assert.equal(await errorCode(browser), 'TG_ERR_CONTAINER_NOT_GRANTED');
      assert.ok(!browser.messages.some((m) => m.type === 'pty_disconnected'), 'the terminal stayed');
      assert.deepEqual(await shellsIn(B()), [], 'no shell was started in the other container');
      await echo(browser, 'stayed');
      // Reattaching to its own device_id is not a switch and stays allowed.
      browser.send({ type: 'connect_pty', container: A() });
      await browser.waitFor((m) => m.type === 'pty_connected');
      await echo(browser, 'again');
    } finally {
      browser.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
  });

  it('grants the containers of the offer\'s "devices", each still checked against the selector; reports and counts every switch', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: A(), devices: [B(), outsider] });
    try {
      browser.send({ type: 'connect_pty', container: outsider });
      assert.equal(
        await errorCode(browser),
        'TG_ERR_CONTAINER_NOT_ALLOWED',
        'granted, but outside the selector',
      );
      browser.send({ type: 'connect_pty', container: C() });
      assert.equal(await errorCode(browser), 'TG_ERR_CONTAINER_NOT_GRANTED');
      browser.send({ type: 'connect_pty', container: B() });
      assert.deepEqual(await browser.waitFor((m) => m.type === 'pty_connected'), {
        type: 'pty_connected',
        container: B(),
      });
      await echo(browser, 'moved');
      const reported = await waitForSwitch(browser.sessionId);
      assert.deepEqual(reported, { session_id: browser.sessionId, device_id: B(), previous_device_id: A() });
      const metrics = await scrape(metricsBase);
      assert.equal(metrics.value('termgate_container_switches_total', { result: 'switched' }), 1);
      // The refusals of this test and the one before: outsider, C, and B earlier.
      assert.equal(metrics.value('termgate_container_switches_total', { result: 'refused' }), 3);
      assert.deepEqual(await shellsIn(outsider), []);
    } finally {
      browser.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
  });

  it('--allow-container-switch lets a session switch within the selector, reported the same way', async () => {
    const cloud = await TestCloud.start();
    const agent = AgentProcess.start(cloud.url, [
      '--containers',
      `${stack.prefix}-*`,
      '--workers',
      '1',
      '--allow-container-switch',
    ]);
    const seen: SessionDeviceMessage[] = [];
    try {
      (await cloud.waitForAgent()).on('agent:session-device', (m: SessionDeviceMessage) => seen.push(m));
      const browser = await BrowserPeer.open(cloud, { device: A() });
      try {
        browser.send({ type: 'connect_pty', container: outsider });
        assert.equal(await errorCode(browser), 'TG_ERR_CONTAINER_NOT_ALLOWED', 'the selector still rules');
        browser.send({ type: 'connect_pty', container: C() });
        await browser.waitFor((m) => m.type === 'pty_connected');
        await echo(browser, 'switched');
        await until(() => seen.length > 0, 'the switch report');
        assert.deepEqual(seen, [{ session_id: browser.sessionId, device_id: C(), previous_device_id: A() }]);
      } finally {
        browser.close();
      }
      await cloud.waitForDisconnectNotice(browser.sessionId);
    } finally {
      assert.equal(await agent.stop(), 0);
      await cloud.close();
    }
  });
});

describe('one browser cannot flood the Docker engine', () => {
  it('keeps one connect_pty in flight per session; the others are refused with TG_ERR_PTY_BUSY', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: A(), devices: [B()] });
    const held = proxy.hold((r) => r.method === 'POST' && /^\/containers\/[^/]+\/exec$/.test(r.path));
    try {
      const execs = () => proxy.count(/^\/containers\/[^/]+\/exec$/, 'POST');
      const inspects = () => proxy.count(new RegExp(`^/containers/${B()}/json`));
      const [execsBefore, inspectsBefore] = [execs(), inspects()];
      browser.send({ type: 'connect_pty', container: B() });
      await until(() => held.held() === 1, 'the exec create to reach the engine');
      for (let i = 0; i < 20; i++) browser.send({ type: 'connect_pty', container: B() });
      const codes = [];
      for (let i = 0; i < 20; i++) codes.push(await errorCode(browser));
      assert.deepEqual(new Set(codes), new Set(['TG_ERR_PTY_BUSY']));
      held.release();
      await browser.waitFor((m) => m.type === 'pty_connected' && m.container === B());
      await echo(browser, 'one');
      assert.equal(execs() - execsBefore, 1, 'one exec created for 21 requests');
      assert.equal(inspects() - inspectsBefore, 1, 'one authorization asked of the engine');
      assert.equal((await shellsIn(B())).length, 1);
    } finally {
      held.release();
      browser.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
  });

  it('admits connect_pty that reach the engine at a slow rate: a quick run of them is refused as rate limited', async () => {
    const missing = `${stack.prefix}-999`; // granted and in the selector, but no such container
    const browser = await BrowserPeer.open(stack.cloud, { device: A(), devices: [missing] });
    try {
      const inspects = () => proxy.count(new RegExp(`^/containers/${missing}/json`));
      const started = performance.now();
      const codes: Array<string | undefined> = [];
      for (let i = 0; i < 12; i++) {
        browser.send({ type: 'connect_pty', container: missing });
        codes.push(await errorCode(browser));
      }
      const seconds = (performance.now() - started) / 1000;
      const asked = codes.filter((c) => c === 'TG_ERR_CONTAINER_NOT_FOUND').length;
      const limited = codes.filter((c) => c === 'TG_ERR_RATE_LIMITED').length;
      assert.equal(asked + limited, 12, codes.join(' '));
      // A burst of 3, then 1 a second; the engine was asked only for those admitted.
      assert.ok(asked <= 3 + Math.ceil(seconds), `${asked} admitted in ${seconds.toFixed(2)} s`);
      assert.ok(limited >= 1, codes.join(' '));
      assert.equal(inspects(), asked);
      console.log(`# connect_pty rate: ${asked} admitted, ${limited} limited in ${seconds.toFixed(2)} s`);
    } finally {
      browser.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
  });

  it('coalesces resizes: 300 in a burst make a few engine calls, and the last size wins', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: C() });
    try {
      const resizes = () => proxy.count(/^\/exec\/[^/]+\/resize/, 'POST');
      const before = resizes();
      for (let i = 0; i < 299; i++)
        browser.send({ type: 'resize', cols: 40 + (i % 150), rows: 10 + (i % 40) });
      browser.send({ type: 'resize', cols: 111, rows: 33 });
      browser.type('stty size\n'); // held behind the resizes in flight, so it sees the last one
      await browser.waitForScreen('33 111');
      const calls = resizes() - before;
      assert.ok(calls >= 1 && calls <= 30, `${calls} resize calls for 300 resizes`);
      console.log(`# resize: 300 resizes, ${calls} engine calls`);
    } finally {
      browser.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
  });
});

describe('the shell goes to the container that was authorized', () => {
  it('execs by full id: a container recreated under the name between the check and the exec gets no shell', async () => {
    const oldId = await docker('inspect', '--format', '{{.Id}}', D());
    const held = proxy.hold((r) => r.method === 'POST' && /^\/containers\/[^/]+\/exec$/.test(r.path));
    let browser: BrowserPeer | undefined;
    try {
      browser = await BrowserPeer.open(stack.cloud, { device: D(), noWait: true });
      await until(() => held.held() === 1, 'the exec create to reach the engine');
      // Between the authorization and the exec, the name goes to another container.
      await removeContainers([D()]);
      await startContainer(D());
      held.release();
      assert.equal(await errorCode(browser), 'TG_ERR_CONTAINER_NOT_FOUND');
      assert.ok(
        proxy.requests.some((r) => r.path === `/containers/${oldId}/exec`),
        'the exec named the id',
      );
      assert.deepEqual(await shellsIn(D()), [], 'the new container got no shell');
      // Every attach is authorized again: now the name resolves to the new container.
      browser.send({ type: 'connect_pty', container: D() });
      await browser.waitFor((m) => m.type === 'pty_connected');
      await echo(browser, 'new');
      assert.equal((await shellsIn(D())).length, 1);
    } finally {
      held.release();
      browser?.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
  });

  it('leaves no shell behind', async () => {
    await untilNoShells([...stack.containers, outsider]);
  });
});

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitForSwitch(sessionId: string): Promise<SessionDeviceMessage> {
  await until(() => switches.some((s) => s.session_id === sessionId), 'the switch report');
  return switches.find((s) => s.session_id === sessionId)!;
}
