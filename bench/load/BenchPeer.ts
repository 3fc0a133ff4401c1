/**
 * A simulated browser: a node-datachannel peer that offers the `terminal` channel, signals through the
 * bench parent (which plays the cloud), and feeds what the agent sends to the shared `Terminal` work.
 */
import nodeDataChannel from 'node-datachannel';
import {
  decodeOutbound,
  encodeInbound,
  type Encoding,
  type InboundMessage,
} from '../../common/protocol/terminal-messages.js';
import { AckPacer } from '../../common/AckPacer.js';
import { AgentChecksFirst } from './offerer-race.js';
import { nowMs, Terminal } from './Terminal.js';

type PeerConnection = InstanceType<typeof nodeDataChannel.PeerConnection>;
type DataChannel = ReturnType<PeerConnection['createDataChannel']>;

export interface Signaler {
  /** Sends the offer through the cloud; resolves with the answer SDP or rejects with the refusal. */
  offer(sessionId: string, device: string, sdp: string): Promise<string>;
  candidate(sessionId: string, candidate: string, mid: string): void;
}

/**
 * The DTLS role the simulated browser offers. `actpass` (the default) is what browsers send, as the
 * design's browser example does; the agent answers it as the DTLS server (workers/Peer.ts). `active`
 * makes the simulated browser the DTLS client outright, for comparison.
 */
export type BrowserSetup = 'actpass' | 'active';

export interface PeerTimings {
  /** When ICE + DTLS were up, the channel delivered `ready`, and `pty_connected` (ms, `nowMs()` clock). */
  connectedAt: number | undefined;
  readyAt: number | undefined;
  ptyConnectedAt: number | undefined;
}

/**
 * A setup the simulated browser lost before the agent said a word on the channel (see `BenchPeer.open`):
 * worth a second try, counted, unlike a refusal or anything after the agent spoke.
 */
export class SetupLost extends Error {}

export class BenchPeer extends Terminal {
  readonly sessionId: string;
  readonly timings: PeerTimings = { connectedAt: undefined, readyAt: undefined, ptyConnectedAt: undefined };
  readonly #encoding: Encoding;
  readonly #pc: PeerConnection;
  readonly #dc: DataChannel;
  readonly #signals: AgentChecksFirst;
  #ptyWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  #failure: string | undefined;
  #closed = false;
  #heardFromAgent = false;
  /** Acks what it took, as the browser page does (flow control: workers/AckWindow.ts). */
  readonly #acks = new AckPacer((offset) => this.#send({ type: 'ack', offset }));

  readonly #signaler: Signaler;
  readonly #born = nowMs();
  readonly #history: string[] = [];
  readonly #setup: BrowserSetup;

