/**
 * Limits (issue 6): each limit is configurable and each refusal is a clear error. Data channel message
 * size, SDP size, sessions per host and per container, offers per second, and messages per second on one
 * session (a ping flood is answered by one error, not by a flood of pongs).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrowserPeer, realOfferSdp } from './helpers/browser-peer.js';
import { waitForNoShells } from './helpers/containers.js';
import { useStack } from './helpers/stack.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const stack = useStack({
  name: 'limit',
  containers: 3,
  agentArgs: [
    '--max-message-bytes',
    '1024',
    '--max-sdp-bytes',
    '2048',
    '--max-sessions',
    '3',
    '--max-sessions-per-container',
    '2',
    '--offers-per-second',
    '5',
    '--max-messages-per-second',
    '50',
  ],
  expectCleanDrain: 'no-peers',
});

/** The offer token bucket refills in a second; each test starts with a full one. */
async function refill(): Promise<void> {
  await sleep(1_100);
}

describe('limits', () => {
  it('--max-message-bytes: a larger data channel message is refused, the session goes on', async () => {
    await refill();
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      browser.type('x'.repeat(1100));
      const error = await browser.waitFor((m) => m.type === 'error');
      assert.equal(error.type === 'error' && error.code, 'TG_ERR_MESSAGE_TOO_LARGE');
      assert.match(error.type === 'error' ? error.message : '', /exceeds the 1024-byte limit/);
      browser.type(`echo ${'y'.repeat(900)} | wc -c; echo fits-$((1+1))\n`);
      await browser.waitForScreen('fits-2');
    } finally {
      browser.close();
    }
  });

  it('--max-sdp-bytes: a larger offer is refused with the limit in the message', async () => {
    await refill();
    const sdp = await realOfferSdp();
    const big = sdp + `a=x-padding:${'p'.repeat(2100)}\r\n`;
    const answer = await stack.cloud.offer({
      session_id: 'big-sdp',
      device_id: stack.containers[0],
      sdp: big,
      sdp_type: 'offer',
    });
    assert.equal(answer.status === 'error' && answer.code, 'TG_ERR_INVALID_PAYLOAD');
    assert.match(answer.status === 'error' ? answer.message : '', /sdp: .*larger than 2048 bytes/);
  });

  it('--max-sessions-per-container and --max-sessions: refusals name the limit', async () => {
    await refill();
    const open = [
      await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! }),
      await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! }),
    ];
    try {
      const perContainer = await stack.cloud.offer({
        session_id: 'third-in-container',
        device_id: stack.containers[1],
        sdp: await realOfferSdp(),
        sdp_type: 'offer',
      });
      assert.equal(perContainer.status === 'error' && perContainer.code, 'TG_ERR_CAPACITY_CONTAINER');
      assert.match(
        perContainer.status === 'error' ? perContainer.message : '',
        /already has 2 sessions, its limit/,
      );
      open.push(await BrowserPeer.open(stack.cloud, { device: stack.containers[2]! }));
      const perHost = await stack.cloud.offer({
        session_id: 'fourth-on-host',
        device_id: stack.containers[0],
        sdp: await realOfferSdp(),
        sdp_type: 'offer',
      });
      assert.equal(perHost.status === 'error' && perHost.code, 'TG_ERR_CAPACITY_HOST');
      assert.match(perHost.status === 'error' ? perHost.message : '', /limit of 3 sessions/);
      // connect_pty into a full container is refused the same way, and the session stays where it was.
      open[2]!.send({ type: 'connect_pty', container: stack.containers[1]! });
      const denied = await open[2]!.waitFor((m) => m.type === 'error');
      assert.equal(denied.type === 'error' && denied.code, 'TG_ERR_CAPACITY_CONTAINER');
      open[2]!.type('echo stayed-$((2+2))\n');
      await open[2]!.waitForScreen('stayed-4');
    } finally {
      for (const b of open) b.close();
    }
    await Promise.all(open.map((b) => stack.cloud.waitForDisconnectNotice(b.sessionId)));
  });

  it('--offers-per-second: a burst past the rate is refused as rate limited', async () => {
    await refill();
    const answers = await Promise.all(
      Array.from({ length: 15 }, (_, i) =>
        stack.cloud.offer({
          session_id: `burst-${i}`,
          device_id: 'not-served',
          sdp: 'v=0',
          sdp_type: 'offer',
        }),
      ),
    );
    const codes = answers.map((a) => (a.status === 'error' ? a.code : 'success'));
    const limited = answers.filter((a) => a.status === 'error' && a.code === 'TG_ERR_RATE_LIMITED');
    assert.ok(limited.length >= 9 && limited.length <= 10, codes.join(' '));
    // The offers that got a token are refused for their own reasons (container not served, or the host's
    // limit of 3, since admission reserves a slot before asking Docker); none succeeds.
    assert.ok(!codes.includes('success'), codes.join(' '));
    assert.match(limited[0]!.status === 'error' ? limited[0]!.message : '', /too many offers per second/);
  });

  it('--max-messages-per-second: a ping flood gets one error, not a flood of pongs', async () => {
    await refill();
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      await sleep(1_100); // a full bucket of 50 messages
      for (let i = 0; i < 1000; i++) browser.send({ type: 'ping' });
      await sleep(1_100);
      browser.type('echo after-flood-$((3+3))\n');
      await browser.waitForScreen('after-flood-6');
      const pongs = browser.messages.filter((m) => m.type === 'pong').length;
      const errors = browser.messages.filter((m) => m.type === 'error');
      assert.ok(pongs >= 40 && pongs <= 100, `${pongs} pongs for 1000 pings`);
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.type === 'error' && errors[0]!.code, 'TG_ERR_RATE_LIMITED');
      assert.match(errors[0]!.type === 'error' ? errors[0]!.message : '', /more than 50 messages a second/);
    } finally {
      browser.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
  });

  it('leaves no shell behind', async () => {
    await waitForNoShells(stack.containers);
  });
});
