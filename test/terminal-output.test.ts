/**
 * The output path on its own: `output` frames built straight from the PTY's bytes are the very bytes
 * the protocol module gives (msgpack) and the same JSON text, and TerminalChannel sends a PTY's reads
 * byte-exact in msgpack and as whole UTF-8 characters in JSON, however the reads cut them, one native
 * send per piece, each `output` with its offset; the ack window holds output for a browser that acks and
 * refuses a bad ack with a code. The channel is a recording stand-in for node-datachannel's DataChannel.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createSessionStats, readStats, StatSlot, statsView } from '../common/protocol/session-stats.js';
import {
  decodeOutbound,
  encodeInbound,
  encodeOutbound,
  type Encoding,
} from '../common/protocol/terminal-messages.js';
import type { DataChannel } from '../workers/native-addon.js';
import { AckPacer } from '../common/AckPacer.js';
import { ErrorCodes, type ErrorData } from '../common/errors.js';
import { jsonOutputText, msgpackOutputFrame } from '../workers/output-frames.js';
import { TerminalChannel, type ChannelStart } from '../workers/TerminalChannel.js';

const CHUNK = 16 * 1024;

/** What a DataChannel was asked to send, in order, copied at the call (as the addon copies). */
class RecordingChannel {
  sent: Array<string | Buffer> = [];
  /** The browser's `a=max-message-size`: a larger message throws, as libdatachannel does. */
  limit = 256 * 1024;
  #onMessage: ((raw: string | Buffer) => void) | undefined;
  setBufferedAmountLowThreshold(): void {}
  onOpen(): void {}
  onClosed(): void {}
  onError(): void {}
  onBufferedAmountLow(): void {}
  onMessage(cb: (raw: string | Buffer) => void): void {
    this.#onMessage = cb;
  }
  isOpen(): boolean {
    return true;
  }
  bufferedAmount(): number {
    return 0;
  }
  close(): void {}
  maxMessageSize(): number {
    return this.limit;
  }
  sendMessage(text: string): boolean {
    this.#fits(Buffer.byteLength(text));
    this.sent.push(text);
    return true;
  }
  sendMessageBinary(bytes: Buffer): boolean {
    this.#fits(bytes.length);
    this.sent.push(Buffer.from(bytes));
    return true;
  }
  #fits(bytes: number): void {
    if (bytes > this.limit) throw new Error('Message size exceeds limit');
  }
  /** The browser speaks: its encoding becomes the channel's. */
  receive(raw: string | Buffer): void {
    this.#onMessage?.(raw);
  }
}

/** A channel speaking `encoding` (the browser pinged in it), or one resuming at `start` that heard nothing yet. */
function channel(
  encoding: Encoding,
  start?: ChannelStart,
  limit?: number,
  maxMessagesPerSecond = 1000,
): { dc: RecordingChannel; tc: TerminalChannel; stats: Float64Array } {
  const dc = new RecordingChannel();
  if (limit) dc.limit = limit;
  const stats = statsView(createSessionStats());
  const tc = new TerminalChannel(
    dc as unknown as DataChannel,
    {
      maxMessageBytes: 65536,
      outputChunkBytes: CHUNK,
      highWaterMark: 1 << 20,
      lowWaterMark: 1 << 18,
      maxMessagesPerSecond,
      ackWindowBytes: 256 * 1024,
    },
    stats,
    start,
  );
  if (start) return { dc, tc, stats };
  dc.receive(encodeInbound({ type: 'ping' }, encoding));
  dc.sent = []; // the pong
  return { dc, tc, stats };
}

/** The output the browser sees, as bytes, from every message the channel sent. */
function received(sent: Array<string | Buffer>): Buffer {
  return Buffer.concat(
    sent.map((raw) => {
      const message = decodeOutbound(raw);
      assert.equal(message.type, 'output');
      const data = (message as { data: string | Uint8Array }).data;
      return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    }),
  );
}

