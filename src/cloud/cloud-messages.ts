/**
 * What the cloud stand-in adds on top of the seed's signaling contract (src/protocol/signaling-messages.ts):
 * the handshake auth an agent sends, the `agent:devices` ack, the answer an agent acks an offer with, and
 * the disconnect reasons the cloud gives browsers. Everything an agent sends is validated here.
 */
import { z } from 'zod';

/** `io(url, { auth })` of an agent. A socket without `role: 'agent'` is a browser. */
export interface AgentAuth {
  role: 'agent';
  token: string;
  agent_id?: string;
}

/** Why the cloud ended a session, as sent to the browser in `webrtc:disconnect.reason`. */
export type CloudDisconnectReason = 'agent-gone' | 'agent-closed' | 'agent-timeout';

export const devicesAckSchema = z.object({
  devices: z.array(z.object({ name: z.string().min(1).max(255), state: z.string().max(64) })).max(100_000),
});
export type DevicesAck = z.infer<typeof devicesAckSchema>;

/** The answer an agent acks `webrtc:offer` with; relayed to the browser as a `webrtc:offer` event. */
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

/** A device as `GET /api/devices` lists it. */
export interface DeviceListing {
  name: string;
  state: string;
  agent_id: string;
}
