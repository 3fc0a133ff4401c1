/**
 * `output`, the one message the agent sends at volume, encoded straight from the PTY's bytes.
 *
 * msgpack: exactly the bytes msgpackr gives `{type: 'output', data, offset}` (a three-entry map16,
 * `data` as bin8/16/32, `offset` as msgpackr writes a number: the smallest unsigned int, float64 past 2^32), written into one frame this thread reuses instead of a new buffer per message. That is
 * safe because node-datachannel copies a message inside `sendMessageBinary`: the frame is free again when
 * the call returns. So a frame is valid until the next call, and must be sent before it.
 *
 * JSON: V8's own `JSON.stringify` of the decoded text (measured: 3.8 ms per MB of `yes` lines; escaping
 * byte by byte in JavaScript took 13).
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
/** `a6 "offset"`, after the data. */
const OFFSET_KEY = Buffer.from([0xa6, ...Buffer.from('offset')]);
/** The key and a float64: type byte and 8 bytes. */
const MAX_TRAILER = OFFSET_KEY.length + 9;

/** The most a msgpack `output` frame adds to its data. */
export const MSGPACK_OUTPUT_OVERHEAD = HEADER.length + MAX_BIN_HEADER + MAX_TRAILER;

let frame = newFrame(64 * 1024);

function newFrame(dataBytes: number): Buffer {
  const buffer = Buffer.allocUnsafe(MSGPACK_OUTPUT_OVERHEAD + dataBytes);
  HEADER.copy(buffer);
  return buffer;
}

/** The msgpack `output` message carrying `data` up to `offset`; valid until the next call (see above). */
export function msgpackOutputFrame(data: Uint8Array, offset: number): Buffer {
  if (frame.length < MSGPACK_OUTPUT_OVERHEAD + data.length) frame = newFrame(data.length);
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
  return frame.subarray(0, writeUint(frame, at, offset));
}

/** Writes a non-negative integer as msgpackr does; returns where it ends. */
function writeUint(buffer: Buffer, at: number, value: number): number {
  if (value < 0x80) {
    buffer[at] = value;
    return at + 1;
  }
  if (value < 0x100) {
    buffer[at] = 0xcc;
    buffer[at + 1] = value;
    return at + 2;
  }
  if (value < 0x10000) {
    buffer[at] = 0xcd;
    return buffer.writeUInt16BE(value, at + 1);
  }
  if (value <= 0xffffffff) {
    buffer[at] = 0xce;
    return buffer.writeUInt32BE(value, at + 1);
  }
  buffer[at] = 0xcb;
  return buffer.writeDoubleBE(value, at + 1);
}

/** The JSON `output` message carrying `data` up to `offset`; `data` must end on a whole UTF-8 character. */
export function jsonOutputText(data: Buffer, offset: number): string {
  return JSON.stringify({ type: 'output', data: data.toString('utf8'), offset });
}