/** Cuts `bytes` at the given offsets (as the PTY's reads would). */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((a) => a % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const p of [...points, bytes.length]) {
    pieces.push(bytes.subarray(start, p));
    start = p;
  }
  return pieces.filter((p) => p.length > 0);
}

describe('output frames', () => {
  it('msgpack: the same bytes the protocol module encodes, at every length and offset class', () => {
    const offsets = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    for (const length of [0, 1, 255, 256, 65535, 65536, 70000]) {
      const data = Buffer.alloc(length, 0x5a);
      for (const offset of offsets) {
        const expected = encodeOutbound({ type: 'output', data, offset }, 'msgpack') as Buffer;
        assert.deepEqual(msgpackOutputFrame(data, offset), expected, `${length} bytes at ${offset}`);
      }
    }
  });

  it('msgpack: a frame is reused, so it holds only the last message (the addon copies at send)', () => {
    const first = msgpackOutputFrame(Buffer.from('first'), 5);
    const copy = Buffer.from(first);
    msgpackOutputFrame(Buffer.from('other'), 10);
    assert.notDeepEqual(first, copy, 'the next call writes over the same memory');
    assert.equal(first.buffer, msgpackOutputFrame(Buffer.from('x'), 11).buffer);
  });

  it('JSON: the text the protocol module encodes, for any whole UTF-8 text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (text) => {
        const data = Buffer.from(text, 'utf8');
        const offset = data.length + 7;
        assert.equal(
          jsonOutputText(data, offset),
          encodeOutbound({ type: 'output', data: text, offset }, 'json'),
        );
      }),
    );
    const controls = Buffer.from([0, 7, 8, 9, 10, 13, 27, 0x22, 0x5c, 0x7f]);
    assert.equal(
      jsonOutputText(controls, 10),
      encodeOutbound({ type: 'output', data: controls.toString('utf8'), offset: 10 }, 'json'),
    );
  });
});

