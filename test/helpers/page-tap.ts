/**
 * The termgate page as the TURN tests drive it, in Chromium (Playwright) or Firefox (Puppeteer): a tap on
 * the page's `terminal` channel (installed before the page's own script runs) that times setup and echoes
 * and keeps what the agent sent, so a test can measure and check byte-exact what crossed the relay, while
 * the page itself works as always. The page must run in JSON mode (`?encoding=json`): the tap reads
 * messages as JSON. Every wait polls inside the page, so both drivers' pages fit `TapPage` as they are.
 */
import { untilProgress } from './progress.js';
import type { TerminalPage } from './terminal-page.js';

/** What the tap needs of a page beyond `TerminalPage`; Playwright's and Puppeteer's pages have it. */
export interface TapPage extends TerminalPage {
  evaluate<R>(fn: () => R | Promise<R>): Promise<R>;
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
  keyboard: {
    type(text: string): Promise<void>;
    press(key: string): Promise<void>;
    down(key: string): Promise<void>;
    up(key: string): Promise<void>;
  };
}

/** How each driver runs a script in every new document before the page's own. */
export type InitScriptPage =
  | { addInitScript(script: () => void): Promise<unknown> }
  | { evaluateOnNewDocument(script: () => void): Promise<unknown> };

/** What the tap keeps in the page. */
interface Tap {
  /** performance.now() when the channel was created, and when `pty_connected` came. */
  createdAt: number;
  ptyAt: number;
  /** When the last `input` went out, until the next output; each such round trip in `echoes`. */
  sentAt: number;
  echoes: number[];
  /** Output kept while `collect` is set; `bytes` counts all output characters. */
  collect: boolean;
  chunks: string[];
  bytes: number;
  tail: string;
  /** The peer connection of the last channel, for `iceReport` when a session does not connect. */
  pc: unknown;
}

interface TapGlobals {
  __tgTap: Tap;
  RTCPeerConnection: { prototype: { createDataChannel: (this: unknown, ...args: unknown[]) => TapChannel } };
}
interface TapChannel {
  send(data: unknown): void;
  addEventListener(type: 'message', listener: (e: { data: unknown }) => void): void;
}

/** Runs in the page before its scripts (serialized by the driver: it refers to nothing outside). */
function installTap(): void {
  const g = globalThis as unknown as TapGlobals;
  const tap: Tap = {
    createdAt: 0,
    ptyAt: 0,
    sentAt: 0,
    echoes: [],
    collect: false,
    chunks: [],
    bytes: 0,
    tail: '',
    pc: undefined,
  };
  g.__tgTap = tap;
  const proto = g.RTCPeerConnection.prototype;
  const create = proto.createDataChannel;
  proto.createDataChannel = function (this: unknown, ...args: unknown[]) {
    const channel = create.apply(this, args);
    Object.assign(tap, {
      createdAt: performance.now(),
      ptyAt: 0,
      echoes: [],
      chunks: [],
      bytes: 0,
      pc: this,
    });
    const send = channel.send.bind(channel);
    channel.send = (data: unknown) => {
      if (typeof data === 'string' && data.startsWith('{"type":"input"')) tap.sentAt = performance.now();
      send(data);
    };
    channel.addEventListener('message', (e) => {
      if (typeof e.data !== 'string') return;
      const message = JSON.parse(e.data) as { type: string; data?: string };
      if (message.type === 'pty_connected') tap.ptyAt = performance.now();
      if (message.type !== 'output' || message.data === undefined) return;
      if (tap.sentAt > 0) tap.echoes.push(performance.now() - tap.sentAt);
      tap.sentAt = 0;
      if (tap.collect) tap.chunks.push(message.data);
      tap.bytes += message.data.length;
      tap.tail = (tap.tail + message.data).slice(-64);
    });
    return channel;
  };
}

export async function tapTerminal(page: InitScriptPage): Promise<void> {
  if ('addInitScript' in page) await page.addInitScript(installTap);
  else await page.evaluateOnNewDocument(installTap);
}

/**
 * What the page's peer connection says of ICE: its states, then every candidate pair with its state and
 * both candidates' type, protocol and address (the agent's and the browser's, no credentials). One
 * line each, for the message of a session that did not connect.
 */
