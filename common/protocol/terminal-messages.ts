/**
 * The `terminal` data channel protocol the browsers speak (README, "The protocol"). Text messages are JSON; a browser that
 * sends binary messages speaks msgpack with the same `type` names, where `data` is raw bytes.
 */
import { C1, Packr } from 'msgpackr';
import { z } from 'zod';
import { ErrorCodes, TermgateError, type ErrorCode } from '../errors.js';

export const TERMINAL_CHANNEL_LABEL = 'terminal';

export type Encoding = 'json' | 'msgpack';

const dimension = z.number().int().min(1).max(1000);
const containerName = z.string().min(1).max(255);

const inboundSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('input'), data: z.union([z.string(), z.instanceof(Uint8Array)]) }),
  z.object({ type: z.literal('resize'), cols: dimension, rows: dimension }),
  z.object({ type: z.literal('ping') }),
  z.object({ type: z.literal('close') }),
  // Flow control (additive): the browser consumed output through `offset` (see `output`'s offset).
  z.object({ type: z.literal('ack'), offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }),
  z.object({
    type: z.literal('connect_pty'),
    container: containerName,
    cols: dimension.optional(),
    rows: dimension.optional(),
  }),
]);

/** Browser → agent. */
export type InboundMessage = z.infer<typeof inboundSchema>;

/** What a session acts on: every browser message but `ack`, which the channel's flow control takes. */
export type SessionMessage = Exclude<InboundMessage, { type: 'ack' }>;

/**
 * Agent → browser. `data` is a string in JSON mode and raw bytes in msgpack mode. Additive fields (issue
 * 13): `output.offset` counts the session's raw PTY output bytes through the end of this message's data
 * (bytes held back for a whole UTF-8 character count in the message that carries them); the last one a
 * browser saw is where a resume starts, and an `ack` of it opts the browser into flow control.
 * `pty_connected.resume_token` is the secret a browser presents in a resume offer (`webrtc:offer`
 * `resume_token`).
 */
export type OutboundMessage =
  | { type: 'output'; data: string | Uint8Array; offset?: number }
  | { type: 'ready' }
  | { type: 'pong' }
  | { type: 'pty_connected'; container: string; resume_token?: string }
  | { type: 'pty_disconnected'; reason?: string }
  | { type: 'error'; message: string; code?: ErrorCode };

const KNOWN_TYPES = new Set(['input', 'resize', 'ping', 'close', 'connect_pty', 'ack']);

// One packer per thread; `useRecords: false` keeps plain maps that any msgpack decoder in a browser reads.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** Decodes one data channel message, or throws a TermgateError a browser can act on. */
export function decodeInbound(
  raw: string | Buffer,
  maxBytes: number,
): { message: InboundMessage; encoding: Encoding } {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.byteLength;
  if (size > maxBytes) {
    throw new TermgateError(
      ErrorCodes.MESSAGE_TOO_LARGE,
      `message of ${size} bytes exceeds the ${maxBytes}-byte limit`,
    );
  }
  const encoding: Encoding = typeof raw === 'string' ? 'json' : 'msgpack';
  const value = encoding === 'json' ? parseJson(raw as string) : unpack(raw as Buffer);
  return { message: validate(value), encoding };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new TermgateError(ErrorCodes.INVALID_MESSAGE, 'message is not valid JSON');
  }
}

function unpack(bytes: Buffer): unknown {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch {
    value = C1;
  }
  // msgpackr decodes the byte msgpack never uses (0xc1) to a marker object instead of failing.
  if (value === C1) throw new TermgateError(ErrorCodes.INVALID_MESSAGE, 'message is not valid msgpack');
  return value;
}

function validate(value: unknown): InboundMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TermgateError(ErrorCodes.INVALID_MESSAGE, 'message must be an object with a "type" field');
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !KNOWN_TYPES.has(type)) {
    const shown = typeof type === 'string' ? JSON.stringify(type.slice(0, 32)) : typeof type;
    throw new TermgateError(ErrorCodes.UNKNOWN_MESSAGE_TYPE, `unknown message type ${shown}`);
  }
  const result = inboundSchema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.join('.') || 'message';
  throw new TermgateError(
    ErrorCodes.INVALID_MESSAGE,
    `invalid "${type}" message: ${field}: ${issue?.message ?? 'malformed'}`,
  );
}

/** Encodes one agent → browser message in the session's encoding. */
export function encodeOutbound(message: OutboundMessage, encoding: Encoding): string | Buffer {
  if (encoding === 'msgpack') return packr.pack(message);
  return JSON.stringify(message);
}

/** Decodes an agent → browser message; used by test peers and the bench's simulated browsers. */
export function decodeOutbound(raw: string | Buffer): OutboundMessage {
  return (typeof raw === 'string' ? JSON.parse(raw) : packr.unpack(raw)) as OutboundMessage;
}

/** Encodes a browser → agent message; used by test peers and the bench's simulated browsers. */
export function encodeInbound(message: InboundMessage, encoding: Encoding): string | Buffer {
  return encoding === 'msgpack' ? packr.pack(message) : JSON.stringify(message);
}
