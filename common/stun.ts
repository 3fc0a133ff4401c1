/**
 * The little of STUN (RFC 8489) and TURN (RFC 8656) the agent reads itself: telling a Binding request
 * from other datagrams (the ICE UDP front), and finding and re-signing the attributes of an ICE check
 * inside what a TURN server relays (the TURN proxy). Bounds are checked on every read: these bytes come
 * from the network.
 */
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const STUN_HEADER_BYTES = 20;
const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const DATA_INDICATION = 0x0017;
const FINGERPRINT_XOR = 0x5354554e;

export const StunAttr = {
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  DATA: 0x0013,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
  FINGERPRINT: 0x8028,
} as const;

export interface StunAttribute {
  type: number;
  /** Offset of the attribute's header in the message. */
  at: number;
  /** Offset and length of its value. */
  valueAt: number;
  length: number;
}

function isStun(packet: Buffer, type: number): boolean {
  return (
    packet.length >= STUN_HEADER_BYTES &&
    packet.readUInt16BE(0) === type &&
    packet.readUInt32BE(4) === MAGIC_COOKIE
  );
}

/** A STUN Binding request: an ICE connectivity check. */
export function isStunBindingRequest(packet: Buffer): boolean {
  return isStun(packet, BINDING_REQUEST);
}

/** The attributes of a STUN message, or undefined if its lengths do not add up. */
export function stunAttributes(message: Buffer): StunAttribute[] | undefined {
  const end = STUN_HEADER_BYTES + message.readUInt16BE(2);
  if (end > message.length || end % 4 !== 0) return undefined;
  const attributes: StunAttribute[] = [];
  for (let at = STUN_HEADER_BYTES; at < end;) {
    if (at + 4 > end) return undefined;
    const length = message.readUInt16BE(at + 2);
    const next = at + 4 + Math.ceil(length / 4) * 4;
    if (next > end) return undefined;
    attributes.push({ type: message.readUInt16BE(at), at, valueAt: at + 4, length });
    at = next;
  }
  return attributes;
}

/** What a TURN server relays to us: the Data indication around it (if any) and its attributes. */
export type Relayed =
  | { payload: Buffer; outer?: undefined; outerAttributes?: undefined }
  | { payload: Buffer; outer: Buffer; outerAttributes: StunAttribute[] };

/**
 * The datagram a TURN server relays to us, as a view into `packet`: the DATA of a Data indication (with
 * the indication, whose FINGERPRINT covers it), or the payload of a ChannelData message.
 */
export function relayedPayload(packet: Buffer): Relayed | undefined {
  if (packet.length >= 4 && (packet[0]! & 0xc0) === 0x40) {
    const length = packet.readUInt16BE(2);
    return 4 + length <= packet.length ? { payload: packet.subarray(4, 4 + length) } : undefined;
  }
  if (!isStun(packet, DATA_INDICATION)) return undefined;
  const outerAttributes = stunAttributes(packet);
  const data = outerAttributes?.find((a) => a.type === StunAttr.DATA);
  if (!outerAttributes || !data) return undefined;
  return {
    payload: packet.subarray(data.valueAt, data.valueAt + data.length),
    outer: packet,
    outerAttributes,
  };
}

/** Rewrites the FINGERPRINT of `message` in place, if it has one (it covers everything before it). */
export function refreshFingerprint(message: Buffer, attributes: StunAttribute[]): void {
  const fingerprint = attributes.find((a) => a.type === StunAttr.FINGERPRINT && a.length === 4);
  if (!fingerprint) return;
  const crc = (crc32(message.subarray(0, fingerprint.at)) ^ FINGERPRINT_XOR) >>> 0;
  message.writeUInt32BE(crc, fingerprint.valueAt);
}

/**
 * The MESSAGE-INTEGRITY value of `message` under `key`: HMAC-SHA1 of everything before the attribute,
 * with the header's length as if the message ended right after it (RFC 8489 §14.5).
 */
export function messageIntegrity(message: Buffer, integrity: StunAttribute, key: string): Buffer {
  const signed = Buffer.from(message.subarray(0, integrity.at));
  signed.writeUInt16BE(integrity.valueAt + integrity.length - STUN_HEADER_BYTES, 2);
  return createHmac('sha1', key).update(signed).digest();
}
