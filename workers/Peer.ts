/**
 * One WebRTC peer connection, answering a browser's offer. The single owner of the native object's
 * callbacks: each is registered once here (a second registration silently replaces the first) and
 * re-emitted as a typed event, and nothing thrown by a listener reaches the native callback, where it
 * would abort the process.
 */
import { ErrorCodes, TermgateError } from '../common/errors.js';
import { SafeEmitter } from '../common/SafeEmitter.js';
import { answerThroughFront, offerThroughFront, throughFront, type FrontPorts } from './front-candidates.js';
import { isMdnsCandidate, withoutMdnsCandidates } from './mdns-candidates.js';
import type { PeerIceServer } from '../common/protocol/worker-messages.js';
import { browserBehindFront } from './front-route-table.js';
import { pathOf, SignaledCandidates, type SelectedPath } from './selected-path.js';
import type { Addon, DataChannel, PeerConnection } from './native-addon.js';

export interface PeerOptions {
  /** Shown in libdatachannel's own logs. */
  name: string;
  iceServers: PeerIceServer[];
  /** `relay`: only TURN-relayed candidates are gathered and used. */
  iceTransportPolicy: 'all' | 'relay';
  bindAddress: string | undefined;
  portRangeBegin: number | undefined;
  portRangeEnd: number | undefined;
  /** libjuice's UDP mux: every peer of this addon copy on the one port of the range. */
  iceUdpMux: boolean;
  /** Behind the ICE UDP front (`--ice-udp-port`): candidates go through it (front-candidates.ts). */
  front: FrontPorts | undefined;
  /** Largest message the remote may send; advertised in the answer. */
  maxMessageSize: number;
  /** Behind the TURN proxy: it gets the session's local ICE credentials to repair checks with. */
  iceChecks?: IceCheckSigner | undefined;
}

/** Re-signs relayed checks for a session (workers/TurnProxy.ts); `admit` returns the undo. */
export interface IceCheckSigner {
  admit(ufrag: string, password: string): () => void;
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
  /** Candidates of both sides, to tell a pair's path whatever type ICE gave its ends. */
  readonly #signaled = new SignaledCandidates();
  readonly #front: FrontPorts | undefined;
  readonly #iceChecks: IceCheckSigner | undefined;
  #unadmit: (() => void) | undefined;

