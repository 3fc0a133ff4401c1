/**
 * What a session's selected ICE candidate pair says about its path: direct (host), through a NAT
 * (srflx, prflx) or through a TURN server (relay), and the round trip SCTP measures on it.
 */
import { canonicalIpv6 } from '../common/ipv6.js';
import type { PathKind, SessionPath } from '../common/protocol/worker-messages.js';
import type { PeerConnection } from './native-addon.js';

/** The kind of path and SCTP's smoothed round trip in ms (undefined until it has one). */
export type SelectedPath = SessionPath;

type Pair = ReturnType<PeerConnection['getSelectedCandidatePair']>;

/** Most candidates remembered per peer (a browser gathers a few per network and per server). */
const MAX_SIGNALED = 32;
const INDIRECTNESS = ['relay', 'srflx', 'prflx', 'host'] as const;

type SignaledKind = 'host' | 'srflx' | 'relay';

/**
 * The addresses of candidates either side signaled, with their kind. An end of the selected pair at one
 * of them is of that kind whatever type ICE gave it: a browser's relay (or host) can be learned as
 * peer-reflexive from a check that came before its candidate did, and libjuice does not retype it when
 * the candidate arrives; and behind the ICE UDP front every browser is peer-reflexive to the worker.
 */
export class SignaledCandidates {
  readonly #kinds = new Map<string, SignaledKind>();

  /** Remembers `candidate` (an SDP candidate line) by its address and kind. */
  note(candidate: string): void {
    const fields = candidate.replace(/^a=/, '').split(' ');
    const kind = fields[7];
    if (fields[6] !== 'typ' || (kind !== 'host' && kind !== 'srflx' && kind !== 'relay')) return;
    const key = addressKey(fields[4] ?? '', Number(fields[5]));
    const known = this.#kinds.get(key);
    if (known === undefined && this.#kinds.size >= MAX_SIGNALED) return;
    // The same address signaled twice: the more indirect kind holds.
    if (known === undefined || INDIRECTNESS.indexOf(kind) < INDIRECTNESS.indexOf(known))
      this.#kinds.set(key, kind);
  }

  kindAt(address: string, port: number): SignaledKind | undefined {
    return this.#kinds.get(addressKey(address, port));
  }
}

/** The browser address a remote end stands for (behind the ICE UDP front), if it stands for one. */
export type RemoteBehind = (end: {
  address: string;
  port: number;
}) => { address: string; port: number } | undefined;

/**
 * A pair is as indirect as its more indirect end: relayed if either side is a relay candidate, else
 * reflexive if either is, else host. The browser's relay candidate can reach the agent as peer-reflexive
 * (learned from a check before signaling brought it), so a relay on the agent's side is the surest sign.
 * Behind the front, the remote end is first taken back to the browser address it stands for.
 */
export function pathOf(
  pair: Pair,
  rttMs: number,
  signaled?: SignaledCandidates,
  remoteBehind?: RemoteBehind,
): SelectedPath | undefined {
  if (!pair) return undefined;
  const remote = remoteBehind?.(pair.remote);
  const ends = [
    { address: pair.local.address, port: pair.local.port, type: pair.local.type },
    remote
      ? { ...remote, type: 'prflx' }
      : { address: pair.remote.address, port: pair.remote.port, type: pair.remote.type },
  ];
  const kinds = ends.map((end) => signaled?.kindAt(end.address, end.port) ?? candidateKind(end.type));
  const kind = INDIRECTNESS.find((k) => kinds.includes(k)) ?? 'unknown';
  return { kind, rttMs: Number.isFinite(rttMs) && rttMs >= 0 ? rttMs : undefined };
}

/** `address port`, with an IPv6 address in one spelling (browsers and libjuice may write it apart). */
function addressKey(address: string, port: number): string {
  const canonical = address.includes(':') ? canonicalIpv6(address) : address;
  return `${canonical} ${port}`;
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
