/**
 * Limits (issue 6): each limit is configurable and each refusal is a clear error. Data channel message
 * size, SDP size, sessions per host and per container, offers per second, and messages per second on one
 * session (a ping flood is answered by one error per episode, not by a flood of pongs). The two rate
 * limits are token buckets: what is checked are counts that hold at any speed (at least the burst gets
 * through, at most burst + rate × the time measured, at least one refusal), not a band of results that
 * holds only on a machine of one speed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnswerMessage } from '../common/protocol/signaling.js';
import { BrowserPeer, realOfferSdp } from './helpers/browser-peer.js';

import { untilNoShells, untilProgress } from './helpers/progress.js';
import { useStack } from './helpers/stack.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const OFFER_RATE = 5;
const MESSAGE_RATE = 50;
const PINGS = 1000;
/** Output of the ack test: well past the agent's ack window (256 KiB), many times over. */
const STREAM_BYTES = 8_000_000;
const STALL_MS = 30_000;
const codeOf = (a: AnswerMessage) => (a.status === 'error' ? a.code : 'success');

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
    String(OFFER_RATE),
    '--max-messages-per-second',
    String(MESSAGE_RATE),
    // connect_pty into another container of the selector (the per-container limit test).
    '--allow-container-switch',
  ],
  expectCleanDrain: true,
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

  it('--offers-per-second: offers past the bucket are refused as rate limited, within burst + rate × time', async () => {
    await refill();
    // Bursts of concurrent offers until one is refused: on any machine that answers more than
    // OFFER_RATE offers a second, the first burst already is. The counts, not the timing, are checked.
    const answers: AnswerMessage[] = [];
    const started = performance.now();
    let n = 0;
    await untilProgress({
      what: 'an offer refused as rate limited',
      stallMs: STALL_MS,
      progress: () => answers.length,
      done: () => answers.some((a) => a.status === 'error' && a.code === 'TG_ERR_RATE_LIMITED'),
      detail: () => answers.map(codeOf).join(' '),
      poll: async () => {
        const burst = await Promise.all(
          Array.from({ length: 15 }, () =>
            stack.cloud.offer({
              session_id: `burst-${n++}`,
              device_id: 'not-served',
              sdp: 'v=0',
              sdp_type: 'offer',
            }),
          ),
        );
        answers.push(...burst);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    const limited = answers.filter((a) => a.status === 'error' && a.code === 'TG_ERR_RATE_LIMITED');
    const admitted = answers.length - limited.length;
    const codes = answers.map(codeOf).join(' ');
    // The bucket was full (one second of rate): that many get a token at once, then OFFER_RATE a second.
    assert.ok(admitted >= OFFER_RATE, `${admitted} admitted: ${codes}`);
    assert.ok(
      admitted <= OFFER_RATE + OFFER_RATE * seconds,
      `${admitted} admitted in ${seconds.toFixed(2)} s: ${codes}`,
    );
    // The offers that got a token are refused for their own reasons (container not served, or the host's
    // limit of 3, since admission reserves a slot before asking Docker); none succeeds.
    assert.ok(!codes.includes('success'), codes);
    assert.match(limited[0]!.status === 'error' ? limited[0]!.message : '', /too many offers per second/);
  });

  it('--max-messages-per-second: a ping flood is cut to the rate, with one error per episode, not a flood of pongs', async () => {
    await refill();
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      await sleep(1_100); // a full bucket: one second of the rate
      const started = performance.now();
      for (let i = 0; i < PINGS; i++) browser.send({ type: 'ping' });
      // The channel is ordered: once a line typed after the flood is echoed, every ping has been handled.
      // A line that lands while the bucket is still empty is dropped like the pings, so type until one
      // gets through.
      let typed = 0;
      await untilProgress({
        what: 'a line typed after the flood',
        stallMs: STALL_MS,
        pollMs: 250,
        progress: () => browser.messages.length,
        done: () => browser.screen().includes('after-flood-6'),
        poll: () => {
          typed++;
          browser.type('echo after-flood-$((3+3))\n');
        },
      });
      const seconds = (performance.now() - started) / 1000;
      const pongs = browser.messages.filter((m) => m.type === 'pong').length;
      const errors = browser.messages.filter((m) => m.type === 'error');
      const passed = pongs + typed; // at most: the typed lines that got through end an episode too
      const seen = `${pongs} pongs and ${errors.length} errors for ${PINGS} pings in ${seconds.toFixed(2)} s`;
      // The bucket was full: one second's worth passes at once; after it, no more than the rate refills.
      assert.ok(pongs >= MESSAGE_RATE, seen);
      assert.ok(pongs <= MESSAGE_RATE + MESSAGE_RATE * seconds, seen);
      assert.ok(pongs < PINGS, `the flood was not limited: ${seen}`);
      // One error per episode: a new episode starts only after a message passed again.
      assert.ok(errors.length >= 1, seen);
      assert.ok(errors.length <= 1 + (passed - MESSAGE_RATE), seen);
      for (const error of errors) {
        assert.equal(error.type === 'error' && error.code, 'TG_ERR_RATE_LIMITED');
        assert.match(error.type === 'error' ? error.message : '', /more than 50 messages a second/);
      }
      console.log(`# ping flood: ${seen}`);
    } finally {
      browser.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
  });

  it('--max-messages-per-second: acks never use up the rate, so a fast stream never stalls on a dropped one and a line typed during it is taken', async () => {
    await refill();
    // An ack every 1 KiB: far more acks a second than the rate, at any speed this stream can reach.
    const browser = await BrowserPeer.open(stack.cloud, {
      device: stack.containers[1]!,
      ack: true,
      ackEveryBytes: 1024,
    });
    const refused = () =>
      browser.messages.some((m) => m.type === 'error' && m.code === 'TG_ERR_RATE_LIMITED');
    try {
      const started = performance.now();
      browser.type(`sh -c 'yes 0123456789abcdef | head -c ${STREAM_BYTES}'; echo streamed-$((3+4))\n`);
      // Typed mid-stream, while the acks come far faster than the rate: the shell runs it after the
      // stream, and its output is the proof it was taken.
      await untilProgress({
        what: 'the first MB of output',
        stallMs: STALL_MS,
        pollMs: 10,
        progress: () => browser.outputBytes,
        done: () => browser.outputBytes >= 1_000_000,
      });
      browser.type('echo typed-$((5+6))\n');
      await untilProgress({
        what: `${STREAM_BYTES} bytes of output, the marker after them and the typed line's output`,
        stallMs: STALL_MS,
        pollMs: 250,
        progress: () => browser.outputBytes,
        done: () => browser.tail().includes('typed-11') || refused(),
      });
      assert.equal(refused(), false, 'a message was refused for the rate: the typed line or an ack');
      assert.ok(browser.screen().includes('streamed-7'), 'the stream ended with its marker');
      const seconds = (performance.now() - started) / 1000;
      const acks = Math.floor(browser.outputBytes / 1024);
      // The TTY turns each line's \n into \r\n: more bytes arrive than were printed.
      assert.ok(browser.outputBytes > STREAM_BYTES, `${browser.outputBytes} bytes`);
      assert.ok(
        acks > MESSAGE_RATE + MESSAGE_RATE * seconds,
        `the acks (about ${acks} in ${seconds.toFixed(1)} s) were over the rate`,
      );
      console.log(`# acks over the rate: about ${acks} acks in ${seconds.toFixed(1)} s, the stream complete`);
    } finally {
      browser.close();
    }
    await stack.cloud.waitForDisconnectNotice(browser.sessionId);
  });

  it('leaves no shell behind', async () => {
    await untilNoShells(stack.containers);
  });
});
