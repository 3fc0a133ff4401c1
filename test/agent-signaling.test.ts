/**
 * The Socket.IO contract of the design document, against the real agent: the answer's exact shape,
 * every refusal with a message a person can act on, trickle ICE both ways, and disconnects.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrowserPeer, realOfferSdp } from './helpers/browser-peer.js';
import { docker, startContainers } from './helpers/containers.js';
import { freePort, scrape, scrapeUntil } from './helpers/metrics.js';
import { useStack } from './helpers/stack.js';
import { untilNoShells } from './helpers/progress.js';

let stopped: string;
let outsider: string[];
let metricsBase = '';

const stack = useStack({
  name: 'sig',
  containers: 2,
  labels: ['termgate.role=vplc'],
  agentArgs: () => [
    '--container-label',
    'termgate.role=vplc',
    '--token',
    'sekret-token-123',
    '--max-sessions-per-container',
    '2',
    '--metrics-listen',
    metricsBase.replace('http://', ''),
  ],
  beforeAgent: async (s) => {
    metricsBase = `http://127.0.0.1:${await freePort()}`;
    stopped = s.track(await startContainers(`${s.prefix}-down`, 1, ['termgate.role=vplc']))[0]!;
    await docker('stop', '-t', '0', stopped);
    outsider = s.track(await startContainers(`${s.prefix}-lbl`, 1)); // matches the glob, lacks the label
    s.cloud.requiredToken = 'sekret-token-123';
  },
});

describe('signaling', () => {
  it('authenticates with the token in the handshake', () => {
    const auth = stack.cloud.handshakes.at(-1)!;
    assert.equal(auth.token, 'sekret-token-123');
    assert.equal(auth.role, 'agent');
  });

  it('answers an offer with exactly the fields of the design document', async () => {
    const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      const answer = browser.answer!;
      assert.deepEqual(Object.keys(answer).sort(), [
        'action',
        'correlation_id',
        'sdp',
        'sdp_type',
        'session_id',
        'status',
      ]);
      assert.equal(answer.action, 'webrtc:offer');
      assert.equal(answer.status, 'success');
      assert.equal(answer.session_id, browser.sessionId);
      assert.equal(typeof answer.correlation_id, 'number');
      assert.equal(answer.status === 'success' && answer.sdp_type, 'answer');
      assert.match(answer.status === 'success' ? answer.sdp : '', /^v=0\r\n/);
    } finally {
      browser.close();
    }
  });

  it('trickles ICE both ways, whether the browser sends candidates before or after the answer', async () => {
    for (const trickleBeforeAnswer of [true, false]) {
      const browser = await BrowserPeer.open(stack.cloud, {
        device: stack.containers[1]!,
        trickleBeforeAnswer,
      });
      try {
        assert.ok(browser.agentCandidates.length > 0, 'the agent sent its own candidates');
        for (const c of browser.agentCandidates) assert.match(c, /^candidate:/);
        browser.type('echo ice-$((40+2))\n');
        await browser.waitForScreen('ice-42');
      } finally {
        browser.close();
      }
    }
  });

  it('echoes the correlation_id it was given, string or number', async () => {
    const sdp = await realOfferSdp();
    const answer = await stack.cloud.offer({
      correlation_id: 'abc-7',
      session_id: 'corr-1',
      device_id: 'nope',
      sdp,
      sdp_type: 'offer',
    });
    assert.equal(answer.correlation_id, 'abc-7');
    assert.equal(answer.session_id, 'corr-1');
  });

  it('refuses offers with an error status, a code and a message a person can act on', async () => {
    const sdp = await realOfferSdp();
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [
        { session_id: 'e1', device_id: 'db-server', sdp, sdp_type: 'offer' },
        'TG_ERR_CONTAINER_NOT_ALLOWED',
        /not allowed/,
      ],
      [
        { session_id: 'e2', device_id: `${stack.prefix}-404`, sdp, sdp_type: 'offer' },
        'TG_ERR_CONTAINER_NOT_FOUND',
        /does not exist/,
      ],
      [
        { session_id: 'e3', device_id: stopped, sdp, sdp_type: 'offer' },
        'TG_ERR_CONTAINER_NOT_RUNNING',
        /not running/,
      ],
      [
        { session_id: 'e4', device_id: outsider[0], sdp, sdp_type: 'offer' },
        'TG_ERR_CONTAINER_NOT_ALLOWED',
        /not allowed/,
      ],
      [
        { session_id: 'e5', device_id: stack.containers[0], sdp: 'v=0\r\nbogus', sdp_type: 'offer' },
        'TG_ERR_BAD_SDP',
        /SDP/,
      ],
      [
        { session_id: 'e6', device_id: stack.containers[0], sdp, sdp_type: 'answer' },
        'TG_ERR_INVALID_PAYLOAD',
        /sdp_type/,
      ],
      [{ session_id: 'e7', sdp, sdp_type: 'offer' }, 'TG_ERR_INVALID_PAYLOAD', /device_id/],
      [
        { session_id: 42, device_id: stack.containers[0], sdp, sdp_type: 'offer' },
        'TG_ERR_INVALID_PAYLOAD',
        /session_id/,
      ],
      [
        { session_id: 'e9', device_id: stack.containers[0], sdp: 'x'.repeat(70_000), sdp_type: 'offer' },
        'TG_ERR_INVALID_PAYLOAD',
        /larger than/,
      ],
      [
        { session_id: 'e10', device_id: '../../containers/x', sdp, sdp_type: 'offer' },
        'TG_ERR_CONTAINER_NOT_ALLOWED',
        /not allowed/,
      ],
    ];
    for (const [payload, code, message] of cases) {
      const answer = await stack.cloud.offer(payload);
      assert.equal(answer.status, 'error', JSON.stringify(payload).slice(0, 80));
      assert.equal(answer.status === 'error' && answer.code, code, JSON.stringify(payload).slice(0, 80));
      assert.match(answer.status === 'error' ? answer.message : '', message);
      assert.equal(answer.action, 'webrtc:offer');
    }
  });

  it('refuses a duplicate session_id and keeps the first session working', async () => {
    const first = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      const answer = await stack.cloud.offer({
        session_id: first.sessionId,
        device_id: stack.containers[0],
        sdp: await realOfferSdp(),
        sdp_type: 'offer',
      });
      assert.equal(answer.status === 'error' && answer.code, 'TG_ERR_DUPLICATE_SESSION');
      first.type('echo dup-$((1+1))\n');
      await first.waitForScreen('dup-2');
    } finally {
      first.close();
    }
  });

  it('refuses a third session into a container limited to two', async () => {
    const open = [
      await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! }),
      await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! }),
    ];
    try {
      const answer = await stack.cloud.offer({
        session_id: 'third',
        device_id: stack.containers[1],
        sdp: await realOfferSdp(),
        sdp_type: 'offer',
      });
      assert.equal(answer.status === 'error' && answer.code, 'TG_ERR_CAPACITY_CONTAINER');
      assert.match(answer.status === 'error' ? answer.message : '', /limit/);
    } finally {
      for (const b of open) b.close();
      // Their slots are free again before the next test asks for one.
      await Promise.all(open.map((b) => stack.cloud.waitForDisconnectNotice(b.sessionId)));
    }
  });

  it('emits the answer as webrtc:answer when the cloud sends no ack', async () => {
    await stack.cloud.emitRaw('webrtc:offer', {
      correlation_id: 99,
      session_id: 'no-ack',
      device_id: 'nope',
      sdp: 'v=0',
      sdp_type: 'offer',
    });
    const deadline = Date.now() + 10_000;
    while (!stack.cloud.answersWithoutAck.some((a) => a.correlation_id === 99) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const answer = stack.cloud.answersWithoutAck.find((a) => a.correlation_id === 99);
    assert.equal(answer?.status, 'error');
  });

  it('answers disconnects for unknown sessions with an error, and refuses stray ICE with a counted code while sessions go on', async () => {
    const reply = (await stack.cloud.emitWithAck('webrtc:disconnect', { session_id: 'never-was' })) as {
      status: string;
      code: string;
    };
    assert.equal(reply.status, 'error');
    assert.equal(reply.code, 'TG_ERR_UNKNOWN_SESSION');
    const live = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]! });
    try {
      const refused = 'termgate_signaling_payloads_refused_total';
      const ice = (code: string) => ({ topic: 'webrtc:ice', code });
      const before = await scrape(metricsBase);
      await stack.cloud.emitRaw('webrtc:ice', {
        session_id: 'never-was',
        candidate: 'candidate:1 1 UDP 1 127.0.0.1 9 typ host',
        sdp_mid: '0',
      });
      await stack.cloud.emitRaw('webrtc:ice', 'not even an object');
      // Each stray message is refused with its own code and counted (ICE has no ack to answer on).
      await scrapeUntil(metricsBase, (m) => {
        for (const code of ['TG_ERR_UNKNOWN_SESSION', 'TG_ERR_INVALID_PAYLOAD']) {
          assert.equal(m.sum(refused, ice(code)) - before.sum(refused, ice(code)), 1, code);
        }
        assert.equal(
          m.sum(refused, { topic: 'webrtc:ice' }) - before.sum(refused, { topic: 'webrtc:ice' }),
          2,
        );
      });
      // The session that was open goes on, and a new one opens.
      live.type('echo live-$((8*8))\n');
      await live.waitForScreen('live-64');
      const fresh = await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! });
      try {
        fresh.type('echo fresh-$((9*9))\n');
        await fresh.waitForScreen('fresh-81');
      } finally {
        fresh.close();
      }
      assert.ok(!stack.agent.exited);
    } finally {
      live.close();
    }
  });

  it('lists the containers it serves on agent:devices', async () => {
    const reply = (await stack.cloud.emitWithAck('agent:devices', {})) as {
      devices: Array<{ name: string; state: string }>;
    };
    const names = reply.devices.map((d) => d.name);
    // Allowed containers only (the unlabelled one is missing), stopped ones with their state.
    assert.deepEqual(names, [...stack.containers, stopped].sort());
    for (const d of reply.devices) assert.equal(d.state, d.name === stopped ? 'exited' : 'running');
  });

  it('leaves no shells behind', async () => {
    await untilNoShells(stack.containers);
  });
});