describe('TerminalChannel output', () => {
  it('msgpack: every byte arrives, in order, whatever the reads (binary, invalid UTF-8 included)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3 * CHUNK }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (bytes, at) => {
          const { dc, tc } = channel('msgpack');
          const data = Buffer.from(bytes);
          for (const read of cut(data, at)) tc.sendOutput(read);
          assert.deepEqual(received(dc.sent), data);
          assert.ok(dc.sent.every((m) => (m as Buffer).length <= CHUNK + 64));
          assert.deepEqual(offsets(dc.sent), runningTotals(dc.sent, 0));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('JSON: whole characters in every message, all text in order, however reads split them', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 4000 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (text, at) => {
          const { dc, tc } = channel('json');
          const data = Buffer.from(text, 'utf8');
          for (const read of cut(data, at)) tc.sendOutput(read);
          for (const raw of dc.sent) {
            const { data: piece } = decodeOutbound(raw) as { data: string };
            assert.ok(!piece.includes('\uFFFD'), 'no character was cut in two');
          }
          assert.equal(received(dc.sent).toString('utf8'), text);
          assert.equal(offsets(dc.sent).at(-1) ?? 0, data.length, 'the last offset counts every byte');
        },
      ),
      { numRuns: 200 },
    );
  });

  it("stays within the browser's largest message: JSON escaping (six times a control byte) and msgpack frames", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Encoding>('json', 'msgpack'),
        fc.integer({ min: 1024, max: 70_000 }),
        fc.integer({ min: 1, max: 4 * CHUNK }),
        fc.constantFrom(0, 0x01, 0x1b, 0x22, 0x41),
        fc.uint8Array({ maxLength: 64 }),
        (encoding, limit, length, fill, head) => {
          const { dc, tc } = channel(encoding, undefined, limit);
          // One byte repeated (a control byte escapes to 6) after a few arbitrary ones.
          const data = Buffer.alloc(length + head.length, fill);
          data.set(head);
          const whole = encoding === 'json' ? Buffer.from(data.toString('utf8')) : data;
          tc.sendOutput(whole);
          assert.ok(dc.sent.every((m) => Buffer.byteLength(m) <= limit));
          assert.deepEqual(received(dc.sent), whole);
          assert.equal(offsets(dc.sent).at(-1), whole.length);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a message the open channel refuses ends the output with one refusal, never a silent gap', () => {
    for (const encoding of ['json', 'msgpack'] as const) {
      // Smaller than any output message can be: the first piece is refused.
      const { dc, tc, stats } = channel(encoding, undefined, 24);
      const refusals: ErrorData[] = [];
      tc.on('refused', (error) => refusals.push(error));
      tc.sendOutput(Buffer.from('hello, world\r\n'));
      tc.sendOutput(Buffer.from('more\r\n'));
      assert.deepEqual(dc.sent, [], `${encoding}: nothing was sent`);
      assert.equal(refusals.length, 1, `${encoding}: refused once, and no output was tried after it`);
      assert.equal(refusals[0]!.code, ErrorCodes.OUTPUT_REFUSED);
      assert.match(refusals[0]!.message, /refused a message of \d+ bytes \(it accepts up to 24\)/);
      assert.equal(readStats(stats).bytesToBrowser, 0, `${encoding}: no byte counted as sent`);
    }
  });

  it('sends a large read as messages of at most the chunk size, one native send each', () => {
    const { dc, tc, stats } = channel('msgpack');
    const read = Buffer.alloc(64 * 1024, 0x41);
    tc.sendOutput(read);
    assert.equal(dc.sent.length, 4);
    const s = readStats(stats);
    assert.equal(s.messagesToBrowser, 4);
    assert.equal(s.bytesToBrowser, read.length);
  });

  it('JSON: a character held back at the end of a read goes out with the next one', () => {
    const { dc, tc } = channel('json');
    const euro = Buffer.from('a€b'); // 61 e2 82 ac 62
    tc.sendOutput(euro.subarray(0, 3));
    tc.sendOutput(euro.subarray(3));
    assert.deepEqual(
      dc.sent.map((m) => (decodeOutbound(m) as { data: string }).data),
      ['a', '€b'],
    );
    // The bytes held back count in the message that carries them.
    assert.deepEqual(
      dc.sent.map((m) => (decodeOutbound(m) as { offset: number }).offset),
      [1, 5],
    );
  });

  it('every output carries the raw bytes sent through its end, in either encoding', () => {
    for (const encoding of ['json', 'msgpack'] as const) {
      fc.assert(
        fc.property(
          fc.string({ unit: 'grapheme', maxLength: 3 * CHUNK }),
          fc.array(fc.nat(), { maxLength: 8 }),
          (text, at) => {
            const { dc, tc } = channel(encoding);
            const data = Buffer.from(text, 'utf8');
            for (const read of cut(data, at)) tc.sendOutput(read);
            let through = 0;
            for (const raw of dc.sent) {
              const message = decodeOutbound(raw) as { data: string | Uint8Array; offset: number };
              through +=
                typeof message.data === 'string' ? Buffer.byteLength(message.data) : message.data.length;
              assert.equal(message.offset, through);
            }
            assert.equal(through, data.length);
          },
        ),
        { numRuns: 100 },
      );
    }
  });
});

