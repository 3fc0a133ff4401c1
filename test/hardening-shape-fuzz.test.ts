/**
 * Nothing from outside ends the agent (issue 9, points 1 and 2). A real Socket.IO server sends every
 * topic with 0 to 4 arguments of any type (Buffers, deep nesting, huge strings, a function where an ack
 * would be or not), and a real peer sends raw data channel messages of every wrong shape, property-based
 * (fast-check, seeded, shrinking), while a witness session echoes random bytes through `cat`. At the end
 * the agent is alive, the witness got back every byte it sent, and no shell is left. The exact event that
 * used to abort the agent is a named regression test, and the signaling boundary's fault path is proven
 * with a handler that throws.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { pino } from 'pino';
import { Server } from 'socket.io';
import { ErrorCodes } from '../common/errors.js';
import { Topics } from '../common/protocol/signaling.js';
import { SignalingClient, type SignalingHandler } from '../src/signaling/SignalingClient.js';
import { BrowserPeer, realOfferSdp } from './helpers/browser-peer.js';
import { freePort, scrape, scrapeUntil } from './helpers/metrics.js';
import { useStack } from './helpers/stack.js';
import { Witness } from './helpers/witness.js';
import { untilNoShells } from './helpers/progress.js';

const SEED = Number(process.env.TERMGATE_FUZZ_SEED ?? Date.now() % 2 ** 31);
const SIGNALING_CASES = 4000;
const CHANNEL_CASES = 2000;
const CODES = new Set<string>(Object.values(ErrorCodes));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let metricsBase = '';
let witness: Witness;
let realSdp = '';
let casesTried = 0;

const stack = useStack({
  name: 'shape',
  containers: 2,
  agentArgs: () => [
    '--metrics-listen',
    metricsBase.replace('http://', ''),
    '--offers-per-second',
    '100000',
    '--max-messages-per-second',
    '100000',
    '--max-sessions-per-container',
    '200',
    '--setup-timeout',
    '3',
  ],
  beforeAgent: async () => {
    metricsBase = `http://127.0.0.1:${await freePort()}`;
  },
  afterAgent: async (s) => {
    realSdp = await realOfferSdp();
    witness = await Witness.open(s.cloud, s.containers[0]!);
    witness.start(50);
  },
  beforeTeardown: () => {
    if (process.env.SHAPE_LOG) writeFileSync(process.env.SHAPE_LOG, stack.agent.log);
    console.log(
      `# shape fuzz: seed ${SEED}, ${casesTried} cases tried, witness ${JSON.stringify(witness?.report)}`,
    );
    witness?.close();
  },
});

/** The agent's socket on the test cloud (the server side of the link). */
function agentSocket() {
  const socket = stack.cloud.agent;
  assert.ok(socket?.connected, 'the agent is connected to the cloud');
  return socket;
}

/** Proves the agent answers and is alive: an acked `agent:devices` round trip. */
async function alive(): Promise<void> {
  assert.ok(!stack.agent.exited, `the agent exited:\n${stack.agent.log.slice(-2000)}`);
  const reply = (await agentSocket().timeout(20_000).emitWithAck(Topics.devices, {})) as {
    devices?: unknown;
  };
  assert.ok(Array.isArray(reply.devices), 'agent:devices answered');
}

