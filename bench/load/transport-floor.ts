/**
 * The transport's own cost, measured in the same run as the agent: a bare node-datachannel pair on
 * loopback, one peer per process, nothing else in either. What it costs the answering process is a floor
 * under what the agent can cost for the same work, since the agent does that work and more.
 *
 * - `send`: the answerer sends N bytes in M-byte messages at a given rate (the rate the agent reached,
 *   in the size of message it sends) and the floor is its CPU per MB: SCTP, DTLS, `sendto`, the SACKs
 *   that come back, and the JavaScript calls that drive them.
 * - `setup`: K connections opened one after another (offer, answer, trickled candidates, ICE, DTLS,
 *   SCTP, the `terminal` channel open) and closed; the floor is the answerer's CPU per setup.
 *
 * The bench forks this file as the measured process (`transportFloor`), which forks its offering peer.
 * CPU is the measured process's own (all its threads, libdatachannel's included), as the agent's is.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import nodeDataChannel from 'node-datachannel';
import { IpcChannel, reportProgress } from '../ipc.js';

type PeerConnection = InstanceType<typeof nodeDataChannel.PeerConnection>;
type DataChannel = ReturnType<PeerConnection['createDataChannel']>;

export type FloorRequest =
  | { kind: 'send'; bytes: number; messageBytes: number; mbPerSecond: number }
  | { kind: 'setup'; setups: number };

export interface FloorResult {
  /** CPU of the measured process per MB sent (`send`) or per setup (`setup`), ms. */
  cpuMs: number;
  /** MB/s reached (`send`), or setups per second of connecting time (`setup`). */
  rate: number;
}

const SCRIPT = fileURLToPath(import.meta.url);
/** Connections opened before the measured ones: the first ones pay for loading and warming up. */
const WARM_SETUPS = 3;
/** The agent's high-water mark on a channel's send buffer: the floor waits at the same point. */
const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Runs one measurement in a process of its own; bounded by progress, as the bench's transfers are: it
 * fails only when the process has reported no progress for `stallMs`.
 */
