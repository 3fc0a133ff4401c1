/**
 * The Socket.IO contract between the cloud, the agent and the browser page, as the cloud
 * defines it (topics `webrtc:offer`, `webrtc:answer`, `webrtc:ice`, `webrtc:disconnect`), with termgate's
 * additive fields and events. One file for every party: the event maps are the generics of the agent's
 * client, the stand-in's server and the page's client; the schemas validate what arrives at the agent
 * and the stand-in; the answer builders are the one way an answer is written.
 *
 * The page imports types only (no zod in its bundle); it writes topics as literals, checked by the maps.
 */
import { z } from 'zod';
import { ErrorCodes, TermgateError, type ErrorData } from '../errors.js';
import { MAX_ICE_URL_LENGTH, parseIceUrl } from '../ice-url.js';

export const Topics = {
  offer: 'webrtc:offer',
  answer: 'webrtc:answer',
  ice: 'webrtc:ice',
  disconnect: 'webrtc:disconnect',
  /** termgate extension: the cloud asks which containers this agent serves. */
  devices: 'agent:devices',
  /** termgate extension: agent → cloud, a session's terminal moved to another container (connect_pty). */
  sessionDevice: 'agent:session-device',
} as const;

/** The topics the agent listens to; anything else the cloud sends is ignored. */
export const INBOUND_TOPICS = [Topics.offer, Topics.ice, Topics.disconnect, Topics.devices] as const;

/** A session id as the cloud gave it; branded so it is never mixed up with a correlation id. */
export type SessionId = string & { readonly __brand: 'SessionId' };

const sessionIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
  .transform((s) => s as SessionId);

/** Containers the cloud may grant one session beyond its `device_id`. */
export const MAX_GRANTED_DEVICES = 64;

/** ICE servers one offer may carry, and URLs one of them may list. */
export const MAX_OFFER_ICE_SERVERS = 8;

const iceServerUrl = z
  .string()
  .max(MAX_ICE_URL_LENGTH)
  .refine(isPlainIceUrl, 'expected a stun:, turn: or turns: URL (credentials go in username and credential)');

function isPlainIceUrl(url: string): boolean {
  const parsed = parseIceUrl(url);
  return parsed !== undefined && parsed.userinfo === undefined;
}

/** One entry of the offer's `ice_servers`, shaped as a browser's RTCIceServer. */
const offerIceServerSchema = z.object({
  urls: z.union([iceServerUrl, z.array(iceServerUrl).min(1).max(MAX_OFFER_ICE_SERVERS)]),
  username: z.string().max(512).optional(),
  credential: z.string().max(512).optional(),
});
export type OfferIceServer = z.infer<typeof offerIceServerSchema>;

