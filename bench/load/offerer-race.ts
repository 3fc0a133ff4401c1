/**
 * The libdatachannel offerer race of the README's known issues, as the simulated browsers of the bench
 * and the tests meet it. A libdatachannel offerer that the agent's connectivity checks reach before it
 * has applied the answer starts DTLS with no fingerprint to verify, fails, and tears its ICE transport
 * down; applying the answer then throws "Got a remote candidate without ICE transport". That throw is
 * the race's signature: seen on every one of 11 such failures in 1,600 setups, and nothing the agent
 * sends after the answer can cause it, since the answer had not been applied yet.
 */

/** True for the error libdatachannel throws when the answer comes after the race tore the peer down. */
export function isOffererRace(err: unknown): boolean {
  return err instanceof Error && /without ICE transport/.test(err.message);
}

/**
 * The offer without the candidates libdatachannel embeds once gathering is done (the same candidates
 * are trickled). A browser's offer has none, and with them the agent could check the offerer before
 * the answer is even on its way.
 */
export function withoutCandidates(sdp: string): string {
  return sdp.replace(/^a=(candidate:|end-of-candidates).*(\r?\n|$)/gm, '');
}
