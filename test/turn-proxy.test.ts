/**
 * The TURN proxy of a worker, on its own: what it does to the checks Chromium sends over TURN/TCP (a
 * tie-breaker of 0, re-signed with the session's ICE password and given 1), what it leaves alone (every
 * other datagram, and a check it cannot prove the browser signed), and how it carries datagrams between
 * libjuice sockets and a TURN server: one socket towards the server per libjuice socket, nothing from
 * anyone but the server, a bound on sockets. Plain UDP sockets on loopback play libjuice and the server;
 * the whole path with coturn and Chromium is in test/turn-relay.test.ts.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import { after, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { TurnProxy } from '../workers/TurnProxy.js';
import { repairZeroTiebreaker } from '../workers/zero-tiebreaker.js';
import { closeUdpSockets, nextDatagram, udp } from './helpers/udp.js';

const AGENT_UFRAG = 'agnt';
const AGENT_PASSWORD = 'the-agents-ice-password-24';
const passwords = (ufrag: string) => (ufrag === AGENT_UFRAG ? AGENT_PASSWORD : undefined);

after(() => closeUdpSockets());

// An independent, small STUN writer, so that the test does not check the proxy with its own code.

function attribute(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(value.length, 2);
  return Buffer.concat([header, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

function header(type: number, bodyLength: number, transaction: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(bodyLength, 2);
  h.writeUInt32BE(0x2112a442, 4);
  transaction.copy(h, 8);
  return h;
}

function withFingerprint(message: Buffer): Buffer {
  const sized = Buffer.from(message);
  sized.writeUInt16BE(message.length - 20 + 8, 2);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((crc32(sized) ^ 0x5354554e) >>> 0);
  return Buffer.concat([sized, attribute(0x8028, crc)]);
}

function signed(message: Buffer, key: string): Buffer {
  const sized = Buffer.from(message);
  sized.writeUInt16BE(message.length - 20 + 24, 2);
  return Buffer.concat([sized, attribute(0x0008, createHmac('sha1', key).update(sized).digest())]);
}

/** A Binding request as Chromium sends it: USERNAME, ICE-CONTROLLING, USE-CANDIDATE, PRIORITY, signed. */
function check(tiebreaker: bigint, options: { key?: string; role?: number; ufrag?: string } = {}): Buffer {
  const tie = Buffer.alloc(8);
  tie.writeBigUInt64BE(tiebreaker);
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(0x0200ff);
  const body = Buffer.concat([
    attribute(0x0006, Buffer.from(`${options.ufrag ?? AGENT_UFRAG}:brws`)),
    attribute(0xc057, Buffer.from([0, 1, 0, 50])),
    attribute(options.role ?? 0x802a, tie),
    attribute(0x0025, Buffer.alloc(0)),
    attribute(0x0024, priority),
  ]);
  const message = Buffer.concat([header(0x0001, body.length, randomBytes(12)), body]);
  return withFingerprint(signed(message, options.key ?? AGENT_PASSWORD));
}

/** What coturn sends to the agent: a Data indication from the browser's relay address, fingerprinted. */
function dataIndication(payload: Buffer): Buffer {
  const peer = Buffer.from([0, 1, 0xc0, 0x01, 0x5e, 0x12, 0xa4, 0x43]);
  const body = Buffer.concat([attribute(0x0012, peer), attribute(0x0013, payload)]);
  return withFingerprint(Buffer.concat([header(0x0017, body.length, randomBytes(12)), body]));
}

function channelData(payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(0x4001, 0);
  h.writeUInt16BE(payload.length, 2);
  return Buffer.concat([h, payload]);
}

/** Where an attribute's value starts in a message; the attributes are walked as a reader would. */
function valueOf(message: Buffer, type: number): Buffer | undefined {
  for (let at = 20; at + 4 <= message.length;) {
    const length = message.readUInt16BE(at + 2);
    if (message.readUInt16BE(at) === type) return message.subarray(at + 4, at + 4 + length);
    at += 4 + Math.ceil(length / 4) * 4;
  }
  return undefined;
}

/** The check's signature and fingerprint both hold, recomputed from scratch. */
function assertValid(message: Buffer, key: string): void {
  const mi = valueOf(message, 0x0008)!;
  const miAt = message.indexOf(mi) - 4;
  assert.deepEqual(signed(message.subarray(0, miAt), key).subarray(miAt + 4), mi, 'MESSAGE-INTEGRITY');
  const fpAt = message.length - 8;
  assert.deepEqual(withFingerprint(message.subarray(0, fpAt)), message, 'FINGERPRINT');
}

