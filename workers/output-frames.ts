/**
 * `output`, the one message the agent sends at volume, encoded straight from the PTY's bytes.
 *
 * msgpack: exactly the bytes msgpackr gives `{type: 'output', data, offset}` (a three-entry map16, `data`
 * as bin8/16/32, `offset` as the smallest unsigned integer that holds it, or a float64 past 32 bits, as
 * msgpackr writes it), written into one frame this thread reuses instead of a new buffer per message.
 * That is safe because node-datachannel copies a message inside `sendMessageBinary`: the frame is free
 * again when the call returns. So a frame is valid until the next call, and must be sent before it.
 *
 * JSON: V8's own `JSON.stringify` of the decoded text (measured: 3.8 ms per MB of `yes` lines; escaping
 * byte by byte in JavaScript took 13).
 *
 * `offset` (issue 13, additive): the session's raw output bytes through the end of this message's data.
 */

/** `de 0003`: map16 of 3; `a4 "type"`, `a6 "output"`, `a4 "data"`. */
const HEADER = Buffer.from([
  0xde,
  0x00,
  0x03,
  0xa4,
  ...Buffer.from('type'),
  0xa6,
  ...Buffer.from('output'),
  0xa4,
  ...Buffer.from('data'),
]);
/** bin32: type byte and a 4-byte length. */
const MAX_BIN_HEADER = 5;
/** `a6 "offset"`. */
const OFFSET_KEY = Buffer.from([0xa6, ...Buffer.from('offset')]);
/** The key and a float64: type byte and 8 bytes. */
const MAX_OFFSET_BYTES = OFFSET_KEY.length + 9;

let frame = newFrame(64 * 1024);

function newFrame(dataBytes: number): Buffer {
  const buffer = Buffer.allocUnsafe(HEADER.length + MAX_BIN_HEADER + dataBytes + MAX_OFFSET_BYTES);
  HEADER.copy(buffer);
  return buffer;
}

/** The msgpack `output` message carrying `data` and `offset`; valid until the next call (see above). */
export function msgpackOutputFrame(data: Uint8Array, offset: number): Buffer {
  if (frame.length < HEADER.length + MAX_BIN_HEADER + data.length + MAX_OFFSET_BYTES)
    frame = newFrame(data.length);
  let at = HEADER.length;
  if (data.length < 0x100) {
    frame[at++] = 0xc4;
    frame[at++] = data.length;
  } else if (data.length < 0x10000) {
    frame[at++] = 0xc5;
    at = frame.writeUInt16BE(data.length, at);
  } else {
    frame[at++] = 0xc6;
    at = frame.writeUInt32BE(data.length, at);
  }
  frame.set(data, at);
  at += data.length;
  at += OFFSET_KEY.copy(frame, at);
  at = writeUnsigned(offset, at);
  return frame.subarray(0, at);
}

/** A non-negative integer the way msgpackr writes it. */
function writeUnsigned(n: number, at: number): number {
  if (n < 0x80) {
    frame[at] = n;
    return at + 1;
  }
  if (n < 0x100) {
    frame[at] = 0xcc;
    return frame.writeUInt8(n, at + 1);
  }
  if (n < 0x10000) {
    frame[at] = 0xcd;
    return frame.writeUInt16BE(n, at + 1);
  }
  if (n <= 0xffffffff) {
    frame[at] = 0xce;
    return frame.writeUInt32BE(n, at + 1);
  }
  frame[at] = 0xcb;
  return frame.writeDoubleBE(n, at + 1);
}

/** The JSON `output` message carrying `data`, which must end on a whole UTF-8 character. */
export function jsonOutputText(data: Buffer, offset: number): string {
  return JSON.stringify({ type: 'output', data: data.toString('utf8'), offset });
}