export async function transportFloor(request: FloorRequest, stallMs = 60_000): Promise<FloorResult> {
  const child = fork(SCRIPT, ['measured'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ipc = new IpcChannel(child);
  try {
    return await ipc.request<FloorResult>('measure', request, { stallMs });
  } finally {
    ipc.close();
    child.kill();
  }
}

const CONFIG = { iceServers: [], bindAddress: '127.0.0.1' };
/** Native channels must stay referenced while open: a collected one is reset under the sender. */
const held = new Set<DataChannel | PeerConnection>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Candidates that came before the remote description, added once it is set. */
class CandidateQueue {
  #pc: PeerConnection | undefined;
  #pending: Array<[string, string]> = [];

  add(candidate: string, mid: string): void {
    if (this.#pc) this.#pc.addRemoteCandidate(candidate, mid);
    else this.#pending.push([candidate, mid]);
  }

  ready(pc: PeerConnection): void {
    this.#pc = pc;
    for (const [candidate, mid] of this.#pending.splice(0)) pc.addRemoteCandidate(candidate, mid);
  }
}

/** The offering side, in its own process: offers the `terminal` channel and counts what arrives on it. */
function runPeer(): void {
  const ipc = new IpcChannel(process);
  let pc: PeerConnection | undefined;
  let candidates = new CandidateQueue();
  let unsent: Array<{ candidate: string; mid: string }> | undefined;
  let expected = 0;
  let received = 0;
  ipc.handle('offer', () => {
    candidates = new CandidateQueue();
    const peer = new nodeDataChannel.PeerConnection('floor-offerer', CONFIG);
    pc = peer;
    // Sent once the answer is applied, as the bench's simulated browsers do by default: an answerer
    // reached before then can lose the first DTLS flight to a 1 s retransmit (bench/load/offerer-race.ts).
    unsent = [];
    peer.onLocalCandidate((candidate, mid) => {
      if (unsent) unsent.push({ candidate, mid });
      else ipc.notify('candidate', { candidate, mid });
    });
    const offered = new Promise<string>((resolve) => peer.onLocalDescription((sdp) => resolve(sdp)));
    const dc = peer.createDataChannel('terminal');
    held.add(peer).add(dc);
    dc.onMessage((message) => {
      received += typeof message === 'string' ? message.length : message.byteLength;
      if (expected > 0 && received >= expected) {
        ipc.notify('received', { bytes: received });
        expected = 0;
      }
    });
    return offered;
  });
  ipc.on<{ sdp: string }>('answer', ({ sdp }) => {
    pc!.setRemoteDescription(sdp, 'answer');
    candidates.ready(pc!);
    for (const candidate of unsent ?? []) ipc.notify('candidate', candidate);
    unsent = undefined;
  });
  ipc.on<{ candidate: string; mid: string }>('candidate', ({ candidate, mid }) =>
    candidates.add(candidate, mid),
  );
  ipc.handle<{ bytes: number }, void>('expect', ({ bytes }) => {
    received = 0;
    expected = bytes;
  });
  ipc.handle('close', () => {
    held.clear();
    pc?.close();
    pc = undefined;
  });
  process.once('disconnect', () => process.exit(0));
}

/** The answering side, measured: what the agent's worker does for a browser, and nothing else. */
class Answerer {
  readonly #peer: IpcChannel;
  #candidates = new CandidateQueue();
  #pc: PeerConnection | undefined;
  #received: (() => void) | undefined;
  /** Bytes sent and connections opened so far: what the bench hears as progress. */
  progress = 0;

  constructor(peer: IpcChannel) {
    this.#peer = peer;
    peer.on<{ candidate: string; mid: string }>('candidate', ({ candidate, mid }) =>
      this.#candidates.add(candidate, mid),
    );
    peer.on('received', () => this.#received?.());
  }

  /** One connection, offered by the peer, up to its channel open on this side. */
  async connect(): Promise<DataChannel> {
    this.#candidates = new CandidateQueue();
    const offer = await this.#peer.request<string>('offer');
    const pc = new nodeDataChannel.PeerConnection('floor-answerer', CONFIG);
    this.#pc = pc;
    held.add(pc);
    pc.onLocalCandidate((candidate, mid) => this.#peer.notify('candidate', { candidate, mid }));
    pc.onLocalDescription((sdp) => this.#peer.notify('answer', { sdp }));
    const open = new Promise<DataChannel>((resolve) =>
      pc.onDataChannel((dc) => {
        held.add(dc);
        if (dc.isOpen()) resolve(dc);
        else dc.onOpen(() => resolve(dc));
      }),
    );
    pc.setRemoteDescription(offer, 'offer');
    this.#candidates.ready(pc);
    return open;
  }

  /** The browser's side closes first, as a page does; then this side. */
  async close(): Promise<void> {
    await this.#peer.request('close');
    held.clear();
    this.#pc?.close();
    this.#pc = undefined;
  }

  async send({
    bytes,
    messageBytes,
    mbPerSecond,
  }: Extract<FloorRequest, { kind: 'send' }>): Promise<FloorResult> {
    const dc = await this.connect();
    await this.#peer.request('expect', { bytes });
    const received = new Promise<void>((resolve) => (this.#received = resolve));
    const message = Buffer.alloc(messageBytes, 'y');
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    for (let sent = 0; sent < bytes; sent += messageBytes) {
      // Paced to the agent's rate: the floor is for the same bytes per second, not the most it can do.
      const due = started + (sent / (mbPerSecond * 1e6)) * 1000;
      const early = due - performance.now();
      if (early > 0) await sleep(early);
      while (dc.bufferedAmount() > HIGH_WATER_BYTES) await sleep(1);
      const piece = message.subarray(0, Math.min(messageBytes, bytes - sent));
      dc.sendMessageBinary(piece);
      this.progress += piece.length;
    }
    await received;
    const seconds = (performance.now() - started) / 1000;
    const cpuMs = cpuSince(cpu0);
    await this.close();
    return { cpuMs: cpuMs / (bytes / 1e6), rate: bytes / 1e6 / seconds };
  }

  async setup({ setups }: Extract<FloorRequest, { kind: 'setup' }>): Promise<FloorResult> {
    for (let i = 0; i < WARM_SETUPS; i++) {
      await this.connect();
      await this.close();
    }
    // As the bench counts the agent's: from the offer until the channel is open, not the close.
    let cpuMs = 0;
    let connectingMs = 0;
    for (let i = 0; i < setups; i++) {
      const cpu0 = process.cpuUsage();
      const started = performance.now();
      await this.connect();
      cpuMs += cpuSince(cpu0);
      this.progress++;
      connectingMs += performance.now() - started;
      await this.close();
    }
    return { cpuMs: cpuMs / setups, rate: setups / (connectingMs / 1000) };
  }
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000;
}

function runMeasured(): void {
  const child = fork(SCRIPT, ['peer'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const answerer = new Answerer(new IpcChannel(child));
  const bench = new IpcChannel(process);
  bench.handle<FloorRequest, Promise<FloorResult>>('measure', (request) =>
    request.kind === 'send' ? answerer.send(request) : answerer.setup(request),
  );
  // The bench's request fails only when this goes quiet, however long a slow machine takes in all.
  reportProgress(bench, () => answerer.progress);
  process.once('disconnect', () => {
    child.kill();
    process.exit(0);
  });
}

if (process.argv[1] === SCRIPT) {
  if (process.argv[2] === 'peer') runPeer();
  else if (process.argv[2] === 'measured') runMeasured();
}
