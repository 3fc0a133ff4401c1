/**
 * Everything a scenario runs against, started in order and torn down in reverse even when the run
 * fails: containers, the bench cloud, the agent under test, the load processes (simulated browsers)
 * and one baseline process (direct execs). Also the helpers every scenario uses: open N sessions at
 * concurrency C on either side, with their timings.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { AgentUnderTest } from './agent.js';
import { BenchCloud } from './cloud.js';
import { LoadProcess } from './load/LoadProcess.js';
import type { BrowserSetup } from './load/BenchPeer.js';
import type { OpenParams, OpenResult, TerminalKind } from './load/protocol.js';
import { newRunId, ownedSleeperRunArgs, RUN_LABEL } from '../standin/ownership.js';
import type { Encoding } from '../common/protocol/terminal-messages.js';

const run = promisify(execFile);

export const BENCH_IMAGE = process.env.TERMGATE_TEST_IMAGE ?? 'vplc-test:latest';

/** Options every scenario takes. */
export interface CommonOptions {
  /** Agent worker threads. */
  workers: number;
  /** Small sizes, a few seconds: what the test suite runs. */
  quick: boolean;
  /** Show a progress bar on stderr. */
  progress: boolean;
  encoding: Encoding;
  /** The DTLS role the simulated browsers offer; default `active` (see BenchPeer). */
  browserSetup?: BrowserSetup;
  /** Extra flags for the agent. */
  agentArgs: string[];
  /** Where the JSON result goes. */
  outDir?: string;
}

export interface HarnessOptions {
  workers: number;
  containers: number;
  /** Sessions the agent must admit at once. */
  maxSessions: number;
  loadProcesses: number;
  encoding: Encoding;
  browserSetup?: BrowserSetup;
  agentArgs: string[];
}

export interface OpenedSession {
  id: string;
  ok: boolean;
  /** Where the session lives. */
  load: LoadProcess;
  /** termgate: offer emitted → answer acked. Baseline: exec create call → created. */
  answerMs: number | undefined;
  /** termgate: offer emitted → `pty_connected`. Baseline: exec create call → started and resized. */
  readyMs: number | undefined;
  /** termgate only: offer emitted → peer connected (ICE + DTLS) and → `ready` (channel open). */
  connectedMs?: number;
  channelMs?: number;
  /** termgate only: the first try failed on the simulated browser's side and a second one made it. */
  retried?: boolean;
  error?: string;
}

/** How a termgate session's simulated browser speaks, when not as the load process was started. */
export interface OpenOptions {
  encoding?: Encoding;
  setup?: BrowserSetup;
}

const active = new Set<BenchHarness>();

/**
 * Room in the agent's limits for setups a load process tries again: the failed first try keeps its slot
 * until the agent's setup timeout (30 s), so a scenario sized to the limit would refuse the second try.
 */
function retryRoom(sessions: number): number {
  return Math.ceil(sessions * 0.1) + 2;
}

/** Tears down every running harness (the CLI calls it on SIGINT). */
export async function closeAllHarnesses(): Promise<void> {
  await Promise.all([...active].map((h) => h.close()));
}

/** Sessions a run set up on one side, and how many of them needed the load process's second try. */
export interface SetupCount {
  setups: number;
  retried: number;
}

export class BenchHarness {
  /** This run's id: in the label of each container it creates, and in the agent's selector. */
  readonly runId = newRunId();
  readonly prefix = `vplc-bench-${this.runId.slice(0, 6)}`;
  /** Every setup of the run, counted where it happens (`openOne`, or a soak loop via `countSetups`). */
  readonly setupCounts: Record<TerminalKind, SetupCount> = {
    termgate: { setups: 0, retried: 0 },
    baseline: { setups: 0, retried: 0 },
  };
  containers: string[] = [];
  /** Ids of the containers this harness created: the only ones it removes. */
  readonly #containerIds: string[] = [];
  cloud: BenchCloud | undefined;
  agent: AgentUnderTest | undefined;
  loads: LoadProcess[] = [];
  baseline: LoadProcess | undefined;
  #seq = 0;
  #closed: Promise<void> | undefined;

  private constructor(readonly options: HarnessOptions) {}

