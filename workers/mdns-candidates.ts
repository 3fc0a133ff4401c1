/**
 * Browsers hide their host addresses behind random mDNS names (`<uuid>.local`, Firefox and Chromium
 * alike unless the page has camera or microphone permission). Only a multicast DNS query on the
 * browser's own link can resolve such a name, and libdatachannel has no mDNS resolver: it hands the name
 * to getaddrinfo in a thread of its own, which asks the host's unicast DNS server (or nss-mdns) for a
 * name that server cannot know. So the agent drops these candidates without a lookup. The connection
 * does not need them: the browser checks the agent's candidates, and the agent learns the browser's
 * address from those checks (a peer-reflexive candidate, RFC 8445 §7.3.1.3).
 */

/** The connection-address field of a candidate, `a=` prefix or not (RFC 8839 §5.1). */
function addressOf(candidate: string): string | undefined {
  return candidate.replace(/^a=/, '').split(' ')[4];
}

/** True for a candidate whose address is an mDNS name. */
export function isMdnsCandidate(candidate: string): boolean {
  return /\.local\.?$/i.test(addressOf(candidate) ?? '');
}

/** The SDP without its mDNS candidate lines (an offer made after gathering carries its candidates). */
export function withoutMdnsCandidates(sdp: string): string {
  return withoutCandidates(sdp, isMdnsCandidate);
}

/** The SDP without the candidate lines `drop` picks (given each line without its line end). */
export function withoutCandidates(sdp: string, drop: (line: string) => boolean): string {
  return sdp.replace(/^a=candidate:[^\r\n]*(\r?\n|$)/gm, (line) => (drop(line.trimEnd()) ? '' : line));
}