  constructor(addon: Addon, options: PeerOptions) {
    super();
    this.#front = options.front;
    this.#iceChecks = options.iceChecks;
    this.#pc = new addon.PeerConnection(options.name, {
      iceServers: options.iceServers,
      iceTransportPolicy: options.iceTransportPolicy,
      bindAddress: options.bindAddress,
      portRangeBegin: options.portRangeBegin,
      portRangeEnd: options.portRangeEnd,
      enableIceUdpMux: options.iceUdpMux,
      maxMessageSize: options.maxMessageSize,
    });
    this.#pc.onLocalCandidate((candidate, mid) => {
      const ours = this.#front
        ? throughFront(browserCandidate(candidate), this.#front)
        : browserCandidate(candidate);
      // Behind the front, ICE sees its own end as the front's port, learned from the browser's answers.
      this.#signaled.note(ours);
      this.safeEmit('local-candidate', ours, mid);
    });
    this.#pc.onStateChange((state) => this.#onState(state as PeerState));
    this.#pc.onDataChannel((channel) => this.safeEmit('data-channel', channel));
  }

  /**
   * Applies the browser's offer and returns the answer SDP (available synchronously in libdatachannel).
   * The agent answers as the DTLS server (`a=setup:passive`); see `asDtlsServer`. The offer's mDNS
   * candidates are dropped (workers/mdns-candidates.ts), and behind the front all of them
   * (workers/front-candidates.ts).
   */
  answer(offerSdp: string): string {
    const offer = this.#front ? offerThroughFront(offerSdp) : withoutMdnsCandidates(offerSdp);
    try {
      this.#pc.setRemoteDescription(asDtlsServer(offer), 'offer');
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
    for (const line of offerSdp.match(/^a=candidate:.*$/gm) ?? []) this.#signaled.note(line.trimEnd());
    this.#admitIceCredentials(local.sdp);
    const pending = this.#pendingCandidates ?? [];
    this.#pendingCandidates = undefined;
    for (const [candidate, mid] of pending) this.addRemoteCandidate(candidate, mid);
    return this.#front ? answerThroughFront(local.sdp, this.#front) : local.sdp;
  }

  /**
   * Adds a browser candidate; held until the offer is applied. A bad candidate is ignored, not fatal,
   * and so is an mDNS one, which nothing here could resolve (workers/mdns-candidates.ts), and any behind
   * the front (workers/front-candidates.ts).
   */
  addRemoteCandidate(candidate: string, mid: string): boolean {
    if (this.#closed || candidate === '' || isMdnsCandidate(candidate)) return false;
    if (this.#front) {
      // Not for ICE (the front's route is the browser's only address here), but for its path.
      this.#signaled.note(candidate);
      return false;
    }
    if (this.#pendingCandidates) {
      this.#pendingCandidates.push([candidate, mid]);
      return true;
    }
    try {
      this.#pc.addRemoteCandidate(candidate, mid);
      this.#signaled.note(candidate);
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

  /** The selected candidate pair's kind and the SCTP round trip, once ICE has chosen; else undefined. */
  selectedPath(): SelectedPath | undefined {
    if (this.#closed) return undefined;
    try {
      const behind = this.#front ? browserBehindFront : undefined;
      return pathOf(this.#pc.getSelectedCandidatePair(), this.#pc.rtt(), this.#signaled, behind);
    } catch {
      return undefined; // torn down natively under us
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unadmit?.();
    try {
      this.#pc.close();
    } catch {
      // Already torn down natively; nothing left to release.
    }
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #admitIceCredentials(localSdp: string): void {
    if (!this.#iceChecks || this.#unadmit) return;
    const ufrag = /^a=ice-ufrag:(\S+)/m.exec(localSdp)?.[1];
    const password = /^a=ice-pwd:(\S+)/m.exec(localSdp)?.[1];
    if (ufrag && password) this.#unadmit = this.#iceChecks.admit(ufrag, password);
  }

  #onState(state: PeerState): void {
    if (this.#closed) return;
    this.safeEmit('state', state);
  }
}

/**
 * An offer that leaves the DTLS role to the answerer (`a=setup:actpass`, what browsers send) is applied
 * as if the browser had asked to be the DTLS client (`active`): libdatachannel then answers `passive` and
 * waits for the browser's ClientHello, a choice RFC 8842 leaves to the answerer. Left to itself it
 * answers `active` and sends its ClientHello as soon as ICE connects on its side, often before the
 * browser has applied the answer; a browser that drops that early flight (a libdatachannel offerer
 * does; Chromium keeps one) waits for OpenSSL's retransmit, 1 s later. This way nothing is early: the
 * browser starts DTLS once it has the answer, and libdatachannel keeps datagrams that arrive before its
 * own DTLS transport is up (Transport::recv holds up to 8). Measured with bare node-datachannel peers,
 * answer delayed 20 ms: 12 of 200 setups took ≥ 1 s before, 0 of 200 after; in the bench, sequential
 * setups from a libdatachannel offerer went from p90 1018 ms to 149 ms, and Chromium stays at ~80 ms.
 * An offer that already chose a role is applied as it is.
 */
export function asDtlsServer(offerSdp: string): string {
  return offerSdp.replace(/^a=setup:actpass(?=\r?$)/gm, 'a=setup:active');
}

/** libdatachannel prefixes candidates with "a="; browsers and the cloud's messages do not. */
function browserCandidate(candidate: string): string {
  return candidate.startsWith('a=') ? candidate.slice(2) : candidate;
}