export async function iceReport(page: TapPage): Promise<string> {
  return page.evaluate(async () => {
    type Stat = Record<string, unknown> & { id: string; type: string };
    type Pc = {
      connectionState: string;
      iceConnectionState: string;
      iceGatheringState: string;
      signalingState: string;
      getStats(): Promise<Map<string, Stat>>;
    };
    const pc = (globalThis as unknown as { __tgTap: { pc?: Pc } }).__tgTap.pc;
    if (!pc) return 'no peer connection was created';
    const stats = [...(await pc.getStats()).values()];
    const byId = new Map(stats.map((s) => [s.id, s]));
    const candidate = (id: unknown) => {
      const c = byId.get(String(id));
      return c
        ? `${String(c.candidateType)}/${String(c.protocol)} ${String(c.address)}:${String(c.port)}`
        : '?';
    };
    const lines = [
      `pc ${pc.connectionState}, ice ${pc.iceConnectionState}, gathering ${pc.iceGatheringState}, signaling ${pc.signalingState}`,
      ...stats
        .filter((s) => s.type === 'local-candidate' || s.type === 'remote-candidate')
        .map((s) => `${s.type} ${candidate(s.id)}`),
      ...stats
        .filter((s) => s.type === 'candidate-pair')
        .map(
          (s) =>
            `pair ${String(s.state)}: ${candidate(s.localCandidateId)} -> ${candidate(s.remoteCandidateId)}`,
        ),
    ];
    return lines.join('\n');
  });
}

/** Channel created → `pty_connected`, in ms of the page's clock. */
export async function setupMs(page: TapPage): Promise<number> {
  return page.evaluate(() => {
    const tap = (globalThis as unknown as { __tgTap: Tap }).__tgTap;
    return tap.ptyAt - tap.createdAt;
  });
}

/**
 * Types `count` characters one at a time, each once the last one's echo came back, and returns the
 * round trips (input sent → first output) measured in the page. Clears the line after.
 */
export async function echoRoundTrips(page: TapPage, count: number): Promise<number[]> {
  await page.evaluate(() => {
    (globalThis as unknown as { __tgTap: Tap }).__tgTap.echoes = [];
  });
  for (let i = 1; i <= count; i++) {
    await page.keyboard.press('x');
    const arrived = await page.evaluate(untilEchoes, { count: i, timeoutMs: ECHO_TIMEOUT_MS });
    if (!arrived) throw new Error(`echo ${i} of ${count} did not come back within ${ECHO_TIMEOUT_MS} ms`);
  }
  const echoes = await page.evaluate(() => (globalThis as unknown as { __tgTap: Tap }).__tgTap.echoes);
  // Ctrl+U clears the line; pressed key by key, the one spelling both drivers understand.
  await page.keyboard.down('Control');
  await page.keyboard.press('u');
  await page.keyboard.up('Control');
  return echoes;
}

const ECHO_TIMEOUT_MS = 10_000;

/** Runs in the page: resolves true once `count` echoes were timed, false after `timeoutMs`. */
function untilEchoes({ count, timeoutMs }: { count: number; timeoutMs: number }): Promise<boolean> {
  const tap = (globalThis as unknown as { __tgTap: Tap }).__tgTap;
  const deadline = performance.now() + timeoutMs;
  return new Promise((resolve) => {
    const check = () => {
      if (tap.echoes.length >= count) resolve(true);
      else if (performance.now() > deadline) resolve(false);
      else setTimeout(check, 2);
    };
    check();
  });
}

export interface BulkResult {
  bytes: number;
  sha256: string;
  mbPerSecond: number;
}

/**
 * Runs `command` in the terminal and collects its output between the markers `start` and `end`
 * (written so that the command's own echo cannot match them), waiting by progress: it fails when no
 * output has arrived for `stallMs`. Returns the length and sha256 of what lay between the markers.
 */
export async function bulkOutput(
  page: TapPage,
  command: string,
  markers: { start: string; end: string },
  stallMs: number,
): Promise<BulkResult> {
  await page.evaluate(() => {
    const tap = (globalThis as unknown as { __tgTap: Tap }).__tgTap;
    Object.assign(tap, { collect: true, chunks: [], tail: '' });
  });
  const started = performance.now();
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
  let tail = '';
  await untilProgress({
    what: 'bulk output through the page',
    stallMs,
    pollMs: 250,
    progress: async () => {
      const now = await page.evaluate(() => {
        const tap = (globalThis as unknown as { __tgTap: Tap }).__tgTap;
        return { bytes: tap.bytes, tail: tap.tail };
      });
      tail = now.tail;
      return now.bytes;
    },
    done: () => tail.includes(markers.end),
  });
  const seconds = (performance.now() - started) / 1000;
  const digest = await page.evaluate(async ({ start, end }) => {
    const tap = (globalThis as unknown as { __tgTap: Tap }).__tgTap;
    const all = tap.chunks.join('');
    tap.collect = false;
    tap.chunks = [];
    const from = all.indexOf(start) + start.length;
    const to = all.lastIndexOf(end);
    if (from < start.length || to < from) return { bytes: -1, sha256: 'markers missing' };
    const body = new TextEncoder().encode(all.slice(from, to));
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
    return { bytes: body.length, sha256: [...hash].map((b) => b.toString(16).padStart(2, '0')).join('') };
  }, markers);
  return { ...digest, mbPerSecond: digest.bytes / 1e6 / seconds };
}