  constructor(sessionId: string, encoding: Encoding, signaler: Signaler, setup: BrowserSetup = 'actpass') {
    super();
    this.sessionId = sessionId;
    this.#encoding = encoding;
    this.#signaler = signaler;
    this.#setup = setup;
    this.#pc = new nodeDataChannel.PeerConnection(`bench-${sessionId}`, {
      iceServers: [],
      bindAddress: '127.0.0.1',
    });
    this.#signals = new AgentChecksFirst(this.#pc, (candidate, mid) =>
      signaler.candidate(sessionId, candidate, mid),
    );
    this.#pc.onLocalCandidate((candidate, mid) => this.#signals.ours(candidate.replace(/^a=/, ''), mid));
    this.#pc.onStateChange((state) => {
      this.#history.push(`${state}@${Math.round(nowMs() - this.#born)}`);
      if (state === 'connected') this.timings.connectedAt ??= nowMs();
      if (state === 'failed' || state === 'closed') this.#fail(`peer connection ${state}`);
    });
    this.#dc = this.#pc.createDataChannel('terminal');
    this.#dc.onMessage((raw) => this.#onMessage(raw as string | Buffer));
    this.#dc.onClosed(() => this.#fail('data channel closed'));
  }

  /**
   * Offers, answers, and resolves on `pty_connected`. The offer carries no candidates, as a browser's
   * does; ours go once the answer is applied, and the agent's are added a moment later, so the agent's
   * checks come first (offerer-race.ts). Throws `SetupLost` when the setup failed before the agent said
   * anything.
   */
  async open(device: string, timeoutMs: number): Promise<void> {
    const local = this.#signals.offer(await this.#localOffer(timeoutMs));
    const sdp = this.#setup === 'active' ? local.replace(/a=setup:actpass/g, 'a=setup:active') : local;
    const answer = await this.#signaler.offer(this.sessionId, device, sdp);
    try {
      this.#signals.answer(answer);
    } catch (err) {
      throw new SetupLost(this.#describe(err));
    }
    try {
      await this.#waitForPty(timeoutMs);
    } catch (err) {
      throw this.#heardFromAgent ? err : new SetupLost(this.#describe(err));
    }
  }

  /** What the native peer went through, for a failed setup's report. */
  #describe(err: unknown): string {
    const why = err instanceof Error ? err.message : String(err);
    return `${why} (peer ${this.#pc.state()}, ice ${this.#pc.iceState()}, gathering ${this.#pc.gatheringState()}${this.#failure ? `, ${this.#failure}` : ''}; states ${this.#history.join(' ')}; after ${Math.round(nowMs() - this.#born)} ms)`;
  }

  addRemoteCandidate(candidate: string, mid: string): void {
    this.#signals.theirs(candidate, mid);
  }

  protected write(text: string): void {
    this.#send({ type: 'input', data: this.#encoding === 'msgpack' ? Buffer.from(text) : text });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#acks.close();
    this.#signals.close();
    this.#send({ type: 'close' });
    try {
      this.#dc.close();
    } catch {
      // Already closed.
    }
    this.#pc.close();
    return Promise.resolve();
  }

  #send(message: InboundMessage): void {
    if (!this.#dc.isOpen()) return;
    try {
      const encoded = encodeInbound(message, this.#encoding);
      if (typeof encoded === 'string') this.#dc.sendMessage(encoded);
      else this.#dc.sendMessageBinary(encoded);
    } catch {
      // The channel closed between the check and the send.
    }
  }

  #localOffer(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const existing = this.#pc.localDescription();
      if (existing) return resolve(existing.sdp);
      const timer = setTimeout(() => reject(new Error('no local offer')), timeoutMs);
      this.#pc.onLocalDescription((sdp) => {
        clearTimeout(timer);
        resolve(sdp);
      });
    });
  }

  #waitForPty(timeoutMs: number): Promise<void> {
    if (this.timings.ptyConnectedAt !== undefined) return Promise.resolve();
    if (this.#failure) return Promise.reject(new Error(this.#failure));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#ptyWaiter = undefined;
        reject(new Error(`no pty_connected within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#ptyWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  #fail(reason: string): void {
    this.#failure ??= reason;
    this.#ptyWaiter?.reject(new Error(reason));
    this.#ptyWaiter = undefined;
  }

  #onMessage(raw: string | Buffer): void {
    this.#heardFromAgent = true;
    const message = decodeOutbound(raw);
    switch (message.type) {
      case 'output':
        this.push(
          typeof message.data === 'string' ? Buffer.from(message.data, 'utf8') : Buffer.from(message.data),
        );
        if (message.offset !== undefined) this.#acks.consumed(message.offset);
        break;
      case 'ready':
        this.timings.readyAt = nowMs();
        break;
      case 'pty_connected':
        this.timings.ptyConnectedAt = nowMs();
        this.#ptyWaiter?.resolve();
        this.#ptyWaiter = undefined;
        break;
      case 'error':
        if (this.timings.ptyConnectedAt === undefined) this.#fail(`agent error: ${message.message}`);
        break;
      case 'pty_disconnected':
        this.#fail(`pty disconnected: ${message.reason ?? ''}`);
        break;
      case 'pong':
        break;
    }
  }
}