describe("Chromium's TURN/TCP checks, repaired", () => {
  for (const [name, wrap, inner] of [
    ['in a Data indication', dataIndication, (p: Buffer) => valueOf(p, 0x0013)!],
    ['in ChannelData', channelData, (p: Buffer) => p.subarray(4)],
  ] as const) {
    it(`${name}: a tie-breaker of 0 becomes 1, signed again with the session's password`, () => {
      const packet = wrap(check(0n));
      const before = Buffer.from(packet);
      assert.equal(repairZeroTiebreaker(packet, passwords), true);
      const repaired = inner(packet);
      assert.equal(valueOf(repaired, 0x802a)!.readBigUInt64BE(), 1n);
      assertValid(repaired, AGENT_PASSWORD);
      const changed = [...packet.keys()].filter((i) => packet[i] !== before[i]).length;
      assert.ok(
        changed <= 1 + 20 + 4 + 4,
        `only the tie-breaker, the signature and fingerprints: ${changed}`,
      );
    });
  }

  it("the Data indication's own fingerprint still holds", () => {
    const packet = dataIndication(check(0n));
    repairZeroTiebreaker(packet, passwords);
    assert.deepEqual(withFingerprint(packet.subarray(0, packet.length - 8)), packet);
  });

  it('ICE-CONTROLLED 0 too (a controlled browser)', () => {
    const packet = dataIndication(check(0n, { role: 0x8029 }));
    assert.equal(repairZeroTiebreaker(packet, passwords), true);
    assert.equal(valueOf(valueOf(packet, 0x0013)!, 0x8029)!.readBigUInt64BE(), 1n);
  });

  const untouched: Array<[string, () => Buffer]> = [
    ['a check with a random tie-breaker (Chromium over UDP, Firefox)', () => dataIndication(check(0x1234n))],
    ['a check signed with another password', () => dataIndication(check(0n, { key: 'not-the-password' }))],
    [
      'a check for a username fragment no session here has',
      () => dataIndication(check(0n, { ufrag: 'othr' })),
    ],
    ['a check straight from the network, not relayed', () => check(0n)],
    ['a Binding response', () => dataIndication(Buffer.from(check(0n)).fill(0x01, 0, 1))],
    ['DTLS in ChannelData', () => channelData(Buffer.from([22, 254, 253, 0, 0, 0, 0]))],
  ];
  for (const [what, make] of untouched) {
    it(`leaves alone ${what}`, () => {
      const packet = make();
      const before = Buffer.from(packet);
      assert.equal(repairZeroTiebreaker(packet, passwords), false);
      assert.deepEqual(packet, before);
    });
  }

  it('never throws on what the network may send: every truncation, random bytes, flipped bytes', () => {
    const whole = dataIndication(check(0n));
    for (let n = 0; n <= whole.length; n++)
      repairZeroTiebreaker(Buffer.from(whole.subarray(0, n)), passwords);
    for (let i = 0; i < 20_000; i++) {
      repairZeroTiebreaker(randomBytes(1 + (i % 200)), passwords);
      const mutated = Buffer.from(whole);
      for (let k = 0; k < 3; k++) mutated[(i * 7 + k * 31) % mutated.length] = (i * 13 + k) & 0xff;
      repairZeroTiebreaker(mutated, passwords);
    }
  });
});

