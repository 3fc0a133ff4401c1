/**
 * Bad input (issue 6), with a property-based fuzzer: thousands of malformed signaling payloads and data
 * channel messages. Every offer and disconnect gets an error answer, every refused ICE message is dropped
 * and counted by code (`termgate_signaling_payloads_refused_total`), every bad data channel message gets
 * an error reply, the agent stays up, and a session opened beside the fuzzing keeps echoing throughout.
 * The codes are checked twice: against hand-labelled tables of inputs (what a person reading the protocol
 * expects), and, for the generated inputs, against the protocol module's own decoder (that the agent
 * replies as its decoder decides, for each of them).
 * Waits on thousands of replies are bounded by progress, not by a total deadline.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { ErrorCodes } from '../common/errors.js';
import { iceSchema } from '../common/protocol/signaling.js';
import { decodeInbound } from '../common/protocol/terminal-messages.js';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer, realOfferSdp } from './helpers/browser-peer.js';
import { removeContainers, startContainers, uniquePrefix } from './helpers/containers.js';
import { freePort, scrape } from './helpers/metrics.js';
import { untilNoShells, untilProgress } from './helpers/progress.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

const MAX_MESSAGE_BYTES = 4096;
const MAX_SDP_BYTES = 8192;
const OFFERS = 1500;
const ICE = 1500;
const DISCONNECTS = 500;
const CHANNEL_MESSAGES = 3000;
const CODES = new Set<string>(Object.values(ErrorCodes));
/** Replies and refusals counted for thousands of inputs: fail when none arrives for this long. */
const STALL_MS = 30_000;

const prefix = uniquePrefix('fuzz');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let cloud: TestCloud;
let agent: AgentProcess;
let containers: string[];
let side: BrowserPeer;
let sideEchoes = 0;
let sideLoop: Promise<void> | undefined;
let sideRunning = true;
let sideError: unknown;
let inputsTried = 0;
let realSdp = '';
let metricsBase = '';

before(async () => {
  containers = await startContainers(prefix, 2);
  cloud = await TestCloud.start();
  metricsBase = `http://127.0.0.1:${await freePort()}`;
  agent = AgentProcess.start(cloud.url, [
    '--metrics-listen',
    metricsBase.replace('http://', ''),
    '--containers',
    `${prefix}-*`,
    '--workers',
    '2',
    '--offers-per-second',
    '100000',
    '--max-messages-per-second',
    '100000',
    '--max-message-bytes',
    String(MAX_MESSAGE_BYTES),
    '--max-sdp-bytes',
    String(MAX_SDP_BYTES),
  ]);
  await cloud.waitForAgent();
  realSdp = await realOfferSdp();
  // The bystander: echoes a fresh computation every 100 ms for as long as the fuzzing runs.
  side = await BrowserPeer.open(cloud, { device: containers[0]! });
  sideLoop = (async () => {
    while (sideRunning) {
      const n = sideEchoes + 1000;
      side.type(`echo side-$((${n}*3))\n`);
      await side.waitForScreen(`side-${n * 3}`, 15_000);
      sideEchoes++;
      await sleep(100);
    }
  })().catch((err: unknown) => {
    sideError = err;
  });
});

onTeardown(async () => {
  sideRunning = false;
  await sideLoop;
  side?.close();
  try {
    assert.equal(await agent?.stop(), 0, 'the agent drains and exits 0');
  } finally {
    await cloud?.close();
    await removeContainers(containers ?? []);
  }
});

/** Waits until the bystander has echoed once more than now: it kept working through what came before. */
async function bystanderEchoes(): Promise<void> {
  const from = sideEchoes;
  await untilProgress({
    what: 'the bystander echoing',
    stallMs: STALL_MS,
    progress: () => sideEchoes,
    done: () => sideEchoes > from || sideError !== undefined,
  });
  assert.equal(sideError, undefined, `the bystander failed: ${String(sideError)}`);
}

/** ICE payloads the agent has refused so far, by code (ICE has no ack: the counter is where they show). */
async function iceRefusals(): Promise<Map<string, number>> {
  const m = await scrape(metricsBase);
  const ice = m.series('termgate_signaling_payloads_refused_total', { topic: 'webrtc:ice' });
  return new Map(ice.map((s) => [s.labels.code!, s.value]));
}

/** Waits until `count` ICE refusals have been counted since `from`; returns them by code. */
async function iceRefusedSince(from: Map<string, number>, count: number): Promise<Map<string, number>> {
  let since = new Map<string, number>();
  const total = () => [...since.values()].reduce((a, n) => a + n, 0);
  await untilProgress({
    what: `${count} ICE refusals counted`,
    stallMs: STALL_MS,
    progress: async () => {
      const now = await iceRefusals();
      since = new Map();
      for (const [code, n] of now) if (n > (from.get(code) ?? 0)) since.set(code, n - (from.get(code) ?? 0));
      return total();
    },
    done: () => total() >= count,
  });
  return since;
}

