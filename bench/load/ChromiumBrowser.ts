/**
 * A real browser as the bench's offerer: one headless Chromium page whose `RTCPeerConnection`s set up
 * termgate sessions the way the design document's browser example does (`createOffer`, the offer sent,
 * candidates trickled from `onicecandidate` as they come, JSON on the `terminal` channel). The bench
 * process relays the page's signaling to the bench cloud in order: the offer first, then its candidates.
 * Must run inside a network namespace with only `lo` (see bench/scenarios/browser.ts).
 */
import type { Page } from 'playwright-core';
import { launchChromium, type ChromiumSession } from '../../test/helpers/chromium.js';
import type { BenchCloud } from '../cloud.js';

/** What the page keeps per session; lives in the page, described here for the typed calls below. */
interface PageApi {
  offer(id: string): Promise<string>;
  answer(id: string, sdp: string): Promise<void>;
  candidate(id: string, candidate: string, mid: string): Promise<void>;
  /** Resolves with offer → peer connected and → `pty_connected` in ms (the page's clock). */
  ptyConnected(id: string, timeoutMs: number): Promise<SetupTimes>;
  close(id: string): void;
}

/** Offer → peer connected (ICE + DTLS) and offer → `pty_connected`, in ms. */
export interface SetupTimes {
  connectedMs: number;
  readyMs: number;
}

/** The few DOM WebRTC pieces the page uses (the bench compiles without the DOM library). */
interface PagePeer {
  createDataChannel(label: string): PageChannel;
  createOffer(): Promise<object>;
  setLocalDescription(description: object): Promise<void>;
  setRemoteDescription(description: { type: 'answer'; sdp: string }): Promise<void>;
  addIceCandidate(candidate: { candidate: string; sdpMid: string }): Promise<void>;
  readonly localDescription: { sdp: string } | null;
  readonly connectionState: string;
  onicecandidate: ((e: { candidate: { candidate: string; sdpMid: string | null } | null }) => void) | null;
  onconnectionstatechange: (() => void) | null;
  close(): void;
}
interface PageChannel {
  readonly readyState: string;
  onmessage: ((e: { data: unknown }) => void) | null;
  send(text: string): void;
}
interface PageGlobals {
  RTCPeerConnection: new (config: { iceServers: [] }) => PagePeer;
  tgBench: PageApi;
  /** Exposed by the bench process: a candidate the page gathered. */
  tgCandidate(id: string, candidate: string, mid: string): void;
}

/** Runs in the page (serialized by playwright, so it refers to nothing outside itself). */
function installPageApi(): void {
  const page = globalThis as unknown as PageGlobals;
  interface Entry {
    pc: PagePeer;
    dc: PageChannel;
    offerAt: number;
    connectedAt: number | undefined;
    ptyAt: number | undefined;
    failure: string | undefined;
    waiters: Array<() => void>;
  }
  const sessions = new Map<string, Entry>();
  const get = (id: string) => {
    const entry = sessions.get(id);
    if (!entry) throw new Error(`no session ${id} in the page`);
    return entry;
  };
  const wake = (entry: Entry) => entry.waiters.splice(0).forEach((w) => w());
  page.tgBench = {
    async offer(id) {
      const pc = new page.RTCPeerConnection({ iceServers: [] });
      const dc = pc.createDataChannel('terminal');
      const entry: Entry = {
        pc,
        dc,
        offerAt: 0,
        connectedAt: undefined,
        ptyAt: undefined,
        failure: undefined,
        waiters: [],
      };
      sessions.set(id, entry);
      pc.onicecandidate = (e) => {
        if (e.candidate?.candidate) page.tgCandidate(id, e.candidate.candidate, e.candidate.sdpMid ?? '0');
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'connected') entry.connectedAt ??= performance.now();
        if (pc.connectionState === 'failed') {
          entry.failure ??= 'peer connection failed';
          wake(entry);
        }
      };
      dc.onmessage = (e) => {
        if (typeof e.data !== 'string') return;
        const message = JSON.parse(e.data) as { type: string; message?: string };
        if (message.type === 'pty_connected') entry.ptyAt ??= performance.now();
        else if (message.type === 'error' && entry.ptyAt === undefined)
          entry.failure ??= `agent error: ${message.message ?? ''}`;
        wake(entry);
      };
      await pc.setLocalDescription(await pc.createOffer());
      entry.offerAt = performance.now();
      return pc.localDescription!.sdp;
    },
    async answer(id, sdp) {
      await get(id).pc.setRemoteDescription({ type: 'answer', sdp });
    },
    async candidate(id, candidate, mid) {
      await get(id).pc.addIceCandidate({ candidate, sdpMid: mid });
    },
    ptyConnected(id, timeoutMs) {
      const entry = get(id);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no pty_connected within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const check = () => {
          if (entry.ptyAt !== undefined) {
            clearTimeout(timer);
            resolve({
              connectedMs: (entry.connectedAt ?? entry.ptyAt) - entry.offerAt,
              readyMs: entry.ptyAt - entry.offerAt,
            });
          } else if (entry.failure) {
            clearTimeout(timer);
            reject(new Error(entry.failure));
          } else entry.waiters.push(check);
        };
        check();
      });
    },
    close(id) {
      const entry = sessions.get(id);
      sessions.delete(id);
      if (!entry) return;
      if (entry.dc.readyState === 'open') entry.dc.send(JSON.stringify({ type: 'close' }));
      entry.pc.close();
    },
  };
}

