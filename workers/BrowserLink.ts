/**
 * The browser's side of one session, in its worker: the peer connection that answers the browser's offer,
 * its `terminal` channel, and the offer's media sections (which `mid` a candidate names). It says when the
 * browser is ready (channel open, `ready` sent), what the browser sends, and when the browser is gone; the
 * session decides what each means. Nothing here touches the PTY, so a session can outlive its link.
 *
 * Gone means one of: the channel or the peer closed (`browser-closed`); the peer failed, stayed
 * ICE-disconnected past a grace, or never opened its channel within the setup timeout (`peer-failed`).
 */
import type { ErrorData } from '../common/errors.js';
import { SafeEmitter } from '../common/SafeEmitter.js';
import {
  TERMINAL_CHANNEL_LABEL,
  type Encoding,
  type OutboundMessage,
  type SessionMessage,
} from '../common/protocol/terminal-messages.js';
import type { IceCandidate, SessionSettings } from '../common/protocol/worker-messages.js';
import type { FrontPorts } from './front-candidates.js';
import { MediaSections } from './media-sections.js';
import type { Addon, DataChannel } from './native-addon.js';
import { PathWatch } from './PathWatch.js';
import { Peer, type IceCheckSigner, type PeerState } from './Peer.js';
import { TerminalChannel, type ChannelStart } from './TerminalChannel.js';
import type { SelectedPath } from './selected-path.js';

/** How long a closing session waits for its last messages to leave the channel. */
const CLOSE_FLUSH_MS = 5000;
/**
 * How long a closed channel's peer stays up so SCTP can deliver what it still holds. Measured: 250 ms
 * got every goodbye through behind three floods on a loaded 2-core host; twice that leaves a margin.
 */
const CLOSE_LINGER_MS = 500;
/** Messages kept for a channel that is not open yet: an error or a goodbye about the PTY, never output. */
const MAX_HELD_FOR_CHANNEL = 4;
/**
 * A peer that stays 'disconnected' this long is treated as gone ('peer-failed'): a browser that vanished
 * without a close (tab killed, network cut) must not hold a root shell until the idle timeout.
 */
const DISCONNECTED_GRACE_MS = 10_000;

/** Behind the ICE UDP front, unless every path goes through the agent's TURN relay (front-candidates.ts). */
function frontPorts(settings: SessionSettings): FrontPorts | undefined {
  const { iceFrontPort, portRangeBegin, iceTransportPolicy } = settings;
  if (iceFrontPort === undefined || portRangeBegin === undefined || iceTransportPolicy === 'relay')
    return undefined;
  return { front: iceFrontPort, worker: portRangeBegin };
}

export type LinkEnd = 'browser-closed' | 'peer-failed';

export interface BrowserLinkOptions {
  /** Shown in libdatachannel's own logs. */
  name: string;
  settings: SessionSettings;
  /** The session's counters (session-stats.ts), written on the data path. */
  stats: Float64Array;
  /** A resumed session's: the offset its output goes on from, and the encoding its browser spoke. */
  start?: ChannelStart;
  /** The worker's TURN proxy, when the session's TURN servers are reached through it. */
  iceChecks?: IceCheckSigner | undefined;
}

export interface BrowserLinkEvents {
  'local-candidate': [candidate: { candidate: string; sdpMid: string; sdpMLineIndex: number }];
  'peer-state': [state: 'connecting' | 'connected' | 'disconnected'];
  /** The channel is open and `ready` went out; held messages followed it. */
  ready: [];
  message: [message: SessionMessage];
  /** The selected ICE path became known or changed kind (sampled from the channel's opening on). */
  path: [path: SelectedPath];
  /** The channel's send buffer fell below the low-water mark, or the browser's ack opened its window. */
  drain: [];
  /** The browser acknowledged output through `offset`: it need not be kept for a resume. */
  acked: [offset: number];
  /** A handler on the channel threw (caught there); the browser got TG_ERR_INTERNAL. */
  fault: [error: ErrorData];
  /** The open channel refused a message too large for the browser: the session cannot go on without a gap. */
  refused: [error: ErrorData];
  ended: [reason: LinkEnd];
}

