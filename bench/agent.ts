/**
 * The agent under test: the built `termgate agent` executable in its own process, pointed at the bench
 * cloud, plus what the bench reads about it from the outside: RSS, CPU (utime + stime of all its
 * threads), open file descriptors and threads from /proc, and the main thread's event-loop delay from
 * its Prometheus endpoint when it exposes one (null otherwise).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
/**
 * Node flags for the agent's process (e.g. `--cpu-prof`), as a JSON array: set by the bench CLI's
 * `--agent-node-arg`, and read from the environment so that a scenario run in a child process sees it.
 */
export const AGENT_NODE_ARGS_ENV = 'TERMGATE_BENCH_AGENT_NODE_ARGS';

function agentNodeArgs(): string[] {
  const raw = process.env[AGENT_NODE_ARGS_ENV];
  return raw ? (JSON.parse(raw) as string[]) : [];
}
const LOG_KEEP = 64 * 1024;

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}
const CLK_TCK = clockTicks();

export interface AgentOptions {
  cloudUrl: string;
  containersGlob: string;
  /** `key=value` a container must also carry (the harness's run label). */
  containerLabel?: string;
  workers: number;
  maxSessions: number;
  /** Flags added after the bench's own, e.g. `['--log-level', 'info']`. */
  extraArgs?: string[];
}

export interface ProcessSample {
  atMs: number;
  rssBytes: number;
  /** User + system CPU of the whole process, all threads. */
  cpuSeconds: number;
  fds: number;
  threads: number;
}

export interface EventLoopDelay {
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** The worst worker thread's p99, when known. */
  workersP99Ms: number | null;
  /** The metric it came from. */
  source: string;
}

/** Reads RSS, CPU, fds and threads of any process from /proc. */
export function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After comm, field 3 (state) is index 0: utime (14) is index 11, stime (15) index 12.
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const threads = Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return {
    atMs: Date.now(),
    rssBytes: rssKb * 1024,
    cpuSeconds,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    threads,
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class AgentUnderTest {
  readonly child: ChildProcess;
  readonly args: string[];
  readonly metricsPort: number;
  #log = '';

  private constructor(args: string[], metricsPort: number) {
    this.args = args;
    this.metricsPort = metricsPort;
    this.child = spawn(process.execPath, [...agentNodeArgs(), CLI, 'agent', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // As the launcher (bin/termgate) starts the agent: glibc's malloc limited to two arenas.
      env: { MALLOC_ARENA_MAX: '2', ...process.env },
    });
    const keep = (d: Buffer) => (this.#log = (this.#log + d.toString()).slice(-LOG_KEEP));
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
  }

  static async start(options: AgentOptions): Promise<AgentUnderTest> {
    const metricsPort = await freePort();
    const perWorker = Math.ceil(options.maxSessions / options.workers);
    const args = [
      '--cloud-url',
      options.cloudUrl,
      '--containers',
      options.containersGlob,
      ...(options.containerLabel ? ['--container-label', options.containerLabel] : []),
      '--bind-address',
      '127.0.0.1',
      '--workers',
      String(options.workers),
      '--sessions-per-worker',
      String(perWorker),
      '--max-sessions',
      String(perWorker * options.workers),
      '--max-sessions-per-container',
      String(options.maxSessions),
      '--offers-per-second',
      '100000',
      '--idle-timeout',
      '3600',
      // The simulated browsers end a session with `close` and drop their peer at once; a close that loses
      // that race must end the session as before, not hold it for a resume the bench never makes.
      '--resume-grace',
      '0',
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
      '--log-level',
      'warn',
      ...(options.extraArgs ?? []),
    ];
    return new AgentUnderTest(args, metricsPort);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get log(): string {
    return this.#log;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  sample(): ProcessSample {
    if (this.exited)
      throw new Error(`the agent exited (${this.child.exitCode ?? this.child.signalCode}):\n${this.#log}`);
    return sampleProcess(this.pid);
  }

  /** Scrapes /metrics; undefined when the agent serves none. */
  async scrape(): Promise<string | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`, {
        signal: AbortSignal.timeout(3000),
      });
      return res.ok ? await res.text() : undefined;
    } catch {
      return undefined;
    }
  }

  /** The main thread's event-loop delay since the previous scrape, or null if no metric carries it. */
  async eventLoopDelay(): Promise<EventLoopDelay | null> {
    const text = await this.scrape();
    return text === undefined ? null : parseEventLoopDelay(text);
  }

  /** SIGTERM (the agent drains), SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<number | string> {
    if (!this.exited) {
      const exit = once(this.child, 'exit');
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      await exit;
      clearTimeout(timer);
    }
    return this.child.exitCode ?? this.child.signalCode ?? 'unknown';
  }
}

interface Sample {
  name: string;
  labels: string;
  value: number;
}

function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) samples.push({ name: m[1]!, labels: m[2] ?? '', value: Number(m[3]) });
  }
  return samples;
}

/**
 * Finds the main thread's event-loop delay in Prometheus text: termgate's
 * `termgate_event_loop_delay_seconds{thread="main",quantile=…}` (a window of a few seconds, the
 * monitor's resolution subtracted), else prom-client's default `nodejs_eventloop_lag_*` (which includes
 * the 10 ms resolution). `workersP99Ms` is the worst worker thread's p99 when the metric has them.
 */
export function parseEventLoopDelay(text: string): EventLoopDelay | null {
  const samples = parseSamples(text).filter((s) => Number.isFinite(s.value));
  const ms = (v: number | undefined) => (v === undefined ? null : v * 1000);
  const own = samples.filter((s) => s.name === 'termgate_event_loop_delay_seconds');
  if (own.length > 0) {
    const main = own.filter((s) => s.labels.includes('thread="main"'));
    const q = (quantile: string) => main.find((s) => s.labels.includes(`quantile="${quantile}"`))?.value;
    const workers = own.filter(
      (s) => /thread="worker/.test(s.labels) && s.labels.includes('quantile="0.99"'),
    );
    return {
      p50Ms: ms(q('0.5')),
      p99Ms: ms(q('0.99')),
      maxMs: ms(q('1')),
      workersP99Ms: workers.length ? Math.max(...workers.map((s) => s.value)) * 1000 : null,
      source: 'termgate_event_loop_delay_seconds',
    };
  }
  const find = (name: string) => samples.find((s) => s.name === name)?.value;
  const p50 = find('nodejs_eventloop_lag_p50_seconds');
  const p99 = find('nodejs_eventloop_lag_p99_seconds');
  if (p50 !== undefined || p99 !== undefined) {
    return {
      p50Ms: ms(p50),
      p99Ms: ms(p99),
      maxMs: ms(find('nodejs_eventloop_lag_max_seconds')),
      workersP99Ms: null,
      source: 'nodejs_eventloop_lag',
    };
  }
  return null;
}
