/**
 * The bench parent's handle on one load process: forks it, relays its signaling to the bench cloud and
 * the agent's candidates back, and keeps the offer timings the cloud measured for its sessions.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Encoding } from '../../common/protocol/terminal-messages.js';
import type { BenchCloud, OfferTiming } from '../cloud.js';
import { IpcChannel, type RequestLimit } from '../ipc.js';
import type { BrowserSetup } from './BenchPeer.js';
import type { OfferRequest, RemoteCandidate } from './protocol.js';

const SCRIPT = fileURLToPath(new URL('./load-process.js', import.meta.url));
const LOG_KEEP = 16 * 1024;

export interface LoadProcessOptions {
  /** Needed for termgate sessions; a baseline-only process has none. */
  cloud?: BenchCloud;
  encoding?: Encoding;
  /** The DTLS role the simulated browsers offer (see BenchPeer). */
  browserSetup?: BrowserSetup;
  dockerSocket?: string;
}

export class LoadProcess {
  readonly child: ChildProcess;
  readonly ipc: IpcChannel;
  readonly offers = new Map<string, OfferTiming>();
  #log = '';

  private constructor(options: LoadProcessOptions) {
    this.child = fork(SCRIPT, [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...process.env,
        TERMGATE_BENCH_ENCODING: options.encoding ?? 'msgpack',
        TERMGATE_BENCH_BROWSER_SETUP: options.browserSetup ?? 'actpass',
        TERMGATE_BENCH_DOCKER_SOCKET: options.dockerSocket ?? '/var/run/docker.sock',
      },
    });
    const keep = (d: Buffer) => (this.#log = (this.#log + d.toString()).slice(-LOG_KEEP));
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.ipc = new IpcChannel(this.child);
    const cloud = options.cloud;
    this.ipc.handle<OfferRequest, string>('offer', async ({ sessionId, device, sdp }) => {
      if (!cloud) throw new Error('this load process has no cloud');
      cloud.onIce(sessionId, (ice) =>
        this.ipc.notify('remote-candidate', {
          sessionId,
          candidate: ice.candidate,
          mid: ice.sdp_mid,
        } satisfies RemoteCandidate),
      );
      const answer = await cloud.offer(sessionId, device, sdp);
      this.offers.set(sessionId, { offerAt: answer.offerAt, answerAt: answer.answerAt });
      return answer.sdp;
    });
    this.ipc.on<RemoteCandidate>('candidate', (c) => cloud?.sendIce(c.sessionId, c.candidate, c.mid));
  }

  static async start(options: LoadProcessOptions = {}): Promise<LoadProcess> {
    const load = new LoadProcess(options);
    const up = new Promise<void>((resolve) => load.ipc.on('up', () => resolve()));
    const exited = once(load.child, 'exit').then(() => {
      throw new Error(`load process exited at start:\n${load.#log}`);
    });
    await Promise.race([up, exited]);
    return load;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get log(): string {
    return this.#log;
  }

  request<R>(method: string, params: unknown = {}, limit?: RequestLimit): Promise<R> {
    return this.ipc.request<R>(method, params, limit);
  }

  /** Closes its sessions, cleans up the native addon, and waits for the exit (killed if it hangs). */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exit = once(this.child, 'exit');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      await this.request('shutdown', {}, timeoutMs).catch(() => undefined);
      await exit;
    } finally {
      clearTimeout(timer);
      this.ipc.close();
    }
  }
}