describe('TerminalChannel ack window', () => {
  const WINDOW = 256 * 1024;
  const errors = (sent: Array<string | Buffer>) =>
    sent.map((raw) => decodeOutbound(raw)).filter((m) => m.type === 'error');

  it('a browser that never acks is never held by the window', () => {
    const { tc } = channel('msgpack');
    tc.sendOutput(Buffer.alloc(4 * WINDOW, 0x41));
    assert.equal(tc.congested, false);
  });

  it('once the browser acks, a full window congests the channel and an ack that opens it drains it', () => {
    const { dc, tc } = channel('json');
    let drains = 0;
    tc.on('drain', () => drains++);
    dc.receive(JSON.stringify({ type: 'ack', offset: 0 }));
    tc.sendOutput(Buffer.alloc(WINDOW - 1, 0x41));
    assert.equal(tc.congested, false, 'one byte short of the window');
    tc.sendOutput(Buffer.from('b'));
    assert.equal(tc.congested, true);
    dc.receive(JSON.stringify({ type: 'ack', offset: 1000 }));
    assert.equal(tc.congested, false);
    assert.equal(drains, 1);
    dc.receive(JSON.stringify({ type: 'ack', offset: 2000 }));
    assert.equal(drains, 1, 'an ack into a window that was not full changes nothing');
    assert.deepEqual(errors(dc.sent), []);
  });

  it('refuses an ack beyond what was sent or going back, with a code, and keeps the window', () => {
    const { dc, tc } = channel('msgpack');
    tc.sendOutput(Buffer.alloc(WINDOW + 10, 0x41));
    dc.receive(encodeInbound({ type: 'ack', offset: 500 }, 'msgpack'));
    assert.equal(tc.congested, false, 'only 256 KiB - 490 bytes unacknowledged');
    for (const offset of [WINDOW + 11, 499]) dc.receive(encodeInbound({ type: 'ack', offset }, 'msgpack'));
    const refused = errors(dc.sent);
    assert.deepEqual(
      refused.map((m) => (m as { code: string }).code),
      ['TG_ERR_INVALID_ACK', 'TG_ERR_INVALID_ACK'],
    );
    tc.sendOutput(Buffer.alloc(490, 0x41));
    assert.equal(tc.congested, true, 'the refused acks left the acknowledged offset at 500');
  });

  it('takes every ack that moves the window on, over the message rate too: a dropped one would stall the output', () => {
    for (const encoding of ['json', 'msgpack'] as const) {
      const rate = 5;
      const { dc, tc, stats } = channel(encoding, undefined, undefined, rate);
      let drains = 0;
      tc.on('drain', () => drains++);
      dc.receive(encodeInbound({ type: 'ack', offset: 0 }, encoding));
      for (let i = 0; i < 3 * rate; i++) dc.receive(encodeInbound({ type: 'ping' }, encoding));
      const pongs = () => dc.sent.map((raw) => decodeOutbound(raw)).filter((m) => m.type === 'pong').length;
      assert.ok(pongs() < 3 * rate, `${encoding}: the pings were limited (${pongs()} pongs)`);
      dc.sent = [];
      tc.sendOutput(Buffer.alloc(WINDOW, 0x41));
      assert.equal(tc.congested, true, encoding);
      dc.receive(encodeInbound({ type: 'ack', offset: WINDOW }, encoding));
      assert.equal(tc.congested, false, `${encoding}: the ack over the rate opened the window`);
      assert.equal(drains, 1, encoding);
      // Over the rate, anything else is still dropped, a repeated ack included (it moves nothing).
      const refusedBefore = stats[StatSlot.protocolErrors]!;
      dc.receive(encodeInbound({ type: 'ack', offset: WINDOW }, encoding));
      dc.receive(encodeInbound({ type: 'ping' }, encoding));
      assert.equal(stats[StatSlot.protocolErrors]! - refusedBefore, 2, encoding);
      assert.equal(pongs(), 0, encoding);
    }
  });

  it("never spends the message rate on acks: a keystroke right after a fast stream's acks is taken", () => {
    for (const encoding of ['json', 'msgpack'] as const) {
      const rate = 5;
      const { dc, tc } = channel(encoding, undefined, undefined, rate);
      const heard: string[] = [];
      tc.on('message', (m: { type: string }) => heard.push(m.type));
      // Ten times the rate's worth of acks, each a step of 1 KiB, as a browser acks a fast stream.
      for (let i = 1; i <= 10 * rate; i++) {
        tc.sendOutput(Buffer.alloc(1024, 0x41));
        dc.receive(encodeInbound({ type: 'ack', offset: i * 1024 }, encoding));
      }
      dc.receive(encodeInbound({ type: 'input', data: '\x03' }, encoding));
      assert.deepEqual(heard, ['input'], `${encoding}: the Ctrl-C after the acks was taken`);
      const errors = dc.sent.map((raw) => decodeOutbound(raw)).filter((m) => m.type === 'error');
      assert.deepEqual(errors, [], encoding);
    }
  });

  it('counts an ack that trickles (under 1 KiB, short of everything sent) against the rate', () => {
    for (const encoding of ['json', 'msgpack'] as const) {
      const rate = 5;
      const { dc, tc, stats } = channel(encoding, undefined, undefined, rate);
      tc.sendOutput(Buffer.alloc(4096, 0x41));
      // The channel's first ping took one of the rate's messages; trickling acks take the rest.
      for (let i = 1; i < rate; i++) dc.receive(encodeInbound({ type: 'ack', offset: i * 100 }, encoding));
      assert.equal(stats[StatSlot.protocolErrors], 0, `${encoding}: the rate's worth were taken`);
      dc.receive(encodeInbound({ type: 'ack', offset: rate * 100 }, encoding));
      dc.receive(encodeInbound({ type: 'ping' }, encoding));
      assert.equal(
        stats[StatSlot.protocolErrors],
        2,
        `${encoding}: the next trickle and the ping were refused`,
      );
      // An ack of everything sent moves the window to its end: taken whatever the rate.
      dc.receive(encodeInbound({ type: 'ack', offset: 4096 }, encoding));
      assert.equal(stats[StatSlot.protocolErrors], 2, encoding);
    }
  });

  it('refuses a malformed ack at the edge', () => {
    const { dc } = channel('json');
    for (const offset of [-1, 1.5, '12', null, 2 ** 53]) dc.receive(JSON.stringify({ type: 'ack', offset }));
    dc.receive(JSON.stringify({ type: 'ack' }));
    assert.deepEqual(
      errors(dc.sent).map((m) => (m as { code: string }).code),
      Array(6).fill('TG_ERR_INVALID_MESSAGE'),
    );
  });
});

