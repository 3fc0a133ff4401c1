/**
 * One agent, real containers, real peers: every data channel message type, resize, bad input,
 * connect_pty, close, disconnect, idle timeout, a container stopped mid-session, and no shell left behind.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import { docker, removeContainers, shellsIn, startContainers } from './helpers/containers.js';
import { useStack } from './helpers/stack.js';
import { untilNoShells } from './helpers/progress.js';

let refused: string[];

const stack = useStack({
  name: 'term',
  containers: 3,
  // connect_pty moves between containers of the selector.
  agentArgs: ['--idle-timeout', '600', '--allow-container-switch'],
  beforeAgent: async (s) => {
    refused = s.track(await startContainers(`${s.prefix}x`.replace('vplc-', 'plc-'), 1));
  },
});

describe('terminal over the data channel', () => {
  it('sends ready then pty_connected, and echoes what is typed', async () => {
    // The order is read after the open, which (unlike a `noWait` open) may try a setup again after the
    // test peer's rare ICE failure (the README's known issues).
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      assert.deepEqual(browser.messages[0], { type: 'ready' }, 'ready is the first message');
      assert.deepEqual(browser.ptyConnected, { type: 'pty_connected', container: stack.containers[0] });
      const token = `tok-${Math.random().toString(36).slice(2)}`;
      browser.type(`echo ${token}-$((6*7))\n`);
      await browser.waitForScreen(`${token}-42`);
    } finally {
      browser.close();
    }
  });

  it('answers ping with pong', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      browser.send({ type: 'ping' });
      assert.deepEqual(await browser.waitFor((m) => m.type === 'pong'), { type: 'pong' });
    } finally {
      browser.close();
    }
  });

  it('resizes the PTY: stty size reflects it', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! });
    try {
      browser.send({ type: 'resize', cols: 123, rows: 45 });
      browser.type('stty size\n');
      await browser.waitForScreen('45 123');
    } finally {
      browser.close();
    }
  });

  it('answers bad input with error and stays usable', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      const cases: Array<[string | Buffer, string]> = [
        ['{not json', 'TG_ERR_INVALID_MESSAGE'],
        ['[1,2,3]', 'TG_ERR_INVALID_MESSAGE'],
        ['{"type":"teleport"}', 'TG_ERR_UNKNOWN_MESSAGE_TYPE'],
        ['{"data":"x"}', 'TG_ERR_UNKNOWN_MESSAGE_TYPE'],
        ['{"type":"input","data":42}', 'TG_ERR_INVALID_MESSAGE'],
        ['{"type":"resize","cols":"wide","rows":10}', 'TG_ERR_INVALID_MESSAGE'],
        ['{"type":"resize","cols":0,"rows":10}', 'TG_ERR_INVALID_MESSAGE'],
        ['{"type":"resize","cols":100000,"rows":10}', 'TG_ERR_INVALID_MESSAGE'],
        ['{"type":"connect_pty","container":7}', 'TG_ERR_INVALID_MESSAGE'],
        [JSON.stringify({ type: 'input', data: 'x'.repeat(70_000) }), 'TG_ERR_MESSAGE_TOO_LARGE'],
        [Buffer.from([0xc1, 0xff, 0x00]), 'TG_ERR_INVALID_MESSAGE'],
      ];
      for (const [raw, code] of cases) {
        browser.sendRaw(raw);
        const error = await browser.waitFor((m) => m.type === 'error');
        assert.equal(error.type === 'error' && error.code, code, `for ${String(raw).slice(0, 40)}`);
        assert.ok(error.type === 'error' && error.message.length > 10);
      }
      // The session still works, back in JSON mode after one JSON message.
      browser.send({ type: 'ping' }, 'json');
      await browser.waitFor((m) => m.type === 'pong');
      browser.type('echo still-$((1+1))-alive\n');
      await browser.waitForScreen('still-2-alive');
    } finally {
      browser.close();
    }
  });

  it('speaks msgpack to a browser that sends binary, with output as raw bytes', async () => {
    const browser = await BrowserPeer.open(stack.cloud, {
      device: stack.containers[1]!,
      encoding: 'msgpack',
    });
    try {
      browser.send({ type: 'ping' });
      assert.deepEqual(await browser.waitFor((m) => m.type === 'pong'), { type: 'pong' });
      browser.type('printf "\\303\\251t\\303\\251 %s\\n" $((20+3))\n');
      await browser.waitForScreen('été 23');
      const lastOutput = browser.messages.filter((m) => m.type === 'output').at(-1);
      assert.ok(
        lastOutput && lastOutput.type === 'output' && lastOutput.data instanceof Uint8Array,
        'data is bytes',
      );
    } finally {
      browser.close();
    }
  });

  it('connect_pty moves to an allowed container and refuses one outside the selector', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      browser.send({ type: 'connect_pty', container: refused[0]!, cols: 90, rows: 30 });
      const denied = await browser.waitFor((m) => m.type === 'error');
      assert.equal(denied.type === 'error' && denied.code, 'TG_ERR_CONTAINER_NOT_ALLOWED');
      browser.send({ type: 'connect_pty', container: `${stack.prefix}-999` });
      const missing = await browser.waitFor((m) => m.type === 'error');
      assert.equal(missing.type === 'error' && missing.code, 'TG_ERR_CONTAINER_NOT_FOUND');

      browser.send({ type: 'connect_pty', container: stack.containers[2]!, cols: 91, rows: 31 });
      assert.deepEqual(await browser.waitFor((m) => m.type === 'pty_disconnected'), {
        type: 'pty_disconnected',
        reason: 'replaced',
      });
      assert.deepEqual(await browser.waitFor((m) => m.type === 'pty_connected'), {
        type: 'pty_connected',
        container: stack.containers[2],
      });
      browser.type('stty size; cat /etc/hostname 2>/dev/null; echo moved-$((3*3))\n');
      await browser.waitForScreen('31 91');
      await browser.waitForScreen('moved-9');
      await untilNoShells([stack.containers[0]!]);
      assert.equal((await shellsIn(stack.containers[2]!)).length, 1, 'one shell in the new container');
    } finally {
      browser.close();
    }
    await untilNoShells(stack.containers);
  });

  it('ends the session on a close message, tells the cloud, and leaves no shell', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! });
    browser.type('sleep 1000 & yes > /dev/null & echo bg-$((2+2))\n');
    await browser.waitForScreen('bg-4');
    assert.ok((await shellsIn(stack.containers[1]!)).length >= 3, 'shell, sleep and yes are running');
    browser.send({ type: 'close' });
    const notice = await stack.cloud.waitForDisconnectNotice(browser.sessionId);
    assert.equal(notice.reason, 'browser-closed');
    await browser.until(() => browser.channelClosed, 'the channel to close');
    browser.close();
    await untilNoShells([stack.containers[1]!]);
  });

  it('ends the session on webrtc:disconnect from the cloud', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[2]! });
    try {
      stack.cloud.disconnect(browser.sessionId);
      assert.deepEqual(await browser.waitFor((m) => m.type === 'pty_disconnected'), {
        type: 'pty_disconnected',
        reason: 'cloud-disconnect',
      });
      await browser.until(() => browser.channelClosed, 'the channel to close');
      await untilNoShells([stack.containers[2]!]);
    } finally {
      browser.close();
    }
  });

  it('reports pty_disconnected when the container stops mid-session', async () => {
    const [victim] = await startContainers(`${stack.prefix}-stop`, 1);
    try {
      const browser = await BrowserPeer.open(stack.cloud, { device: victim! });
      try {
        browser.type('echo before-$((5+5))\n');
        await browser.waitForScreen('before-10');
        await docker('stop', '-t', '1', victim!);
        const gone = await browser.waitFor((m) => m.type === 'pty_disconnected', 20_000);
        assert.equal(gone.type === 'pty_disconnected' && gone.reason, 'container-stopped');
        browser.type('echo nobody-home\n');
        const error = await browser.waitFor((m) => m.type === 'error');
        assert.equal(error.type === 'error' && error.code, 'TG_ERR_PTY_NOT_CONNECTED');
      } finally {
        browser.close();
      }
    } finally {
      await removeContainers([victim!]);
    }
  });

  it('leaves no shell in any container once every session has ended', async () => {
    await untilNoShells(stack.containers);
  });
});
