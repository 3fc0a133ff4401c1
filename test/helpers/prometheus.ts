/**
 * A real Prometheus server for tests (Debian's binary: `bash scripts/prometheus-up.sh`), on 127.0.0.1
 * with a temporary config and data directory, scraping the given targets every second.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './metrics.js';

/** $TERMGATE_PROMETHEUS, Debian's package, or the binary scripts/prometheus-up.sh put in .tools/. */
export const PROMETHEUS_BIN =
  process.env.TERMGATE_PROMETHEUS ??
  [
    '/usr/bin/prometheus',
    fileURLToPath(new URL('../../../.tools/prometheus/prometheus', import.meta.url)),
  ].find((p) => existsSync(p)) ??
  '/usr/bin/prometheus';

export interface QueryResult {
  status: number;
  body: {
    status: 'success' | 'error';
    errorType?: string;
    error?: string;
    data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
}

export class PrometheusServer {
  readonly url: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  #log = '';

  private constructor(child: ChildProcess, dir: string, url: string) {
    this.#child = child;
    this.#dir = dir;
    this.url = url;
    child.stdout!.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.#log += d.toString()));
  }

  /** Starts Prometheus scraping `targets` (host:port) as job `termgate`; resolves once it is ready. */
  static async start(targets: string[], timeoutMs = 30_000): Promise<PrometheusServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'termgate-prom-'));
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: termgate',
      '    static_configs:',
      `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
      '',
    ].join('\n');
    await writeFile(path.join(dir, 'prometheus.yml'), config);
    const port = await freePort();
    const child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = new PrometheusServer(child, dir, `http://127.0.0.1:${port}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited:\n${server.#log}`);
      try {
        if ((await fetch(`${server.url}/-/ready`, { signal: AbortSignal.timeout(2_000) })).status === 200)
          return server;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await server.close();
        throw new Error(`prometheus was not ready in time:\n${server.#log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get log(): string {
    return this.#log;
  }

  /** An instant query through the HTTP API; a PromQL parse error comes back as status 400. */
  async query(promql: string): Promise<QueryResult> {
    const res = await fetch(`${this.url}/api/v1/query?${new URLSearchParams({ query: promql }).toString()}`, {
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as QueryResult['body'] };
  }

  /** Queries until `check` holds on a successful result (it may throw until then). */
  async queryUntil(
    promql: string,
    check: (r: QueryResult) => void,
    timeoutMs = 30_000,
  ): Promise<QueryResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.query(promql);
      try {
        check(r);
        return r;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** Stops the server and removes its directory. */
  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
      await once(this.#child, 'exit');
      clearTimeout(timer);
    }
    await rm(this.#dir, { recursive: true, force: true });
  }
}