/** How many times each value occurs in `list`. */
function tally(list: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of list) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }));
const junk = fc.oneof(fc.anything({ maxDepth: 2 }), text, fc.integer(), fc.constant(null));

describe('fuzzing', () => {
  it(`answers ${OFFERS} malformed offers with errors (or a real answer) and stays up`, async () => {
    const live = [side.sessionId];
    const sdp = fc.oneof(
      text,
      fc.constant(''),
      fc.nat(MAX_SDP_BYTES * 2).map((n) => 'v=0\r\n' + 'a'.repeat(n)),
      fc.constant('x'.repeat(MAX_SDP_BYTES + 1)),
      // A real offer with lines dropped or corrupted: may still be valid, then it is answered.
      fc.array(fc.nat(40), { maxLength: 6 }).map((drop) =>
        realSdp
          .split('\r\n')
          .filter((_, i) => !drop.includes(i))
          .join('\r\n'),
      ),
      fc.tuple(fc.nat(realSdp.length), text).map(([at, s]) => realSdp.slice(0, at) + s + realSdp.slice(at)),
      junk,
    );
    const sessionId = fc.oneof(
      text,
      fc.constantFrom(...live), // duplicate session_id
      fc.uuid().map((u) => `fz-${u}`),
      fc.constant('x'.repeat(200)),
      junk,
    );
    const device = fc.oneof(fc.constantFrom(...containers), text, fc.constant('y'.repeat(300)), junk);
    const offer = fc.oneof(
      fc.record(
        {
          correlation_id: fc.oneof(fc.integer(), text),
          session_id: sessionId,
          device_id: device,
          sdp,
          sdp_type: fc.oneof(fc.constant('offer'), junk),
        },
        { requiredKeys: [] },
      ),
      junk,
    );
    const answered: string[] = [];
    await fc.assert(
      fc.asyncProperty(offer, async (payload) => {
        inputsTried++;
        const answer = (await cloud.emitWithAck('webrtc:offer', payload, 20_000)) as Record<string, unknown>;
        if (answer.status === 'success') {
          answered.push(String(answer.session_id));
          return typeof answer.sdp === 'string' && answer.sdp.startsWith('v=0');
        }
        return (
          answer.status === 'error' && CODES.has(String(answer.code)) && typeof answer.message === 'string'
        );
      }),
      { numRuns: OFFERS },
    );
    // Sessions a mutated offer opened are ended again by the cloud.
    for (const id of answered) await cloud.emitWithAck('webrtc:disconnect', { session_id: id });
    assert.ok(!agent.exited);
    await bystanderEchoes();
  });

  it(`drops ${ICE} malformed or unknown ICE messages, each counted with its code, and ${DISCONNECTS} bad disconnects with an error`, async () => {
    const fuzzPeer = await BrowserPeer.open(cloud, { device: containers[1]! });
    try {
      const ice = fc.oneof(
        fc.record(
          {
            // Never the bystander's id: a valid candidate for it is not malformed input.
            session_id: fc.oneof(text, fc.constant(fuzzPeer.sessionId), fc.constant('no-such-session'), junk),
            candidate: fc.oneof(
              text,
              fc.constant(''),
              fc.constant('x'.repeat(3000)),
              fc
                .tuple(fc.nat(65535), fc.ipV4())
                .map(([port, ip]) => `candidate:1 1 UDP 1 ${ip} ${port} typ host`),
              junk,
            ),
            sdp_mid: fc.oneof(text, fc.constant(null), junk),
            sdp_mline_index: fc.oneof(fc.integer(), fc.constant(null), junk),
          },
          { requiredKeys: [] },
        ),
        junk,
      );
      // First a hand-labelled table: the code the agent must refuse each with, read off the protocol.
      const candidate = 'candidate:1 1 UDP 2122252543 127.0.0.1 9 typ host';
      const table: Array<[unknown, string]> = [
        [{ session_id: 'no-such-session', candidate, sdp_mid: '0' }, ErrorCodes.UNKNOWN_SESSION],
        ['a string, not an object', ErrorCodes.INVALID_PAYLOAD],
        [null, ErrorCodes.INVALID_PAYLOAD],
        [{ session_id: fuzzPeer.sessionId }, ErrorCodes.INVALID_PAYLOAD], // no candidate
        [{ session_id: fuzzPeer.sessionId, candidate: 42 }, ErrorCodes.INVALID_PAYLOAD],
        [{ session_id: 7, candidate }, ErrorCodes.INVALID_PAYLOAD],
        [{ session_id: fuzzPeer.sessionId, candidate: 'c'.repeat(5000) }, ErrorCodes.INVALID_PAYLOAD],
      ];
      const tableFrom = await iceRefusals();
      for (const [payload] of table) await cloud.emitRaw('webrtc:ice', payload);
      const counted = await iceRefusedSince(tableFrom, table.length);
      assert.deepEqual(
        [...counted].sort(),
        [...tally(table.map(([, code]) => code))].sort(),
        'each refused with its code, once',
      );
      inputsTried += table.length;

      // Then the generated ones, each expected refused unless it is valid and for the live session.
      const from = await iceRefusals();
      const samples = fc.sample(ice, ICE);
      let refused = 0;
      for (const payload of samples) {
        inputsTried++;
        const parsed = iceSchema.safeParse(payload);
        if (!parsed.success || parsed.data.session_id !== fuzzPeer.sessionId) refused++;
        await cloud.emitRaw('webrtc:ice', payload);
      }
      const disconnect = fc.oneof(
        fc.record(
          { session_id: fc.oneof(text, fc.constant('no-such-session'), junk), reason: junk },
          { requiredKeys: [] },
        ),
        junk,
      );
      await fc.assert(
        fc.asyncProperty(disconnect, async (payload) => {
          inputsTried++;
          const id = (payload as { session_id?: unknown } | null)?.session_id;
          fc.pre(id !== side.sessionId && id !== fuzzPeer.sessionId);
          const reply = (await cloud.emitWithAck('webrtc:disconnect', payload)) as Record<string, unknown>;
          return reply.status === 'error' && CODES.has(String(reply.code));
        }),
        { numRuns: DISCONNECTS },
      );
      // Every refused ICE message was counted once (all were handled before the acked disconnects).
      const since = await iceRefusedSince(from, refused);
      assert.equal(
        [...since.values()].reduce((a, n) => a + n, 0),
        refused,
      );
      for (const code of since.keys()) assert.ok(CODES.has(code), `refused with ${code}`);
      fuzzPeer.type('echo fuzz-peer-$((5*5))\n');
      await fuzzPeer.waitForScreen('fuzz-peer-25');
    } finally {
      fuzzPeer.close();
    }
    await cloud.waitForDisconnectNotice(fuzzPeer.sessionId);
    await bystanderEchoes();
  });

  it(`answers a hand-labelled table and ${CHANNEL_MESSAGES} generated malformed data channel messages with the right errors`, async () => {
    const browser = await BrowserPeer.open(cloud, { device: containers[1]! });
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    try {
      // The table: each input with the reply a person reading the protocol expects, in order.
      const {
        INVALID_MESSAGE: invalid,
        UNKNOWN_MESSAGE_TYPE: unknown,
        MESSAGE_TOO_LARGE: tooLarge,
      } = ErrorCodes;
      const table: Array<[string | Buffer, string]> = [
        ['not json', invalid],
        ['', invalid],
        ['{"type":"ping"', invalid], // cut short
        ['[]', invalid],
        ['null', invalid],
        ['42', invalid],
        ['"ping"', invalid],
        ['{}', unknown], // no type
        ['{"type":"shout"}', unknown],
        ['{"type":7}', unknown],
        ['{"type":"PING"}', unknown],
        ['{"type":"output","data":"x"}', unknown], // the agent's message, not the browser's
        ['{"type":"pong"}', unknown],
        ['{"type":"ping"}', 'pong'],
        ['{"type":"resize","cols":0,"rows":24}', invalid],
        ['{"type":"resize","cols":80}', invalid],
        ['{"type":"resize","cols":1001,"rows":24}', invalid],
        ['{"type":"resize","cols":80.5,"rows":24}', invalid],
        ['{"type":"resize","cols":"80","rows":24}', invalid],
        ['{"type":"resize","cols":100,"rows":30}', 'none'], // valid: no reply
        ['{"type":"input"}', invalid],
        ['{"type":"input","data":5}', invalid],
        ['{"type":"connect_pty"}', invalid],
        ['{"type":"connect_pty","container":""}', invalid],
        ['{"type":"ack"}', invalid],
        ['{"type":"ack","offset":-1}', invalid],
        ['{"type":"ack","offset":"0"}', invalid],
        ['{"type":"ack","offset":0.5}', invalid],
        ['{"type":"ack","offset":0}', 'none'], // valid: flow control on, no reply
        ['{"type":"ack","offset":1e15}', ErrorCodes.INVALID_ACK], // beyond the output sent
        [packr.pack({ type: 'ack', offset: 2 ** 40 }), ErrorCodes.INVALID_ACK],
        [JSON.stringify({ type: 'ping', pad: 'p'.repeat(MAX_MESSAGE_BYTES) }), tooLarge],
        [Buffer.from([0xc1]), invalid], // a byte msgpack never uses
        [packr.pack('ping'), invalid],
        [packr.pack({ type: 'nope' }), unknown],
        [packr.pack({ type: 'resize', cols: 80, rows: -1 }), invalid],
        [packr.pack({ type: 'ping' }), 'pong'],
        [Buffer.alloc(MAX_MESSAGE_BYTES + 1), tooLarge],
      ];
      for (const [raw] of table) browser.sendRaw(raw);
      browser.send({ type: 'input', data: 'echo table-$((6*6))\n' }, 'json');
      await browser.waitForScreen('table-36', 30_000);
      const replies = browser.messages
        .filter((m) => m.type === 'error' || m.type === 'pong')
        .map((m) => (m.type === 'error' ? m.code : 'pong'));
      assert.deepEqual(
        replies,
        table.flatMap(([, reply]) => (reply === 'none' ? [] : [reply])),
      );
      inputsTried += table.length;
      browser.messages.splice(0);
      browser.clearOutput();

      const dims = fc.oneof(fc.integer({ min: -5, max: 1100 }), fc.double(), text, fc.constant(null));
      const shaped = fc.record(
        {
          type: fc.oneof(
            fc.constantFrom('input', 'resize', 'ping', 'close', 'connect_pty', 'ack', 'output', 'pong'),
            text,
            junk,
          ),
          data: junk,
          cols: dims,
          rows: dims,
          container: junk,
          offset: dims,
        },
        { requiredKeys: [] },
      );
      const message = fc.oneof(
        text,
        fc.json(),
        shaped.map((m) => JSON.stringify(m)),
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
        shaped.map((m) => packr.pack(m)),
        fc.anything({ maxDepth: 2 }).map((v) => packr.pack(v)),
        fc
          .integer({ min: MAX_MESSAGE_BYTES + 1, max: 3 * MAX_MESSAGE_BYTES })
          .map((n) => JSON.stringify({ type: 'ping', pad: 'p'.repeat(n) })),
      );
      let sent = 0;
      let errors = 0;
      let pongs = 0;
      const expectedCodes = new Map<string, number>();
      for (const raw of fc.sample(message, CHANNEL_MESSAGES * 2)) {
        if (sent === CHANNEL_MESSAGES) break;
        let expect: 'error' | 'pong' | 'none';
        let code = '';
        try {
          const { message: m } = decodeInbound(raw, MAX_MESSAGE_BYTES);
          // Valid messages that would end the session, type into the shell or move it are not fuzz; nor
          // are well-formed acks, whose answer depends on the output in flight (the table has them).
          if (m.type === 'close' || m.type === 'input' || m.type === 'connect_pty' || m.type === 'ack')
            continue;
          expect = m.type === 'ping' ? 'pong' : 'none';
        } catch (err) {
          expect = 'error';
          code = (err as { code: string }).code;
        }
        inputsTried++;
        sent++;
        if (expect === 'error') {
          errors++;
          expectedCodes.set(code, (expectedCodes.get(code) ?? 0) + 1);
        } else if (expect === 'pong') pongs++;
        browser.sendRaw(raw);
        if (sent % 200 === 0) await sleep(10); // let the SCTP queue drain now and then
      }
      // Ordered channel: once the echo after the fuzz is on screen, every reply before it has arrived.
      browser.send({ type: 'input', data: 'echo fuzzed-$((6*7))\n' }, 'json');
      await untilProgress({
        what: `the replies to ${sent} messages`,
        stallMs: STALL_MS,
        progress: () => browser.messages.length,
        done: () => browser.tail().includes('fuzzed-42'),
      });
      const got = browser.messages.filter((m) => m.type === 'error');
      const gotCodes = new Map<string, number>();
      for (const m of got) if (m.type === 'error') gotCodes.set(m.code!, (gotCodes.get(m.code!) ?? 0) + 1);
      assert.deepEqual(gotCodes, expectedCodes);
      assert.equal(got.length, errors);
      assert.equal(browser.messages.filter((m) => m.type === 'pong').length, pongs);
      console.log(
        `# fuzz data channel: ${table.length} hand-labelled and ${sent} generated messages; the generated got ` +
          `${errors} errors, ${pongs} pongs`,
      );
    } finally {
      browser.close();
    }
    await cloud.waitForDisconnectNotice(browser.sessionId);
    await bystanderEchoes();
  });

  it('kept the bystander echoing and left nothing behind', async () => {
    // Each test above waited for an echo after its fuzzing; the loop never failed.
    assert.equal(sideError, undefined, `the bystander failed: ${String(sideError)}`);
    assert.ok(sideEchoes >= 3, `the bystander echoed ${sideEchoes} times`);
    assert.ok(!agent.exited);
    sideRunning = false;
    await sideLoop;
    side.close();
    await cloud.waitForDisconnectNotice(side.sessionId);
    await untilNoShells(containers);
    console.log(`# fuzz: ${inputsTried} malformed inputs tried, bystander echoed ${sideEchoes} times`);
  });
});