export function offerSchema(maxSdpBytes: number) {
  return z.object({
    correlation_id: z.union([z.number(), z.string().max(128)]).optional(),
    session_id: sessionIdSchema,
    device_id: z.string().min(1).max(255),
    /**
     * termgate extension: more containers the cloud authorizes this session to reach with connect_pty
     * (each still checked against the agent's selector). Without it, only `device_id`.
     */
    devices: z.array(z.string().min(1).max(255)).max(MAX_GRANTED_DEVICES).optional(),
    sdp: z
      .string()
      .min(1)
      .refine((s) => Buffer.byteLength(s) <= maxSdpBytes, `larger than ${maxSdpBytes} bytes`),
    sdp_type: z.literal('offer'),
    /**
     * termgate extension (issue 13): resume the dropped session `session_id` on this new connection. The
     * token is the one its `pty_connected` carried; `resume_offset` the last output `offset` the browser
     * received (absent: 0). The answer is refused with TG_ERR_RESUME_REFUSED or
     * TG_ERR_RESUME_OFFSET_OUT_OF_RANGE.
     */
    resume_token: z.string().min(1).max(256).optional(),
    resume_offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    /**
     * termgate extension: STUN/TURN servers for this session only (instead of the agent's
     * `--ice-server`), e.g. TURN credentials the cloud issued for it. A TURN server without credentials
     * gets the agent's `--turn-secret` ones.
     */
    ice_servers: z.array(offerIceServerSchema).max(MAX_OFFER_ICE_SERVERS).optional(),
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

/** An offer as a browser sends it to the cloud (the cloud adds `correlation_id` on the way to the agent). */
export interface BrowserOffer {
  session_id: string;
  device_id: string;
  sdp: string;
  sdp_type: 'offer';
  /** Resume a dropped session (see `offerSchema`). */
  resume_token?: string;
  resume_offset?: number;
}

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

/** The ids an answer is addressed with: those of its offer, as far as they are known. */
export interface AnswerIds {
  session_id?: string | undefined;
  correlation_id?: number | string | undefined;
}

export function answerSuccess(ids: AnswerIds & { session_id: string }, sdp: string): AnswerSuccess {
  return {
    action: Topics.offer,
    correlation_id: ids.correlation_id,
    status: 'success',
    session_id: ids.session_id,
    sdp,
    sdp_type: 'answer',
  };
}

export function answerError(ids: AnswerIds, error: ErrorData): AnswerError {
  return {
    action: Topics.offer,
    correlation_id: ids.correlation_id,
    status: 'error',
    session_id: ids.session_id,
    message: error.message,
    code: error.code,
  };
}

/** The reply on an ack of any other topic when the event was refused. */
export interface ErrorReply {
  status: 'error';
  message: string;
  code: ErrorData['code'];
}

export function errorReply(error: ErrorData): ErrorReply {
  return { status: 'error', message: error.message, code: error.code };
}

/** An ICE candidate as the agent sends it: it always knows its candidate's section. */
export interface OutboundIceMessage {
  session_id: string;
  candidate: string;
  sdp_mid: string;
  sdp_mline_index: number;
}

/** agent → cloud: a session's terminal now runs in `device_id` (it was in `previous_device_id`). */
export interface SessionDeviceMessage {
  session_id: string;
  device_id: string;
  previous_device_id: string;
}

export interface DeviceInfo {
  name: string;
  state: string;
}

/** The ack of `agent:devices` (with `status`, `message`, `code` beside an empty list when it failed). */
export const devicesAckSchema = z.object({
  devices: z.array(z.object({ name: z.string().min(1).max(255), state: z.string().max(64) })).max(100_000),
});
export type DevicesAck = { devices: DeviceInfo[] } & Partial<ErrorReply>;

/** The answer an agent acks `webrtc:offer` with, as the stand-in checks it before relaying it. */
export const answerAckSchema = z.discriminatedUnion('status', [
  z.object({
    action: z.literal('webrtc:offer').optional(),
    correlation_id: z.union([z.number(), z.string()]).optional(),
    status: z.literal('success'),
    session_id: z.string(),
    sdp: z.string().min(1),
    sdp_type: z.literal('answer'),
  }),
  z.object({
    action: z.literal('webrtc:offer').optional(),
    correlation_id: z.union([z.number(), z.string()]).optional(),
    status: z.literal('error'),
    session_id: z.string().nullish(),
    message: z.string().max(4096),
    code: z.string().max(64).optional(),
  }),
]);

/** `io(url, { auth })` of an agent. A socket without `role: 'agent'` is a browser (its auth: `{ token }`). */
export interface AgentAuth {
  role: 'agent';
  token: string | undefined;
  agent_id: string;
}

/**
 * `webrtc:disconnect.reason` from the cloud to the agent when a browser's socket went away without ending
 * its session (a tab reloaded or killed): the agent keeps a resumable session for a resume (issue 13).
 */
export const BROWSER_GONE = 'browser-gone';

/** Why the cloud ended a session, as sent to the browser in `webrtc:disconnect.reason`. */
export type CloudDisconnectReason = 'agent-gone' | 'agent-closed' | 'agent-timeout';

/** A device as the stand-in's `GET /api/devices` lists it for the page. */
export interface DeviceListing {
  name: string;
  state: string;
  agent_id: string;
}

type Ack<T> = (reply: T) => void;

/** cloud → agent. */
export interface CloudToAgentEvents {
  'webrtc:offer': (offer: OfferMessage, ack?: Ack<AnswerMessage>) => void;
  'webrtc:ice': (ice: IceMessage, ack?: Ack<{ status: 'success' } | ErrorReply>) => void;
  'webrtc:disconnect': (message: DisconnectMessage, ack?: Ack<{ status: 'success' } | ErrorReply>) => void;
  'agent:devices': (payload: Record<string, never>, ack: Ack<DevicesAck>) => void;
}

/** agent → cloud. */
export interface AgentToCloudEvents {
  /** The answer, when the offer came without an ack. */
  'webrtc:answer': (answer: AnswerMessage) => void;
  'webrtc:ice': (ice: OutboundIceMessage) => void;
  'webrtc:disconnect': (message: { session_id: string; reason: string }) => void;
  'agent:session-device': (message: SessionDeviceMessage) => void;
}

/** browser → cloud. */
export interface BrowserToCloudEvents {
  'webrtc:offer': (offer: BrowserOffer) => void;
  'webrtc:ice': (ice: {
    session_id: string;
    candidate: string;
    sdp_mid?: string | null;
    sdp_mline_index?: number | null;
  }) => void;
  'webrtc:disconnect': (message: { session_id: string }) => void;
}

/** cloud → browser: the answer comes back as a `webrtc:offer` event. */
export interface CloudToBrowserEvents {
  'webrtc:offer': (answer: AnswerMessage) => void;
  'webrtc:ice': (ice: IceMessage) => void;
  'webrtc:disconnect': (message: { session_id: string; reason?: string }) => void;
}

/**
 * What a receiver of untrusted events listens to: the same topics, any arguments of any type. Handlers
 * validate with the schemas above (the agent's client; the stand-in's server).
 */
export type Untrusted<Events> = { [Topic in keyof Events]: (...args: unknown[]) => void };

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
export function peekIds(payload: unknown): AnswerIds {
  if (typeof payload !== 'object' || payload === null) return {};
  const p = payload as Record<string, unknown>;
  const sessionId = typeof p.session_id === 'string' ? p.session_id.slice(0, 128) : undefined;
  const cid = p.correlation_id;
  const correlationId =
    typeof cid === 'number' ? cid : typeof cid === 'string' ? cid.slice(0, 128) : undefined;
  return { session_id: sessionId, correlation_id: correlationId };
}
