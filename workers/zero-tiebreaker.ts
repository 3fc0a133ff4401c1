/**
 * Chromium relay-only over TURN/TCP sends its ICE checks with an ICE-CONTROLLING tie-breaker of 0
 * (measured with Chromium 156; docs/turn.md). 0 is a legal value, but libjuice, the agent's ICE library,
 * takes a 0 for a missing attribute and refuses the check with 400, on which Chromium drops the pair.
 * This gives such a check, as a TURN server relays it to us, a tie-breaker of 1 and signs it again with
 * the session's ICE password, so that libjuice reads what the browser meant.
 *
 * Only a check that carries the password's own valid signature is touched: the proxy never signs what
 * the browser did not. Everything else is left as it came.
 */
import {
  isStunBindingRequest,
  messageIntegrity,
  refreshFingerprint,
  relayedPayload,
  StunAttr,
  stunAttributes,
} from '../common/stun.js';

/** Any value but 0 reads as present; the agent is the controlled side, so the value decides nothing. */
const REPAIRED_TIEBREAKER = 1n;
const INTEGRITY_BYTES = 20;

/** The local ICE password for a username fragment, for the sessions of this worker. */
export type PasswordLookup = (ufrag: string) => string | undefined;

/** Repairs, in place, a relayed check with a tie-breaker of 0; true if it did. */
export function repairZeroTiebreaker(packet: Buffer, passwordOf: PasswordLookup): boolean {
  const relayed = relayedPayload(packet);
  if (!relayed || !isStunBindingRequest(relayed.payload)) return false;
  const check = relayed.payload;
  const attributes = stunAttributes(check);
  if (!attributes) return false;
  const role = attributes.find(
    (a) => (a.type === StunAttr.ICE_CONTROLLING || a.type === StunAttr.ICE_CONTROLLED) && a.length === 8,
  );
  if (!role || check.readBigUInt64BE(role.valueAt) !== 0n) return false;
  const integrity = attributes.find((a) => a.type === StunAttr.MESSAGE_INTEGRITY);
  const username = attributes.find((a) => a.type === StunAttr.USERNAME);
  if (!integrity || integrity.length !== INTEGRITY_BYTES || !username || role.at > integrity.at) return false;
  // USERNAME is "<receiver's ufrag>:<sender's ufrag>": ours comes first.
  const ufrag = check.toString('utf8', username.valueAt, username.valueAt + username.length).split(':')[0]!;
  const password = passwordOf(ufrag);
  if (password === undefined) return false;
  const signature = check.subarray(integrity.valueAt, integrity.valueAt + INTEGRITY_BYTES);
  if (!messageIntegrity(check, integrity, password).equals(signature)) return false;
  check.writeBigUInt64BE(REPAIRED_TIEBREAKER, role.valueAt);
  messageIntegrity(check, integrity, password).copy(signature);
  refreshFingerprint(check, attributes);
  if (relayed.outer) refreshFingerprint(relayed.outer, relayed.outerAttributes);
  return true;
}
