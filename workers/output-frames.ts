/**
 * `output`, the one message the agent sends at volume, encoded straight from the PTY's bytes.
 *
 * msgpack: exactly the bytes msgpackr gives `{type: 'output', data}` (a two-entry map16, `data` as
 * bin8/16/32), written into one frame this thread reuses instead of a new buffer per message. That is
 * safe because node-datachannel copies a message inside `sendMessageBinary`: the frame is free again when
 * the call returns. So a frame is valid until the next call, and must be sent before it.
 *
 * JSON: V8's own `JSON.stringify` of the decoded text (measured: 3.8 ms per MB of `yes` lines; escaping
 * byte by byte in JavaScript took 13).
 */

/** `de 0002`: map16 of 2; `a4 "type"`, `a6 "output"`, `a4 "data"`. */
const HEADER = Buffer.from([
  0xde,
  0x00,
  0x02,
  0xa4,
  ...Buffer.from('type'),
  0xa6,
  ...Buffer.from('output'),
  0xa4,
  ...Buffer.from('data'),
]);
/** bin32: type byte and a 4-byte length. */
const MAX_BIN_HEADER = 5;

let frame = newFrame(64 * 1024);

function newFrame(dataBytes: number): Buffer {
  const buffer = Buffer.allocUnsafe(HEADER.length + MAX_BIN_HEADER + dataBytes);
  HEADER.copy(buffer);
  return buffer;
}

/** The msgpack `output` message carrying `data`; valid until the next call (see above). */
export function msgpackOutputFrame(data: Uint8Array): Buffer {
  if (frame.length < HEADER.length + MAX_BIN_HEADER + data.length) frame = newFrame(data.length);
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
  return frame.subarray(0, at + data.length);
}

/** The JSON `output` message carrying `data`, which must end on a whole UTF-8 character. */
export function jsonOutputText(data: Buffer): string {
  return JSON.stringify({ type: 'output', data: data.toString('utf8') });
}
