/**
 * The libdatachannel offerer race of the README's known issues, and how the simulated browsers of the
 * bench and the tests keep out of it. A libdatachannel offerer that the agent's connectivity checks
 * reach before it has applied the answer starts DTLS with no fingerprint to verify, fails, and tears
 * its ICE transport down; applying the answer then throws "Got a remote candidate without ICE
 * transport" (every one of 11 such failures in 1,600 setups, when the simulated browsers trickled their
 * candidates at once; a slower machine saw more than 10 %).
 *
 * So a simulated browser tells the agent where it is only once it has the answer: its offer carries no
 * candidates (libdatachannel puts them there itself) and its trickled ones are held until then. That
 * alone made the browser check first, and its first DTLS flight then often reached the agent before
 * the agent's ICE had completed, which costs OpenSSL's 1 s retransmit: p50 of offer→pty_connected at
 * 4 in flight 1,019 ms. The agent's candidates are therefore added only AGENT_CHECKS_FIRST_MS after
 * the answer (and none from the answer itself): the agent checks first, as it does a browser that
 * trickles at once, and both ends are up before the first flight. Same run, same machine: p50 193 ms,
 * p99 278 ms, and sequential p99 92 ms.
 */

/** How long a simulated browser leaves the agent to check first before it adds the agent's candidates. */
export const AGENT_CHECKS_FIRST_MS = 300;

/**
 * A description without the candidates libdatachannel embeds once gathering is done (the same
 * candidates are trickled).
 */
export function withoutCandidates(sdp: string): string {
  return sdp.replace(/^a=(candidate:|end-of-candidates).*(\r?\n|$)/gm, '');
}

type Candidate = [candidate: string, mid: string];

/** The few PeerConnection calls the discipline needs (node-datachannel's, as the offerer). */
interface OffererPeer {
  setRemoteDescription(sdp: string, type: 'answer'): void;
  addRemoteCandidate(candidate: string, mid: string): void;
}

/**
 * The signaling order above for one simulated browser: `offer` strips the offer, `ours` holds our
 * candidates until `answer` has been applied, and `theirs` holds the agent's until
 * AGENT_CHECKS_FIRST_MS after that. For the bench's peers and the test peers in child processes.
 */
export class AgentChecksFirst {
  readonly #pc: OffererPeer;
  readonly #sendOurs: (candidate: string, mid: string) => void;
  #ours: Candidate[] | undefined = [];
  #theirs: Candidate[] | undefined = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(pc: OffererPeer, sendOurs: (candidate: string, mid: string) => void) {
    this.#pc = pc;
    this.#sendOurs = sendOurs;
  }

  offer(sdp: string): string {
    return withoutCandidates(sdp);
  }

  ours(candidate: string, mid: string): void {
    if (this.#ours) this.#ours.push([candidate, mid]);
    else this.#sendOurs(candidate, mid);
  }

  theirs(candidate: string, mid: string): void {
    if (this.#theirs) this.#theirs.push([candidate, mid]);
    else this.#addQuietly(candidate, mid);
  }

  answer(sdp: string): void {
    this.#pc.setRemoteDescription(withoutCandidates(sdp), 'answer');
    for (const [candidate, mid] of this.#ours ?? []) this.#sendOurs(candidate, mid);
    this.#ours = undefined;
    this.#timer = setTimeout(() => {
      const held = this.#theirs ?? [];
      this.#theirs = undefined;
      for (const [candidate, mid] of held) this.#addQuietly(candidate, mid);
    }, AGENT_CHECKS_FIRST_MS);
    this.#timer.unref();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#theirs = undefined;
  }

  #addQuietly(candidate: string, mid: string): void {
    try {
      this.#pc.addRemoteCandidate(candidate, mid);
    } catch {
      // A candidate the native side refuses is not fatal.
    }
  }
}