export class ChromiumBrowser {
  readonly #session: ChromiumSession;
  readonly #page: Page;
  readonly #cloud: BenchCloud;
  /** Candidates the page produced before its session's offer was sent, by session. */
  readonly #early = new Map<string, Array<[string, string]>>();
  readonly #offered = new Set<string>();

  private constructor(session: ChromiumSession, page: Page, cloud: BenchCloud) {
    this.#session = session;
    this.#page = page;
    this.#cloud = cloud;
  }

  static async launch(cloud: BenchCloud): Promise<ChromiumBrowser> {
    const session = await launchChromium({ origin: cloud.url });
    try {
      const page = await session.context.newPage();
      const browser = new ChromiumBrowser(session, page, cloud);
      await page.exposeFunction('tgCandidate', (id: string, candidate: string, mid: string) =>
        browser.#onCandidate(id, candidate, mid),
      );
      await page.goto(cloud.url);
      await page.evaluate(installPageApi);
      return browser;
    } catch (err) {
      await session.close();
      throw err;
    }
  }

  /** Sets up one session into `device`; resolves with its timings, measured in the page. */
  async setup(sessionId: string, device: string, timeoutMs: number): Promise<SetupTimes> {
    const page = this.#page;
    const offer = await page.evaluate(
      (id) => (globalThis as unknown as PageGlobals).tgBench.offer(id),
      sessionId,
    );
    this.#cloud.onIce(sessionId, (ice) => {
      void page
        .evaluate(([id, c, mid]) => (globalThis as unknown as PageGlobals).tgBench.candidate(id, c, mid), [
          sessionId,
          ice.candidate,
          ice.sdp_mid ?? '0',
        ] as const)
        .catch(() => undefined);
    });
    // The offer is emitted by this call, before the candidates that waited for it.
    const answered = this.#cloud.offer(sessionId, device, offer);
    this.#offered.add(sessionId);
    for (const [candidate, mid] of this.#early.get(sessionId) ?? [])
      this.#cloud.sendIce(sessionId, candidate, mid);
    this.#early.delete(sessionId);
    const { sdp } = await answered;
    await page.evaluate(([id, answer]) => (globalThis as unknown as PageGlobals).tgBench.answer(id, answer), [
      sessionId,
      sdp,
    ] as const);
    return page.evaluate(([id, ms]) => (globalThis as unknown as PageGlobals).tgBench.ptyConnected(id, ms), [
      sessionId,
      timeoutMs,
    ] as const);
  }

  /** Ends a session from the browser's side: `close` on the channel, then the peer. */
  async close(sessionId: string): Promise<void> {
    this.#cloud.offIce(sessionId);
    this.#offered.delete(sessionId);
    await this.#page
      .evaluate((id) => (globalThis as unknown as PageGlobals).tgBench.close(id), sessionId)
      .catch(() => undefined);
  }

  /** Closes the browser. Idempotent. */
  shutdown(): Promise<void> {
    return this.#session.close();
  }

  #onCandidate(sessionId: string, candidate: string, mid: string): void {
    if (this.#offered.has(sessionId)) {
      this.#cloud.sendIce(sessionId, candidate, mid);
      return;
    }
    const early = this.#early.get(sessionId) ?? [];
    early.push([candidate, mid]);
    this.#early.set(sessionId, early);
  }
}
