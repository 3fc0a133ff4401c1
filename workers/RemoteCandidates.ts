/**
 * The browser's ICE candidates for one session. The cloud may relay some before the offer, when there is
 * no peer to take them yet (the peer is made to answer the offer): those wait here and go to it once it
 * has answered, in the order they came; later ones go to it at once. A resumed session (issue 13) gets a
 * new peer: between the drop and its answer candidates wait again.
 */
import type { IceCandidate } from '../common/protocol/worker-messages.js';

/** What takes the candidates: the browser's side (BrowserLink), which finds each one's media section. */
export interface CandidateTaker {
  addRemoteCandidate(ice: IceCandidate): void;
}

/** Candidates kept while no peer takes them: a browser gathers a handful; more is a flood. */
const MAX_EARLY = 64;

export class RemoteCandidates {
  #taker: CandidateTaker | undefined;
  #early: IceCandidate[] = [];

  /** A candidate from the browser. */
  add(ice: IceCandidate): void {
    if (this.#taker) this.#taker.addRemoteCandidate(ice);
    else if (this.#early.length < MAX_EARLY) this.#early.push(ice);
  }

  /** The peer is gone (the browser dropped): candidates wait for the next one. */
  detached(): void {
    this.#taker = undefined;
  }

  /** The offer was answered: the candidates that came before go to `taker`, and every later one too. */
  answered(taker: CandidateTaker): void {
    this.#taker = taker;
    for (const ice of this.#early.splice(0)) taker.addRemoteCandidate(ice);
  }
}
