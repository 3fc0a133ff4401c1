/**
 * The Grafana dashboard against a live agent and a real Prometheus: every panel has a unit and uses the
 * datasource variable, every PromQL expression parses (Prometheus answers 400 to one that does not),
 * names only metrics a live agent exports and returns series for it, and every termgate metric family has
 * a panel. Grafana itself
 * is not installable here (not in Debian), so its provisioning files are checked for what they must say.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { removeContainers, startContainers, uniquePrefix } from './helpers/containers.js';
import { freePort, scrape, waitForStatus, type Scrape } from './helpers/metrics.js';
import { PrometheusServer } from './helpers/prometheus.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

const GRAFANA = fileURLToPath(new URL('../../grafana/', import.meta.url));

interface Target {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  datasource?: { uid?: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const PROMQL_FUNCTIONS_OR_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
]);

/**
 * The metric names a PromQL expression reads: what is left once strings, label matchers, ranges,
 * grouping clauses, numbers, function calls and keywords are taken out.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/(^|[^a-zA-Z0-9_:])\d[\w.]*([eE][+-]\d+)?/g, '$1 '); // numbers and durations
  const names: string[] = [];
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = stripped.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after) || PROMQL_FUNCTIONS_OR_KEYWORDS.has(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

function panelsOf(list: Panel[]): Panel[] {
  return list.flatMap((p) => (p.type === 'row' ? panelsOf(p.panels ?? []) : [p]));
}

const prefix = uniquePrefix('graf');
let dashboard: Dashboard;
let cloud: TestCloud | undefined;
let agent: AgentProcess | undefined;
let prometheus: PrometheusServer | undefined;
let containers: string[] = [];
let target: string;
let live: Scrape;

before(
  async () => {
    dashboard = JSON.parse(await readFile(`${GRAFANA}dashboards/termgate.json`, 'utf8')) as Dashboard;
    containers = await startContainers(prefix, 1);
    cloud = await TestCloud.start();
    target = `127.0.0.1:${await freePort()}`;
    agent = AgentProcess.start(cloud.url, [
      '--containers',
      `${prefix}-*`,
      '--workers',
      '2',
      '--metrics-listen',
      target,
    ]);
    await cloud.waitForAgent();
    await waitForStatus(`http://${target}`, '/readyz', 200);
    // A stray ICE candidate for no session, refused, so the refusals panel has a series from the start.
    await cloud.emitRaw('webrtc:ice', {
      session_id: 'no-such-session',
      candidate: 'candidate:1 1 UDP 1 127.0.0.1 9 typ host',
    });
    prometheus = await PrometheusServer.start([target]);
    // Some traffic, so rates and histograms have something to show.
    const browser = await BrowserPeer.open(cloud, { device: containers[0]! });
    browser.type('echo dash-$((2+3))\n');
    await browser.waitForScreen('dash-5');
    browser.close();
    live = await scrape(`http://${target}`);
    // The GC panel reads a histogram that prom-client fills at the main thread's first garbage
    // collection; every scrape allocates there, so scrape until one has happened.
    for (let scrapes = 1; !live.names().has('nodejs_gc_duration_seconds_count'); scrapes++) {
      assert.ok(scrapes < 5000, `no garbage collection in the agent's main thread after ${scrapes} scrapes`);
      live = await scrape(`http://${target}`);
    }
  },
  { timeout: 120_000 },
);

onTeardown(async () => {
  await prometheus?.close();
  await agent?.stop();
  await cloud?.close();
  await removeContainers(containers);
});

/** Grafana's variables as a test instance: this agent for $host, a fixed interval for the rate window. */
function substitute(expr: string): string {
  return expr
    .replace(/\$\{?__rate_interval\}?/g, '1m')
    .replace(/\$\{?__interval\}?/g, '15s')
    .replace(/\$\{?__range\}?/g, '1h')
    .replace(/\$\{host(?::\w+)?\}|\$host\b|\[\[host\]\]/g, target.replace(/\./g, '\\\\.'));
}