describe('the shape of a Socket.IO event never ends the agent', () => {
  it("webrtc:disconnect with a second argument that is not an ack (issue 9's crash)", async () => {
    const refused = 'termgate_signaling_payloads_refused_total';
    const before = await scrape(metricsBase);
    agentSocket().emit('webrtc:disconnect', { session_id: 'x' }, 'extra');
    await alive();
    // Refused for what it is, an unknown session, and counted so (there is no ack to answer on).
    await scrapeUntil(metricsBase, (m) => {
      const delta = (labels: Record<string, string>) => m.sum(refused, labels) - before.sum(refused, labels);
      assert.equal(delta({ topic: 'webrtc:disconnect', code: 'TG_ERR_UNKNOWN_SESSION' }), 1);
      assert.equal(delta({ topic: 'webrtc:disconnect' }), 1);
    });
  });

  it('webrtc:offer, agent:devices and webrtc:ice with the same extra argument', async () => {
    const before = stack.cloud.answersWithoutAck.length;
    agentSocket().emit(
      'webrtc:offer',
      { session_id: 'x-offer', device_id: 'nope', sdp: 'v=0', sdp_type: 'offer' },
      'extra',
    );
    agentSocket().emit('agent:devices', {}, 'extra');
    agentSocket().emit('webrtc:ice', { session_id: 'x', candidate: '' }, 'extra');
    await alive();
    // No ack: the answer comes as a webrtc:answer event, as the design document says.
    const answer = stack.cloud.answersWithoutAck.slice(before).find((a) => a.session_id === 'x-offer');
    assert.equal(answer?.status === 'error' && answer.code, 'TG_ERR_CONTAINER_NOT_ALLOWED');
  });

  it('answers through the ack wherever it is, with extra arguments before it', async () => {
    const reply = (await agentSocket()
      .timeout(10_000)
      .emitWithAck('webrtc:disconnect', { session_id: 'x' }, 'extra', 42, { deep: [1] })) as Record<
      string,
      unknown
    >;
    assert.equal(reply.status, 'error');
    assert.equal(reply.code, 'TG_ERR_UNKNOWN_SESSION');
    const offer = (await agentSocket().timeout(10_000).emitWithAck('webrtc:offer')) as Record<
      string,
      unknown
    >;
    assert.equal(offer.status, 'error');
    assert.equal(offer.code, 'TG_ERR_INVALID_PAYLOAD');
    assert.equal(offer.action, 'webrtc:offer');
  });

  it(`survives ${SIGNALING_CASES} events of every topic with 0-4 arguments of any type (fast-check)`, async () => {
    const topics = [Topics.offer, Topics.ice, Topics.disconnect, Topics.devices];
    const deep = fc
      .tuple(fc.integer({ min: 1, max: 2000 }), fc.oneof(fc.string(), fc.uint8Array({ maxLength: 16 })))
      .map(([depth, leaf]) => {
        let v: unknown = leaf instanceof Uint8Array ? Buffer.from(leaf) : leaf;
        for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { v };
        return v;
      });
    const value = fc.oneof(
      { weight: 6, arbitrary: fc.anything({ maxDepth: 3, withBigInt: false }) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)) },
      { weight: 1, arbitrary: deep },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 2_000_000 }).map((n) => 'h'.repeat(n)) },
      { weight: 1, arbitrary: fc.constant(() => 'not an ack') },
      {
        weight: 3,
        // Well-formed offers, some for real containers with a real SDP: sessions that never connect.
        arbitrary: fc.record(
          {
            correlation_id: fc.oneof(fc.integer(), fc.string()),
            session_id: fc.uuid().map((u) => `fz-${u}`),
            device_id: fc.oneof(fc.constantFrom(...stack.containers.slice(1)), fc.string()),
            sdp: fc.oneof(fc.constant(realSdp), fc.string()),
            sdp_type: fc.constant('offer'),
            devices: fc.anything({ maxDepth: 1 }),
          },
          { requiredKeys: ['session_id', 'device_id', 'sdp', 'sdp_type'] },
        ),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          session_id: fc.oneof(fc.uuid(), fc.string(), fc.constant('no-such-session')),
          candidate: fc.oneof(fc.string(), fc.constant('')),
          sdp_mid: fc.anything({ maxDepth: 0 }),
          sdp_mline_index: fc.anything({ maxDepth: 0 }),
        }),
      },
    );
    const event = fc.record({
      topic: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...topics) }, fc.string({ maxLength: 20 })),
      args: fc.array(value, { maxLength: 4 }),
      withAck: fc.boolean(),
    });
    const witnessId = witness.peer.sessionId;
    await fc.assert(
      fc.asyncProperty(event, async ({ topic, args, withAck }) => {
        // The witness must not be ended by a well-formed disconnect that happens to name it.
        fc.pre(
          !JSON.stringify(args, (_k, v: unknown) => (Buffer.isBuffer(v) ? null : v))?.includes(witnessId),
        );
        casesTried++;
        const socket = agentSocket();
        if (withAck && (topics as readonly string[]).includes(topic)) {
          const reply = (await socket.timeout(20_000).emitWithAck(topic, ...args)) as Record<string, unknown>;
          if (topic === Topics.devices) return Array.isArray(reply.devices);
          if (reply.status === 'success') return true;
          return (
            reply.status === 'error' && CODES.has(String(reply.code)) && typeof reply.message === 'string'
          );
        }
        socket.emit(topic, ...args);
        // Every 25 events, a round trip: the agent has handled what came before and is alive.
        if (casesTried % 25 === 0) await alive();
        return !stack.agent.exited;
      }),
      { numRuns: SIGNALING_CASES, seed: SEED, endOnFailure: false },
    );
    await alive();
    const metrics = await scrape(metricsBase);
    assert.equal(
      metrics.value('termgate_handler_faults_total', { boundary: 'signaling' }),
      0,
      'no handler threw',
    );
  });
});

