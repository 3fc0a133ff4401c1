/**
 * One WebRTC peer connection, answering a browser's offer. The single owner of the native object's
 * callbacks: each is registered once here (a second registration silently replaces the first) and
 * re-emitted as a typed event, and nothing thrown by a listener reaches the native callback, where it
 * would abort the process.
 */
import { ErrorCodes, TermgateError } from '../src/errors.js';
import { SafeEmitter } from '../src/SafeEmitter.js';
import type { Addon, DataChannel, PeerConnection } from './native-addon.js';

export interface PeerOptions {
  /** Shown in libdatachannel's own logs. */
  name: string;
  iceServers: string[];
  bindAddress: string | undefined;
  portRangeBegin: number | undefined;
  portRangeEnd: number | undefined;
  /** Largest message the remote may send; advertised in the answer. */
  maxMessageSize: number;
}

export type PeerState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

export interface PeerEvents {
  'local-candidate': [candidate: string, mid: string];
  state: [state: PeerState];
  'data-channel': [channel: DataChannel];
  close: [];
}

export class Peer extends SafeEmitter<PeerEvents> {
  readonly #pc: PeerConnection;
  /** Candidates that arrived before the offer was applied. */
  #pendingCandidates: Array<[string, string]> | undefined = [];
  #closed = false;

  constructor(addon: Addon, options: PeerOptions) {
    super();
    this.#pc = new addon.PeerConnection(options.name, {
      iceServers: options.iceServers,
      bindAddress: options.bindAddress,
      portRangeBegin: options.portRangeBegin,
      portRangeEnd: options.portRangeEnd,
      maxMessageSize: options.maxMessageSize,
    });
    this.#pc.onLocalCandidate((candidate, mid) =>
      this.safeEmit('local-candidate', browserCandidate(candidate), mid),
    );
    this.#pc.onStateChange((state) => this.#onState(state as PeerState));
    this.#pc.onDataChannel((channel) => this.safeEmit('data-channel', channel));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Applies the browser's offer and returns the answer SDP (available synchronously in libdatachannel). */
  answer(offerSdp: string): string {
    try {
      this.#pc.setRemoteDescription(offerSdp, 'offer');
    } catch (err) {
      throw new TermgateError(ErrorCodes.BAD_SDP, `the offer SDP was refused: ${(err as Error).message}`);
    }
    const local = this.#pc.localDescription();
    if (!local || local.type !== 'answer') {
      throw new TermgateError(
        ErrorCodes.BAD_SDP,
        'the offer SDP produced no answer (does it offer a data channel?)',
      );
    }
    const pending = this.#pendingCandidates ?? [];
    this.#pendingCandidates = undefined;
    for (const [candidate, mid] of pending) this.addRemoteCandidate(candidate, mid);
    return local.sdp;
  }

  /** Adds a browser candidate; held until the offer is applied. A bad candidate is ignored, not fatal. */
  addRemoteCandidate(candidate: string, mid: string): boolean {
    if (this.#closed || candidate === '') return false;
    if (this.#pendingCandidates) {
      this.#pendingCandidates.push([candidate, mid]);
      return true;
    }
    try {
      this.#pc.addRemoteCandidate(candidate, mid);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Waits `ms`, or less if the remote ends the connection first. A data channel's buffered amount only
   * counts what libdatachannel still holds; up to the SCTP send buffer more may still be on its way
   * (nothing reports it: `bytesSent()` counts what SCTP accepted), and closing the peer drops it. The
   * linger gives the last messages, a goodbye behind a flood, time to reach the browser.
   */
  linger(ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off('state', onState);
        resolve();
      };
      const onState = (state: PeerState) => {
        if (state === 'closed' || state === 'failed' || state === 'disconnected') done();
      };
      const timer = setTimeout(done, ms);
      this.on('state', onState);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#pc.close();
    } catch {
      // Already torn down natively; nothing left to release.
    }
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #onState(state: PeerState): void {
    if (this.#closed) return;
    this.safeEmit('state', state);
  }
}

/** libdatachannel prefixes candidates with "a="; browsers and the seed's messages do not. */
function browserCandidate(candidate: string): string {
  return candidate.startsWith('a=') ? candidate.slice(2) : candidate;
}