  static async start(options: HarnessOptions): Promise<BenchHarness> {
    const h = new BenchHarness(options);
    active.add(h);
    try {
      await h.#start();
    } catch (err) {
      const log = h.agent?.log ?? '';
      await h.close();
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}${log ? `\nagent log:\n${log}` : ''}`,
      );
    }
    return h;
  }

  async #start(): Promise<void> {
    const o = this.options;
    this.containers = Array.from(
      { length: o.containers },
      (_, i) => `${this.prefix}-${String(i + 1).padStart(3, '0')}`,
    );
    const created = await Promise.allSettled(
      this.containers.map(async (name) => {
        const { stdout } = await run('docker', ownedSleeperRunArgs(name, BENCH_IMAGE, this.runId, 'bench'));
        this.#containerIds.push(stdout.trim());
      }),
    );
    const failed = created.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    this.cloud = await BenchCloud.start();
    this.agent = await AgentUnderTest.start({
      cloudUrl: this.cloud.url,
      containersGlob: `${this.prefix}-*`,
      containerLabel: `${RUN_LABEL}=${this.runId}`,
      workers: o.workers,
      maxSessions: o.maxSessions + retryRoom(o.maxSessions),
      extraArgs: o.agentArgs,
    });
    await this.cloud.waitForAgent();
    const cloud = this.cloud;
    this.loads = await Promise.all(
      Array.from({ length: o.loadProcesses }, () =>
        LoadProcess.start({ cloud, encoding: o.encoding, browserSetup: o.browserSetup }),
      ),
    );
    this.baseline = await LoadProcess.start({});
  }

  /** Opens `count` sessions on `kind`'s side, `concurrency` at a time, spread over the containers. */
  async open(
    kind: TerminalKind,
    count: number,
    concurrency: number,
    bar?: ProgressBar,
    options: OpenOptions = {},
  ): Promise<{ sessions: OpenedSession[]; wallMs: number }> {
    const sessions: OpenedSession[] = [];
    const start = performance.now();
    let next = 0;
    const lane = async () => {
      while (next < count) {
        const i = next++;
        sessions.push(await this.openOne(kind, i, options));
        bar?.increment();
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, () => lane()));
    return { sessions, wallMs: performance.now() - start };
  }

  async openOne(kind: TerminalKind, index = this.#seq, options: OpenOptions = {}): Promise<OpenedSession> {
    const id = `${kind === 'baseline' ? 'b' : 's'}-${this.prefix}-${this.#seq++}`;
    const device = this.containers[index % this.containers.length]!;
    const load = kind === 'baseline' ? this.baseline! : this.loads[index % this.loads.length]!;
    const params: OpenParams = { id, kind, device, timeoutMs: 30_000, ...options };
    const result = await load.request<OpenResult>('open', params, 60_000);
    this.countSetups(kind, 1, result.ok && result.retriedAs !== undefined ? 1 : 0);
    if (!result.ok) {
      load.offers.delete(id);
      return { id, ok: false, load, answerMs: undefined, readyMs: undefined, error: result.error };
    }
    if (kind === 'baseline') {
      return {
        id,
        ok: true,
        load,
        answerMs: result.createdAt! - result.startedAt,
        readyMs: result.readyAt - result.startedAt,
      };
    }
    // After a retry the setup is timed from the first offer: the failed try is part of the wait.
    const offer = load.offers.get(id);
    const answered = result.retriedAs ? load.offers.get(result.retriedAs) : offer;
    load.offers.delete(id);
    if (result.retriedAs) load.offers.delete(result.retriedAs);
    return {
      id,
      ok: true,
      load,
      retried: result.retriedAs !== undefined,
      answerMs: answered ? answered.answerAt - answered.offerAt : undefined,
      readyMs: offer ? result.readyAt - offer.offerAt : undefined,
      connectedMs: offer && result.connectedAt ? result.connectedAt - offer.offerAt : undefined,
      channelMs: offer && result.channelAt ? result.channelAt - offer.offerAt : undefined,
    };
  }

  /** Adds setups made elsewhere (a load process's soak loop) to the run's count. */
  countSetups(kind: TerminalKind, setups: number, retried: number): void {
    this.setupCounts[kind].setups += setups;
    this.setupCounts[kind].retried += retried;
  }

  /** Closes sessions and waits until the agent reports none (termgate side). */
  async closeSessions(sessions: OpenedSession[]): Promise<void> {
    await Promise.all(sessions.filter((s) => s.ok).map((s) => s.load.request('close', { id: s.id })));
  }

  /** Idempotent; never throws. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const loads = this.baseline ? [...this.loads, this.baseline] : this.loads;
    await Promise.all(loads.map((l) => l.stop().catch(() => undefined)));
    await this.agent?.stop().catch(() => undefined);
    await this.cloud?.close().catch(() => undefined);
    if (this.#containerIds.length > 0)
      await run('docker', ['rm', '-f', ...this.#containerIds]).catch(() => undefined);
    active.delete(this);
  }
}

/** A progress bar on stderr, or nothing. */
export type ProgressBar = Pick<SingleBar, 'increment' | 'update' | 'stop'>;

export function progressBar(enabled: boolean, label: string, total: number): ProgressBar | undefined {
  if (!enabled) return undefined;
  const bar = new SingleBar(
    {
      format: `${label.padEnd(28)} [{bar}] {value}/{total} {duration_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}