describe('raw data channel messages never end the agent', () => {
  it(`survives ${CHANNEL_CASES} raw messages of every wrong shape, text and binary (fast-check)`, async () => {
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    const peer = await BrowserPeer.open(stack.cloud, { device: stack.containers[1]! });
    try {
      const field = fc.oneof(fc.anything({ maxDepth: 2 }), fc.integer({ min: -5, max: 2000 }), fc.string());
      const shaped = fc.record(
        {
          type: fc.oneof(
            fc.constantFrom('input', 'resize', 'ping', 'close', 'connect_pty', 'output', 'pong', 'ready'),
            fc.anything({ maxDepth: 1 }),
          ),
          data: field,
          cols: field,
          rows: field,
          container: field,
        },
        { requiredKeys: [] },
      );
      const message = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.json({ maxDepth: 4 }),
        shaped.map((m) => JSON.stringify(m)),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        shaped.map((m) => packr.pack(m)),
        fc.anything({ maxDepth: 3, withBigInt: false }).map((v) => packr.pack(v)),
        // Up to just under the 256 KiB the agent advertises (four times what it accepts).
        fc.integer({ min: 1, max: 250_000 }).map((n) => JSON.stringify({ type: 'ping', pad: 'p'.repeat(n) })),
        // msgpack arrays nested as deep as the size allows.
        fc.integer({ min: 1, max: 250_000 }).map((n) => Buffer.alloc(n, 0x91)),
      );
      let sent = 0;
      await fc.assert(
        fc.asyncProperty(message, async (raw) => {
          // Messages that would type into the shell, end the session or move it are not wrong-shaped.
          const probe = typeof raw === 'string' ? safeJson(raw) : safeUnpack(packr, raw);
          const type = (probe as { type?: unknown } | undefined)?.type;
          fc.pre(type !== 'input' && type !== 'close' && type !== 'connect_pty');
          casesTried++;
          peer.sendRaw(raw);
          if (++sent % 50 === 0) {
            // A round trip through the channel: the worker has handled everything before it.
            const barrier = `barrier-${sent}`;
            peer.sendRaw(JSON.stringify({ type: barrier }));
            await peer.waitFor((m) => m.type === 'error' && m.message.includes(barrier), 20_000);
            peer.messages.length = 0;
          }
          return !stack.agent.exited;
        }),
        { numRuns: CHANNEL_CASES, seed: SEED, endOnFailure: false },
      );
      peer.send({ type: 'input', data: 'echo after-fuzz-$((6*7))\n' }, 'json');
      await peer.waitForScreen('after-fuzz-42', 20_000);
      const metrics = await scrape(metricsBase);
      assert.equal(metrics.value('termgate_handler_faults_total', { boundary: 'datachannel' }), 0);
    } finally {
      peer.close();
    }
    await stack.cloud.waitForDisconnectNotice(peer.sessionId);
  });

  it('kept the witness echoing byte for byte, the agent alive, and left no shell', async () => {
    const report = await witness.stop();
    assert.ok(report.rounds >= 20, `the witness echoed ${report.rounds} rounds`);
    await alive();
    witness.close();
    await stack.cloud.waitForDisconnectNotice(witness.peer.sessionId);
    // Offers the fuzz got answered end at the 3 s setup timeout, their shells with them.
    await untilNoShells(stack.containers, 30_000);
  });
});

describe('the signaling boundary catches a handler that throws', () => {
  let server: ReturnType<typeof createServer>;
  let io: Server;
  let client: SignalingClient;
  /** Every fault the client reported, as `topic:code` (what feeds `termgate_handler_faults_total`). */
  const faults: string[] = [];

  before(async () => {
    server = createServer();
    io = new Server(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const logger = pino({ level: 'silent' });
    // A handler with a bug in every method: what the boundary must contain.
    const broken: SignalingHandler = {
      offer: () => Promise.reject(new TypeError('offer handler bug')),
      ice: () => {
        throw new TypeError('ice handler bug');
      },
      disconnect: () => {
        throw new RangeError('disconnect handler bug');
      },
      devices: () => {
        throw new TypeError('devices handler bug');
      },
    };
    client = new SignalingClient({
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      token: undefined,
      agentId: 'unit',
      maxSdpBytes: 65536,
      logger,
    });
    client.on('handler-fault', (topic, code) => faults.push(`${topic}:${code}`));
    const connected = once(io, 'connection');
    client.start(broken);
    await connected;
  });

  after(async () => {
    client.close();
    await io.close();
  });

  it('answers with status "error" and a code, and reports every fault with its topic and code', async () => {
    const [socket] = await io.fetchSockets();
    const offer = { session_id: 's1', device_id: 'd', sdp: 'v=0', sdp_type: 'offer', correlation_id: 7 };
    const answer = (await socket!.timeout(5000).emitWithAck(Topics.offer, offer)) as Record<string, unknown>;
    assert.deepEqual(
      { status: answer.status, code: answer.code, correlation_id: answer.correlation_id },
      { status: 'error', code: 'TG_ERR_INTERNAL', correlation_id: 7 },
    );
    const bye = (await socket!.timeout(5000).emitWithAck(Topics.disconnect, { session_id: 's1' })) as Record<
      string,
      unknown
    >;
    assert.equal(bye.status, 'error');
    assert.equal(bye.code, 'TG_ERR_INTERNAL');
    const devices = (await socket!.timeout(5000).emitWithAck(Topics.devices, {}, 'extra')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(devices.devices, []);
    assert.equal(devices.code, 'TG_ERR_INTERNAL');
    socket!.emit(Topics.ice, { session_id: 's1', candidate: '' });
    for (let i = 0; faults.length < 4 && i < 100; i++) await sleep(20);
    assert.deepEqual(faults.sort(), [
      'agent:devices:TG_ERR_INTERNAL',
      'webrtc:disconnect:TG_ERR_INTERNAL',
      'webrtc:ice:TG_ERR_INTERNAL',
      'webrtc:offer:TG_ERR_INTERNAL',
    ]);
  });
});

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function safeUnpack(packr: Packr, bytes: Buffer): unknown {
  try {
    return packr.unpack(bytes);
  } catch {
    return undefined;
  }
}
