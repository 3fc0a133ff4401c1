/**
 * The path of the page's own peer connection, read from its getStats(): direct (host or reflexive
 * candidates on both ends) or relayed through a TURN server, the relay's transport, and the round trip
 * ICE measures. The page reads its own side rather than hearing it from the agent: no new message on
 * the `terminal` channel, and the browser's side is where its relay is chosen.
 */

export interface ConnectionPath {
  relayed: boolean;
  /** How the browser reaches its TURN server (udp, tcp, tls), when relayed on its side. */
  relayProtocol: string | undefined;
  /** ICE's current round trip on the selected pair, in ms. */
  rttMs: number | undefined;
}

/** The few fields of getStats() entries this reads (not all are in TypeScript's DOM types). */
interface StatsEntry {
  id: string;
  type: string;
  selectedCandidatePairId?: string;
  localCandidateId?: string;
  remoteCandidateId?: string;
  nominated?: boolean;
  state?: string;
  currentRoundTripTime?: number;
  candidateType?: string;
  relayProtocol?: string;
}

/** The selected pair's path, or undefined before ICE has chosen one. */
export async function readConnectionPath(pc: RTCPeerConnection): Promise<ConnectionPath | undefined> {
  const entries = new Map<string, StatsEntry>();
  (await pc.getStats()).forEach((entry: StatsEntry) => entries.set(entry.id, entry));
  const pair = selectedPair(entries);
  if (!pair) return undefined;
  const local = entries.get(pair.localCandidateId ?? '');
  const remote = entries.get(pair.remoteCandidateId ?? '');
  const localRelay = local?.candidateType === 'relay';
  return {
    relayed: localRelay || remote?.candidateType === 'relay',
    relayProtocol: localRelay ? local.relayProtocol : undefined,
    rttMs: pair.currentRoundTripTime === undefined ? undefined : pair.currentRoundTripTime * 1000,
  };
}

function selectedPair(entries: Map<string, StatsEntry>): StatsEntry | undefined {
  for (const entry of entries.values()) {
    if (entry.type === 'transport' && entry.selectedCandidatePairId)
      return entries.get(entry.selectedCandidatePairId);
  }
  // Browsers without a transport entry: the nominated pair that succeeded.
  for (const entry of entries.values()) {
    if (entry.type === 'candidate-pair' && entry.nominated && entry.state === 'succeeded') return entry;
  }
  return undefined;
}

/** For the status bar: "direct · RTT 0.4 ms", "relayed (TURN/tcp) · RTT 1.2 ms". */
export function describePath(path: ConnectionPath): string {
  const kind = path.relayed
    ? `relayed (TURN${path.relayProtocol ? `/${path.relayProtocol}` : ''})`
    : 'direct';
  return path.rttMs === undefined ? kind : `${kind} · RTT ${path.rttMs.toFixed(1)} ms`;
}
