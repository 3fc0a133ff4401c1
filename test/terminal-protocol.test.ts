/** The data channel protocol module and UTF-8 framing, on their own. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeInbound,
  encodeOutbound,
  decodeOutbound,
  encodeInbound,
} from '../common/protocol/terminal-messages.js';
import { TermgateError } from '../common/errors.js';
import { completeUtf8Length, utf8CutBefore } from '../workers/utf8.js';

describe('terminal protocol', () => {
  it('decodes every browser message of the design document', () => {
    const cases = [
      { type: 'input', data: 'ls -la\n' },
      { type: 'resize', cols: 120, rows: 40 },
      { type: 'ping' },
      { type: 'close' },
      { type: 'connect_pty', container: 'runtime-001', cols: 80, rows: 24 },
    ];
    for (const message of cases) {
      assert.deepEqual(decodeInbound(JSON.stringify(message), 65536), { message, encoding: 'json' });
    }
  });

  it('round-trips msgpack with raw bytes as data', () => {
    const packed = encodeInbound({ type: 'input', data: Buffer.from([0, 255, 10]) }, 'msgpack') as Buffer;
    const { message, encoding } = decodeInbound(packed, 65536);
    assert.equal(encoding, 'msgpack');
    assert.ok(message.type === 'input' && message.data instanceof Uint8Array);
    assert.deepEqual([...(message.data as Uint8Array)], [0, 255, 10]);
    const out = decodeOutbound(encodeOutbound({ type: 'output', data: Buffer.from('hi') }, 'msgpack'));
    assert.ok(out.type === 'output' && out.data instanceof Uint8Array);
  });

  it('encodes agent messages as the design document shows them', () => {
    assert.equal(encodeOutbound({ type: 'ready' }, 'json'), '{"type":"ready"}');
    assert.equal(
      encodeOutbound({ type: 'pty_connected', container: 'runtime-001' }, 'json'),
      '{"type":"pty_connected","container":"runtime-001"}',
    );
  });

  it('refuses what it cannot trust, with codes', () => {
    const refuse = (raw: string | Buffer, code: string, max = 65536) =>
      assert.throws(
        () => decodeInbound(raw, max),
        (e: unknown) => e instanceof TermgateError && e.code === code,
      );
    refuse('{', 'TG_ERR_INVALID_MESSAGE');
    refuse('null', 'TG_ERR_INVALID_MESSAGE');
    refuse('{"type":"nope"}', 'TG_ERR_UNKNOWN_MESSAGE_TYPE');
    refuse('{"type":"resize","cols":1.5,"rows":2}', 'TG_ERR_INVALID_MESSAGE');
    refuse('{"type":"input","data":"' + 'x'.repeat(300) + '"}', 'TG_ERR_MESSAGE_TOO_LARGE', 256);
    refuse(Buffer.from([0x82, 0xa4, 0x74]), 'TG_ERR_INVALID_MESSAGE'); // truncated map
    refuse(Buffer.from([0xc1]), 'TG_ERR_INVALID_MESSAGE'); // the byte msgpack never uses
  });
});

describe('UTF-8 framing', () => {
  it('holds back an incomplete trailing character', () => {
    const euro = Buffer.from('a€'); // 61 e2 82 ac
    assert.equal(completeUtf8Length(euro), 4);
    assert.equal(completeUtf8Length(euro.subarray(0, 3)), 1);
    assert.equal(completeUtf8Length(euro.subarray(0, 2)), 1);
    assert.equal(completeUtf8Length(Buffer.from('✓😀').subarray(0, 6)), 3);
  });

  it('chunks only between characters, losing nothing', () => {
    const text = 'é€😀x'.repeat(1000);
    const bytes = Buffer.from(text);
    const pieces: Buffer[] = [];
    for (let start = 0; start < bytes.length;) {
      const end = utf8CutBefore(bytes, start, 7);
      pieces.push(bytes.subarray(start, end));
      start = end;
    }
    assert.ok(pieces.every((p) => p.length <= 7));
    assert.equal(pieces.map((p) => p.toString('utf8')).join(''), text);
  });
});