describe('AckPacer', () => {
  it('acks every 32 KiB consumed, and the rest once output is quiet', async () => {
    const acks: number[] = [];
    const pacer = new AckPacer((offset) => acks.push(offset));
    for (let offset = 4096; offset <= 100 * 1024; offset += 4096) pacer.consumed(offset);
    assert.deepEqual(acks, [32 * 1024, 64 * 1024, 96 * 1024]);
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(acks, [32 * 1024, 64 * 1024, 96 * 1024, 100 * 1024]);
    pacer.consumed(100 * 1024 + 1);
    pacer.close();
    pacer.close();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(acks.length, 4, 'nothing after close');
  });
});

describe('TerminalChannel of a resumed session', () => {
  it('a channel that resumes a session counts on from where the browser was, in its encoding', () => {
    const { dc, tc } = channel('json', { offset: 1000, encoding: 'msgpack' });
    tc.sendOutput(Buffer.from('abc'));
    assert.ok(Buffer.isBuffer(dc.sent[0]), 'msgpack before the browser said anything');
    assert.deepEqual(offsets(dc.sent), [1003]);
  });
});

function offsets(sent: Array<string | Buffer>): number[] {
  return sent.map((m) => (decodeOutbound(m) as { offset: number }).offset);
}

/** The offset each message should carry: the bytes of all output so far, from `start`. */
function runningTotals(sent: Array<string | Buffer>, start: number): number[] {
  let total = start;
  return sent.map((m) => {
    const { data } = decodeOutbound(m) as { data: Uint8Array };
    total += data.length;
    return total;
  });
}