describe('the TURN proxy between libjuice sockets and a TURN server', () => {
  async function setUp(maxUpstreams = 16) {
    const server = await udp();
    const proxy = new TurnProxy({ bindAddress: undefined, idleMs: 60_000, maxUpstreams, maxServers: 4 });
    const endpoint = await proxy.endpointFor('127.0.0.1', server.address().port);
    const send = (from: Socket, packet: Buffer) => from.send(packet, endpoint.port, endpoint.host);
    return { server, proxy, endpoint, send };
  }

  it('gives TURN servers over UDP its own endpoints; leaves TCP, TLS and STUN servers alone', async () => {
    const proxy = new TurnProxy({ bindAddress: undefined, idleMs: 60_000, maxUpstreams: 4, maxServers: 4 });
    try {
      const tcp = { hostname: '127.0.0.1', port: 3478, relayType: 'TurnTcp' as const };
      const routed = await proxy.route([
        { hostname: '127.0.0.1', port: 3478, username: 'u', password: 'p', relayType: 'TurnUdp' },
        'turn:u:p@127.0.0.1:3478?transport=udp',
        tcp,
        'stun:127.0.0.1:3478',
      ]);
      const endpoint = await proxy.endpointFor('127.0.0.1', 3478);
      assert.deepEqual(routed, [
        { hostname: '127.0.0.1', port: endpoint.port, username: 'u', password: 'p', relayType: 'TurnUdp' },
        `turn:u:p@127.0.0.1:${endpoint.port}?transport=udp`,
        tcp,
        'stun:127.0.0.1:3478',
      ]);
      assert.notEqual(endpoint.port, 3478);
    } finally {
      proxy.close();
    }
  });

  it('one socket towards the server per libjuice socket, both ways, the repair on the way in', async () => {
    const { server, proxy, send } = await setUp();
    try {
      const [a, b] = [await udp(), await udp()];
      send(a, Buffer.from('allocate-a'));
      const atServerA = (await nextDatagram(server))!;
      send(b, Buffer.from('allocate-b'));
      const atServerB = (await nextDatagram(server))!;
      assert.equal(atServerA.packet.toString(), 'allocate-a');
      assert.equal(atServerB.packet.toString(), 'allocate-b');
      assert.notEqual(atServerA.from.port, atServerB.from.port, 'two 5-tuples, as without the proxy');
      send(a, Buffer.from('refresh-a'));
      assert.equal(
        (await nextDatagram(server))!.from.port,
        atServerA.from.port,
        'the same socket for a again',
      );

      const undo = proxy.admit(AGENT_UFRAG, AGENT_PASSWORD);
      server.send(dataIndication(check(0n)), atServerB.from.port, '127.0.0.1');
      const atB = (await nextDatagram(b))!;
      assert.equal(valueOf(valueOf(atB.packet, 0x0013)!, 0x802a)!.readBigUInt64BE(), 1n, 'repaired');
      assert.equal(proxy.repaired, 1);
      undo();
      const later = dataIndication(check(0n));
      server.send(later, atServerB.from.port, '127.0.0.1');
      assert.deepEqual((await nextDatagram(b))!.packet, later, 'once the session is gone, as it came');
      assert.equal(await nextDatagram(a, 200), undefined, 'nothing for a');
    } finally {
      proxy.close();
    }
  });

  it('drops what reaches a socket towards the server from anyone else', async () => {
    const { server, proxy, send } = await setUp();
    try {
      const libjuice = await udp();
      send(libjuice, Buffer.from('allocate'));
      const upstream = (await nextDatagram(server))!.from;
      const stranger = await udp();
      stranger.send(Buffer.from('spoofed'), upstream.port, '127.0.0.1');
      assert.equal(await nextDatagram(libjuice, 300), undefined);
    } finally {
      proxy.close();
    }
  });

  it('opens no more sockets towards servers than its bound', async () => {
    const { server, proxy, send } = await setUp(1);
    try {
      const [a, b] = [await udp(), await udp()];
      send(a, Buffer.from('a'));
      assert.ok(await nextDatagram(server));
      send(b, Buffer.from('b'));
      assert.equal(await nextDatagram(server, 300), undefined, "b's datagram is dropped");
    } finally {
      proxy.close();
    }
  });

  it('gives endpoints to at most maxServers servers; a session past it reaches its server directly', async () => {
    const proxy = new TurnProxy({ bindAddress: undefined, idleMs: 60_000, maxUpstreams: 4, maxServers: 2 });
    try {
      const servers = [3478, 3479, 3480].map((port) => `turn:u:p@127.0.0.1:${port}?transport=udp`);
      const routed = await proxy.route(servers);
      assert.notEqual(routed[0], servers[0]);
      assert.notEqual(routed[1], servers[1]);
      assert.equal(routed[2], servers[2], 'the third, as it came');
      assert.equal((await proxy.route([servers[0]!]))[0], routed[0], 'a known server keeps its endpoint');
    } finally {
      proxy.close();
    }
  });

  it('close() is idempotent and ends the endpoints', async () => {
    const { proxy, endpoint } = await setUp();
    proxy.close();
    proxy.close();
    await assert.rejects(proxy.endpointFor('127.0.0.1', 3478), /closed/);
    const libjuice = await udp();
    libjuice.send(Buffer.from('late'), endpoint.port, endpoint.host);
    assert.equal(proxy.repaired, 0);
  });
});
