/**
 * Reading an agent's metrics endpoint in tests: a free loopback port to give `--metrics-listen`, a scrape
 * parsed into samples, and a lookup of one sample by name and exact labels.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';

/** A port free on 127.0.0.1 right now (bound to port 0, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (what prom-client writes: no timestamps, no exemplars). */
export function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const raw = m[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

export class Scrape {
  readonly samples: Sample[];
  readonly types: Map<string, string>;
  readonly text: string;

  constructor(text: string) {
    this.text = text;
    ({ samples: this.samples, types: this.types } = parseExposition(text));
  }

  /** Every sample name (histograms appear as their _bucket, _sum and _count series). */
  names(): Set<string> {
    return new Set(this.samples.map((s) => s.name));
  }

  /**
   * Every series name the exposition declares, with or without samples yet: a family declared by its
   * `# TYPE` line (a histogram as its _bucket, _sum and _count) whose labelled series appear once
   * something happens, e.g. `nodejs_gc_duration_seconds` before the first collection.
   */
  declaredNames(): Set<string> {
    const names = this.names();
    for (const [family, type] of this.types) {
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(family + s);
      else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(family + s);
      else names.add(family);
    }
    return names;
  }

  /** The samples of `name` whose labels include `labels`. */
  series(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
  }

  /** The value of the one sample of `name` with exactly `labels`; throws if there is none. */
  value(name: string, labels: Record<string, string> = {}): number {
    const want = Object.keys(labels).length;
    const found = this.series(name, labels).filter((s) => Object.keys(s.labels).length === want);
    if (found.length !== 1)
      throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
    return found[0]!.value;
  }

  /** Sum of the samples of `name` whose labels include `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.series(name, labels).reduce((a, s) => a + s.value, 0);
  }
}

export async function scrape(base: string): Promise<Scrape> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return new Scrape(await res.text());
}

/** Scrapes until `check` holds (it may throw while it does not), or fails with its last error. */
export async function scrapeUntil(
  base: string,
  check: (s: Scrape) => void,
  timeoutMs = 15_000,
): Promise<Scrape> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await scrape(base);
    try {
      check(s);
      return s;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GETs `path` and returns status and body. */
export async function get(base: string, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** Polls `path` until it answers `status`. */
export async function waitForStatus(
  base: string,
  path: string,
  status: number,
  timeoutMs = 20_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    try {
      const r = await get(base, path);
      if (r.status === status) return r.body;
      last = `${r.status} ${r.body.trim()}`;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw new Error(`${path} did not answer ${status} in time (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
