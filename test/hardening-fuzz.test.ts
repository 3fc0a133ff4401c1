/**
 * Bad input (issue 6), with a property-based fuzzer: thousands of malformed signaling payloads and data
 * channel messages. Every offer and disconnect gets an error answer, every refused ICE message is dropped
 * with a log line, every bad data channel message gets an error reply with the code the protocol module
 * gives it, the agent stays up, and a session opened beside the fuzzing keeps echoing throughout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { ErrorCodes } from '../src/errors.js';
import { iceSchema } from '../src/protocol/signaling-messages.js';
import { decodeInbound } from '../src/protocol/terminal-messages.js';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer, realOfferSdp } from './helpers/browser-peer.js';
import { removeContainers, startContainers, uniquePrefix, waitForNoShells } from './helpers/containers.js';
import { TestCloud } from './helpers/test-cloud.js';

const MAX_MESSAGE_BYTES = 4096;
const MAX_SDP_BYTES = 8192;
const OFFERS = 1500;
const ICE = 1500;
const DISCONNECTS = 500;
const CHANNEL_MESSAGES = 3000;
const CODES = new Set<string>(Object.values(ErrorCodes));

const prefix = uniquePrefix('fuzz');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let cloud: TestCloud;
let agent: AgentProcess;
let containers: string[];
let side: BrowserPeer;
let sideEchoes = 0;
let sideLoop: Promise<void> | undefined;
let sideRunning = true;
let inputsTried = 0;
let realSdp = '';

before(async () => {
  containers = await startContainers(prefix, 2);
  cloud = await TestCloud.start();
  agent = AgentProcess.start(cloud.url, [
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
  })();
});

after(async () => {
  sideRunning = false;
  await sideLoop;
  side?.close();
  console.log(`# fuzz: ${inputsTried} malformed inputs tried, bystander echoed ${sideEchoes} times`);
  assert.equal(await agent?.stop(), 0);
  await cloud?.close();
  await removeContainers(containers ?? []);
  // Known issue (README): in this file alone, cleaning node-datachannel up at the end crashes the test
  // process (SIGSEGV) after every test has passed and every peer is closed, and without the cleanup the
  // process never exits. Until the cause is found, the file ends its own process once all is closed.
  setTimeout(() => process.exit(), 1000);
});

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
  });

  it(`drops ${ICE} malformed or unknown ICE messages with a log line, and ${DISCONNECTS} bad disconnects with an error`, async () => {
    const fuzzPeer = await BrowserPeer.open(cloud, { device: containers[1]! });
    try {
      const before = agent
        .logLines()
        .filter((l) => l.msg === 'payload refused' && l.topic === 'webrtc:ice').length;
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
      // Every refused ICE message left one log line (they were all handled before the acked disconnects).
      const deadline = Date.now() + 10_000;
      let logged = 0;
      while (Date.now() < deadline) {
        logged =
          agent.logLines().filter((l) => l.msg === 'payload refused' && l.topic === 'webrtc:ice').length -
          before;
        if (logged >= refused) break;
        await sleep(100);
      }
      assert.equal(logged, refused);
      fuzzPeer.type('echo fuzz-peer-$((5*5))\n');
      await fuzzPeer.waitForScreen('fuzz-peer-25');
    } finally {
      fuzzPeer.close();
    }
    await cloud.waitForDisconnectNotice(fuzzPeer.sessionId);
  });

  it(`answers ${CHANNEL_MESSAGES} malformed data channel messages with the right errors`, async () => {
    const browser = await BrowserPeer.open(cloud, { device: containers[1]! });
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    try {
      const dims = fc.oneof(fc.integer({ min: -5, max: 1100 }), fc.double(), text, fc.constant(null));
      const shaped = fc.record(
        {
          type: fc.oneof(
            fc.constantFrom('input', 'resize', 'ping', 'close', 'connect_pty', 'output', 'pong'),
            text,
            junk,
          ),
          data: junk,
          cols: dims,
          rows: dims,
          container: junk,
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
          // Valid messages that would end the session, type into the shell or move it are not fuzz.
          if (m.type === 'close' || m.type === 'input' || m.type === 'connect_pty') continue;
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
      await browser.waitForScreen('fuzzed-42', 30_000);
      const got = browser.messages.filter((m) => m.type === 'error');
      const gotCodes = new Map<string, number>();
      for (const m of got) if (m.type === 'error') gotCodes.set(m.code!, (gotCodes.get(m.code!) ?? 0) + 1);
      assert.deepEqual(gotCodes, expectedCodes);
      assert.equal(got.length, errors);
      assert.equal(browser.messages.filter((m) => m.type === 'pong').length, pongs);
      console.log(`# fuzz data channel: ${sent} messages, ${errors} errors, ${pongs} pongs`);
    } finally {
      browser.close();
    }
    await cloud.waitForDisconnectNotice(browser.sessionId);
  });

  it('kept the bystander echoing and left nothing behind', async () => {
    assert.ok(sideEchoes >= 10, `the bystander echoed ${sideEchoes} times`);
    assert.ok(!agent.exited);
    sideRunning = false;
    await sideLoop;
    side.close();
    await cloud.waitForDisconnectNotice(side.sessionId);
    await waitForNoShells(containers);
  });
});