export class BrowserLink extends SafeEmitter<BrowserLinkEvents> {
  readonly #peer: Peer;
  readonly #options: BrowserLinkOptions;
  readonly #pathWatch: PathWatch;
  #sections: MediaSections | undefined;
  #channel: TerminalChannel | undefined;
  #ready = false;
  #held: OutboundMessage[] = [];
  #setupTimer: NodeJS.Timeout | undefined;
  #disconnectedTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(addon: Addon, options: BrowserLinkOptions) {
    super();
    this.#options = options;
    const { settings } = options;
    this.#peer = new Peer(addon, {
      name: options.name,
      iceServers: settings.iceServers,
      iceTransportPolicy: settings.iceTransportPolicy,
      bindAddress: settings.bindAddress,
      portRangeBegin: settings.portRangeBegin,
      portRangeEnd: settings.portRangeEnd,
      iceUdpMux: settings.iceUdpMux,
      front: frontPorts(settings),
      // Advertise more than we accept, so an oversize message reaches us and gets a clear error back
      // instead of failing inside the browser's send().
      maxMessageSize: Math.min(settings.maxMessageBytes * 4, 16 * 1024 * 1024),
      iceChecks: options.iceChecks,
    });
    this.#peer.on('local-candidate', (candidate, mid) =>
      this.safeEmit('local-candidate', {
        candidate,
        sdpMid: mid,
        sdpMLineIndex: this.#sections?.indexOf(mid) ?? 0,
      }),
    );
    this.#peer.on('state', (state) => this.#onPeerState(state));
    this.#peer.on('data-channel', (dc) => this.#onDataChannel(dc));
    this.#pathWatch = new PathWatch({
      sample: () => this.#peer.selectedPath(),
      stats: options.stats,
      onPath: (path) => this.safeEmit('path', path),
    });
  }

  /**
   * Applies the browser's offer and returns the answer SDP. From now on the browser has the setup
   * timeout to open its channel.
   */
  answer(offerSdp: string): string {
    this.#sections = new MediaSections(offerSdp);
    const sdp = this.#peer.answer(offerSdp);
    this.#setupTimer = setTimeout(() => {
      if (!this.#ready) this.#end('peer-failed');
    }, this.#options.settings.setupTimeoutMs);
    return sdp;
  }

  /** A browser candidate; held by the peer until the offer is applied. */
  addRemoteCandidate(ice: IceCandidate): void {
    if (ice.candidate === '') return; // end of candidates: nothing to do in libdatachannel
    const mid = this.#sections?.midOf(ice.sdpMid, ice.sdpMLineIndex) ?? ice.sdpMid ?? '0';
    this.#peer.addRemoteCandidate(ice.candidate, mid);
  }

  /** The channel is open and `ready` was sent. */
  get ready(): boolean {
    return this.#ready;
  }

  /** How the browser speaks (the channel's encoding), for the channel of a resume. */
  get encoding(): Encoding {
    return this.#channel?.encoding ?? this.#options.start?.encoding ?? 'json';
  }

  /** True while the channel's send buffer is past the high-water mark. */
  get congested(): boolean {
    return this.#channel?.congested ?? false;
  }

  /** News for the browser; before the channel is open a few are held for it, in order. */
  tell(message: OutboundMessage): void {
    if (this.#ready) this.#channel?.send(message);
    else if (this.#held.length < MAX_HELD_FOR_CHANNEL) this.#held.push(message);
  }

  /** A reply to the browser (pong); dropped if there is no channel. */
  send(message: OutboundMessage): void {
    this.#channel?.send(message);
  }

  /** Tells the browser a message of its was refused (counted as a protocol error). */
  sendError(error: ErrorData): void {
    this.#channel?.sendError(error);
  }

  sendOutput(chunk: Buffer): void {
    this.#channel?.sendOutput(chunk);
  }

  /** Tells the browser why its session ends, if it can still hear it; true if it was told. */
  sayGoodbye(reason: string): boolean {
    if (!this.#channel?.isOpen) return false;
    this.#channel.send({ type: 'pty_disconnected', reason });
    return true;
  }

  /**
   * Lets what was sent reach the browser before the peer goes: waits until libdatachannel has handed it
   * to SCTP, closes the channel the orderly way (its reset queued behind the data), then lingers.
   */
  async flush(): Promise<void> {
    if (!this.#channel) return;
    await this.#channel.flushed(CLOSE_FLUSH_MS);
    await this.#channel.closeGracefully(CLOSE_FLUSH_MS);
    await this.#peer.linger(CLOSE_LINGER_MS);
  }

  /** Closes the channel and the peer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#setupTimer);
    clearTimeout(this.#disconnectedTimer);
    this.#pathWatch.close();
    this.#channel?.close();
    this.#peer.close();
    this.removeAllListeners();
  }

  #end(reason: LinkEnd): void {
    if (!this.#closed) this.safeEmit('ended', reason);
  }

  #onPeerState(state: PeerState): void {
    if (state !== 'disconnected') {
      clearTimeout(this.#disconnectedTimer);
      this.#disconnectedTimer = undefined;
    }
    if (state === 'connecting' || state === 'connected') this.safeEmit('peer-state', state);
    else if (state === 'disconnected') {
      this.safeEmit('peer-state', 'disconnected');
      this.#disconnectedTimer ??= setTimeout(() => this.#end('peer-failed'), DISCONNECTED_GRACE_MS);
    } else if (state === 'failed') this.#end('peer-failed');
    else if (state === 'closed') this.#end('browser-closed');
  }

  #onDataChannel(dc: DataChannel): void {
    if (dc.getLabel() !== TERMINAL_CHANNEL_LABEL || this.#channel) {
      dc.close(); // only one terminal channel per session
      return;
    }
    const { settings, stats, start } = this.#options;
    const channel = new TerminalChannel(dc, settings, stats, start);
    this.#channel = channel;
    channel.on('open', () => this.#onChannelOpen());
    channel.on('message', (message) => this.safeEmit('message', message));
    channel.on('drain', () => this.safeEmit('drain'));
    channel.on('acked', (offset) => this.safeEmit('acked', offset));
    channel.on('close', () => this.#end('browser-closed'));
    channel.on('fault', (error) => this.safeEmit('fault', error));
    channel.on('refused', (error) => this.safeEmit('refused', error));
    // libdatachannel may deliver a channel that is already open.
    if (dc.isOpen()) this.#onChannelOpen();
  }

  #onChannelOpen(): void {
    // libdatachannel may report a channel open twice (callback and already-open check).
    if (!this.#channel || this.#closed || this.#ready) return;
    this.#ready = true;
    clearTimeout(this.#setupTimer);
    this.#channel.send({ type: 'ready' });
    const held = this.#held;
    this.#held = [];
    for (const message of held) this.#channel.send(message);
    this.safeEmit('ready');
    this.#pathWatch.start();
  }
}
