/**
 * The Socket.IO contract between the cloud and the agent, exactly as the design document defines it
 * (topics `webrtc:offer`, `webrtc:ice`, `webrtc:disconnect`). Payloads are validated here, at the edge;
 * everything past this file trusts them.
 */
import { z } from 'zod';
import { ErrorCodes, TermgateError, type ErrorData } from '../errors.js';

export const Topics = {
  offer: 'webrtc:offer',
  answer: 'webrtc:answer',
  ice: 'webrtc:ice',
  disconnect: 'webrtc:disconnect',
  /** termgate extension: the cloud asks which containers this agent serves. */
  devices: 'agent:devices',
} as const;

/** A session id as the cloud gave it; branded so it is never mixed up with a correlation id. */
export type SessionId = string & { readonly __brand: 'SessionId' };

const sessionIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
  .transform((s) => s as SessionId);

export function offerSchema(maxSdpBytes: number) {
  return z.object({
    correlation_id: z.union([z.number(), z.string().max(128)]).optional(),
    session_id: sessionIdSchema,
    device_id: z.string().min(1).max(255),
    sdp: z
      .string()
      .min(1)
      .refine((s) => Buffer.byteLength(s) <= maxSdpBytes, `larger than ${maxSdpBytes} bytes`),
    sdp_type: z.literal('offer'),
  });
}
export type OfferMessage = z.infer<ReturnType<typeof offerSchema>>;

export const iceSchema = z.object({
  session_id: sessionIdSchema,
  // An empty candidate is the browser's end-of-candidates marker.
  candidate: z.string().max(2048),
  sdp_mid: z.string().max(64).nullish(),
  sdp_mline_index: z.number().int().min(0).max(64).nullish(),
});
export type IceMessage = z.infer<typeof iceSchema>;

export const disconnectSchema = z.object({
  session_id: sessionIdSchema,
  reason: z.string().max(256).optional(),
});
export type DisconnectMessage = z.infer<typeof disconnectSchema>;

export interface AnswerSuccess {
  action: typeof Topics.offer;
  correlation_id: number | string | undefined;
  status: 'success';
  session_id: string;
  sdp: string;
  sdp_type: 'answer';
}

export interface AnswerError {
  action: typeof Topics.offer;
  correlation_id: number | string | undefined;
  status: 'error';
  session_id: string | undefined;
  /** What went wrong, for a person. */
  message: string;
  /** termgate extension: a stable code for machines. */
  code: ErrorData['code'];
}

export type AnswerMessage = AnswerSuccess | AnswerError;

export interface OutboundIceMessage {
  session_id: string;
  candidate: string;
  sdp_mid: string;
  sdp_mline_index: number;
}

export interface DeviceInfo {
  name: string;
  state: string;
}

/** Parses a payload or throws a TermgateError whose message names the offending field. */
export function parsePayload<T>(schema: z.ZodType<T>, payload: unknown, topic: string): T {
  const result = schema.safeParse(payload);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? issue.path.join('.') : 'payload';
  throw new TermgateError(
    ErrorCodes.INVALID_PAYLOAD,
    `invalid ${topic} payload: ${where}: ${issue?.message ?? 'malformed'}`,
  );
}

/** Best-effort read of ids from a payload that failed validation, to address the error answer. */
export function peekIds(payload: unknown): { sessionId?: string; correlationId?: number | string } {
  if (typeof payload !== 'object' || payload === null) return {};
  const p = payload as Record<string, unknown>;
  const sessionId = typeof p.session_id === 'string' ? p.session_id.slice(0, 128) : undefined;
  const cid = p.correlation_id;
  const correlationId = typeof cid === 'number' || typeof cid === 'string' ? cid : undefined;
  return { sessionId, correlationId };
}
