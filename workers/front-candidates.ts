/**
 * Candidates behind the ICE UDP front (`--ice-udp-port`, src/ice-front/IceUdpFront.ts). The worker's peers
 * listen on the worker's own port, which the browser must not use: the front's public port is the one
 * the firewall lets in, and the front relays to the worker. So
 *
 * - the agent's host candidates name the front's port instead of the worker's (same address: the front
 *   listens on the same bind address), and so do its server-reflexive ones: a host behind NAT forwards
 *   the one port as it is (the firewall rule docs/deploy.md gives), so the NAT's address with the front's
 *   port is where browsers reach it;
 * - the browser's candidates are not given to the worker, which would send to them from its own port.
 *   The browser checks the agent's candidates through the front, and the worker learns the browser from
 *   those checks, as the front's route socket (a peer-reflexive candidate, RFC 8445 §7.3.1.3). A browser
 *   behind TURN reaches the front from its relay the same way.
 *
 * With `--ice-transport-policy relay` the agent uses only its TURN relay, never the front: nothing is
 * changed then (the caller does not ask).
 */
import { withoutCandidates } from './mdns-candidates.js';

export interface FrontPorts {
  /** The front's public port. */
  front: number;
  /** This worker's own port, behind it. */
  worker: number;
}

/** The candidate as the browser must see it behind the front. */
export function throughFront(candidate: string, ports: FrontPorts): string {
  const fields = candidate.split(' ');
  const type = fields[6] === 'typ' ? fields[7] : undefined;
  const own = type === 'host' && fields[5] === String(ports.worker);
  if (!own && type !== 'srflx') return candidate;
  fields[5] = String(ports.front);
  const rport = fields.indexOf('rport');
  if (rport > 0 && fields[rport + 1] === String(ports.worker)) fields[rport + 1] = String(ports.front);
  return fields.join(' ');
}

/** The answer with its candidate lines as `throughFront` makes them. */
export function answerThroughFront(sdp: string, ports: FrontPorts): string {
  return sdp.replace(
    /^a=(candidate:[^\r\n]*)(\r?\n|$)/gm,
    (_line, candidate: string, eol: string) => `a=${throughFront(candidate, ports)}${eol}`,
  );
}

/** The offer without the browser's candidates: the worker learns the browser through the front. */
export function offerThroughFront(sdp: string): string {
  return withoutCandidates(sdp, () => true);
}