describe('grafana dashboard', () => {
  it('has a datasource variable and a host variable', () => {
    assert.equal(dashboard.uid, 'termgate-agent');
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    assert.equal(vars.get('datasource')?.type, 'datasource');
    assert.equal(vars.get('datasource')?.query, 'prometheus');
    const host = vars.get('host');
    assert.equal(host?.type, 'query');
    assert.equal(host.datasource?.uid, '${datasource}');
    const query = typeof host.query === 'string' ? host.query : host.query.query;
    const m = /^label_values\((\w+), instance\)$/.exec(query);
    assert.ok(m, query);
    assert.ok(live.names().has(m[1]!), `the host variable reads ${m[1]}, which the agent exports`);
  });

  it('gives every panel the datasource variable, a unit and at least one query', () => {
    const panels = panelsOf(dashboard.panels);
    assert.ok(panels.length >= 15, `${panels.length} panels`);
    for (const p of panels) {
      assert.equal(p.datasource?.uid, '${datasource}', p.title);
      assert.ok(p.fieldConfig?.defaults?.unit, `panel "${p.title}" has no unit`);
      assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has no query`);
      for (const t of p.targets!) {
        assert.equal(t.datasource?.uid, '${datasource}', `${p.title} ${t.refId}`);
        assert.match(t.expr, /instance=~"\$host"/, `${p.title} ${t.refId} does not filter on $host`);
      }
    }
  });

  it(
    'has only expressions that Prometheus parses, that name metrics the agent exports, and that return series',
    { timeout: 120_000 },
    async () => {
      // Two scrapes at least since every series exists, so every rate() has its two samples.
      await prometheus!.queryUntil(
        `count_over_time(nodejs_gc_duration_seconds_count{instance="${target}"}[1m])`,
        (r) => assert.ok(Number(r.body.data?.result[0]?.value[1] ?? 0) >= 3),
      );
      const exported = live.declaredNames();
      const empty: string[] = [];
      for (const p of panelsOf(dashboard.panels)) {
        for (const target of p.targets ?? []) {
          const expr = substitute(target.expr);
          assert.doesNotMatch(expr, /\$/, `unsubstituted variable in "${p.title}": ${expr}`);
          const r = await prometheus!.query(expr);
          assert.equal(r.status, 200, `"${p.title}" ${target.refId}: ${expr}\n${r.body.error ?? ''}`);
          assert.equal(r.body.status, 'success');
          const names = metricNames(target.expr);
          assert.ok(names.length > 0, `no metric found in ${target.expr}`);
          for (const name of names)
            assert.ok(exported.has(name), `"${p.title}" reads ${name}, which the agent does not export`);
          if ((r.body.data?.result ?? []).length === 0) empty.push(`${p.title} ${target.refId}`);
        }
      }
      // A query with no series draws an empty panel: either it is wrong or the traffic above does not
      // reach what it counts. Both are failures.
      assert.deepEqual(empty, [], 'panels whose queries return no series');
    },
  );

  it('has a panel for every termgate metric family and the main process metrics', () => {
    const used = new Set(
      panelsOf(dashboard.panels).flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))),
    );
    const families = [...live.types.keys()].filter((n) => n.startsWith('termgate_'));
    assert.equal(families.length, 31, families.join(' '));
    for (const family of families) {
      const series = live.types.get(family) === 'histogram' ? `${family}_bucket` : family;
      assert.ok(used.has(series), `no panel reads ${series}`);
    }
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.ok(used.has(name), `no panel reads ${name}`);
    }
  });

  it('finds metric names in PromQL the way the checks above rely on', () => {
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket{x=~"y"}[5m])))'), [
      'a_bucket',
    ]);
    assert.deepEqual(metricNames('sum(b{q="1"}) / sum(c) by (instance) > 1e3'), ['b', 'c']);
    assert.deepEqual(metricNames('max by (thread) (d{quantile="0.99"}) and on (x) e offset 5m'), ['d', 'e']);
  });

  it('provisions a Prometheus datasource and a file provider for the dashboards folder', async () => {
    const ds = await readFile(`${GRAFANA}provisioning/datasources/prometheus.yaml`, 'utf8');
    assert.match(ds, /^apiVersion: 1$/m);
    assert.match(ds, /^\s+type: prometheus$/m);
    assert.match(ds, /^\s+url: http:\/\/127\.0\.0\.1:9090$/m);
    const provider = await readFile(`${GRAFANA}provisioning/dashboards/termgate.yaml`, 'utf8');
    assert.match(provider, /^apiVersion: 1$/m);
    assert.match(provider, /^\s+type: file$/m);
    assert.match(provider, /^\s+path: \$\{GF_PATHS_PROVISIONING\}\/\.\.\/dashboards$/m);
  });
});
