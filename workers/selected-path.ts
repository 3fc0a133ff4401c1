/**
 * What a session's selected ICE candidate pair says about its path: direct (host), through a NAT
 * (srflx, prflx) or through a TURN server (relay), and the round trip SCTP measures on it.
 */
import type { PathKind, SessionPath } from '../common/protocol/worker-messages.js';
import type { PeerConnection } from './native-addon.js';

/** The kind of path and SCTP's smoothed round trip in ms (undefined until it has one). */
export type SelectedPath = SessionPath;

type Pair = ReturnType<PeerConnection['getSelectedCandidatePair']>;

/** Most relay candidates remembered per peer (a browser gathers one or two per TURN server). */
const MAX_RELAY_ADDRESSES = 16;

/**
 * The addresses of relay candidates either side signaled. An end of the selected pair at one of them is
 * a relay whatever type ICE gave it: a browser's relay can be learned as peer-reflexive from a check that
 * came before its candidate did, and libjuice does not retype it when the candidate arrives.
 */
export class RelayAddresses {
  readonly #addresses = new Set<string>();

  /** Remembers `candidate` (an SDP candidate line) if it is a relay candidate. */
  note(candidate: string): void {
    const fields = candidate.replace(/^a=/, '').split(' ');
    if (fields[6] !== 'typ' || fields[7] !== 'relay' || this.#addresses.size >= MAX_RELAY_ADDRESSES) return;
    this.#addresses.add(`${fields[4]} ${fields[5]}`);
  }

  has(address: string, port: number): boolean {
    return this.#addresses.has(`${address} ${port}`);
  }
}

/**
 * A pair is as indirect as its more indirect end: relayed if either side is a relay candidate, else
 * reflexive if either is, else host. The browser's relay candidate can reach the agent as peer-reflexive
 * (learned from a check before signaling brought it), so a relay on the agent's side is the surest sign.
 */
export function pathOf(pair: Pair, rttMs: number, relays?: RelayAddresses): SelectedPath | undefined {
  if (!pair) return undefined;
  const kinds = [pair.local, pair.remote].map((end) =>
    relays?.has(end.address, end.port) ? 'relay' : candidateKind(end.type),
  );
  const kind = (['relay', 'srflx', 'prflx', 'host'] as const).find((k) => kinds.includes(k)) ?? 'unknown';
  return { kind, rttMs: Number.isFinite(rttMs) && rttMs >= 0 ? rttMs : undefined };
}

function candidateKind(type: string): PathKind {
  const t = type.toLowerCase();
  if (t === 'host' || t === 'srflx' || t === 'prflx' || t === 'relay') return t;
  // node-datachannel spells some as libdatachannel's enum names.
  if (t === 'server_reflexive' || t === 'serverreflexive') return 'srflx';
  if (t === 'peer_reflexive' || t === 'peerreflexive') return 'prflx';
  if (t === 'relayed') return 'relay';
  return 'unknown';
}
