/**
 * The bench harness in quick mode: every scenario runs end to end against the built agent and the
 * direct-exec baseline, and its report has every field, sane numbers, and ratios computed from the two
 * measured values.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { CommonOptions } from '../bench/harness.js';
import { markdown, percentiles, writeJson, type BenchReport } from '../bench/report.js';
import { runScenario, SCENARIOS, type Scenario } from '../bench/run.js';

const outDir = mkdtempSync(path.join(os.tmpdir(), 'termgate-bench-'));
const common: CommonOptions = { workers: 2, quick: true, progress: false, encoding: 'json', agentArgs: [] };

after(() => rmSync(outDir, { recursive: true, force: true }));

/** Metrics that are latencies or rates: measured, so strictly positive on both sides. */
const POSITIVE: Record<Scenario, RegExp[]> = {
  setup: [/^offer→/, /^sessions per second$/],
  echo: [/^keystroke round trip/],
  throughput: [/MB\/s|^one session/],
  capacity: [/: RSS$/, /: open fds$/],
  soak: [/^cycle/, /^RSS warm base$/, /^open fds base$/],
};

function checkReport(report: BenchReport, scenario: Scenario): void {
  assert.equal(report.scenario, scenario);
  assert.equal(report.quick, true);
  assert.ok(!Number.isNaN(Date.parse(report.date)), 'date is ISO');
  assert.ok(report.durationSeconds > 0);
  assert.equal(report.agent.workers, 2);
  assert.ok(report.agent.args.includes('--workers'));
  assert.ok(report.machine.cpus > 0 && report.machine.node.startsWith('v'));
  assert.ok(report.rows.length > 0);
  for (const r of report.rows) {
    const where = `${scenario} / ${r.metric}`;
    assert.equal(typeof r.metric, 'string');
    assert.equal(typeof r.unit, 'string');
    for (const key of ['termgate', 'baseline', 'ratio'] as const) {
      assert.ok(key in r, `${where}: has ${key}`);
      assert.ok(r[key] === null || Number.isFinite(r[key]), `${where}: ${key} is a finite number or null`);
    }
    if (r.termgate !== null && r.baseline !== null && r.baseline !== 0) {
      assert.equal(r.ratio, r.termgate / r.baseline, `${where}: ratio = termgate / baseline`);
    } else {
      assert.equal(r.ratio, null, `${where}: no ratio without both values`);
    }
    if (POSITIVE[scenario].some((re) => re.test(r.metric))) {
      assert.ok(r.termgate !== null && r.termgate > 0, `${where}: termgate ${r.termgate} > 0`);
      assert.ok(r.baseline !== null && r.baseline > 0, `${where}: baseline ${r.baseline} > 0`);
    }
    if ('met' in r && r.met !== undefined) assert.ok(r.met === null || typeof r.met === 'boolean');
  }
  // Percentile rows come in order p50 ≤ p90 ≤ p99 ≤ max for each side.
  const groups = new Map<string, number[][]>();
  for (const r of report.rows) {
    const m = /^(.*) (p50|p90|p99|max)$/.exec(r.metric);
    if (!m || r.termgate === null || r.baseline === null) continue;
    const g = groups.get(m[1]!) ?? [];
    g.push([r.termgate, r.baseline]);
    groups.set(m[1]!, g);
  }
  for (const [name, values] of groups) {
    for (let i = 1; i < values.length; i++) {
      assert.ok(values[i]![0]! >= values[i - 1]![0]!, `${name}: termgate percentiles ordered`);
      assert.ok(values[i]![1]! >= values[i - 1]![1]!, `${name}: baseline percentiles ordered`);
    }
  }
  const table = markdown(report);
  assert.match(table, /\| metric \| unit \| termgate \| baseline \| ratio \|/);
  assert.equal(
    table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| metric')).length,
    report.rows.length,
  );
  const file = writeJson(report, outDir);
  assert.ok(existsSync(file) && path.basename(file).startsWith(`${scenario}-`));
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), JSON.parse(JSON.stringify(report)));
}

describe('bench report helpers', () => {
  it('percentiles come from a histogram, ordered and bounded by max', () => {
    const samples = Array.from({ length: 1000 }, (_, i) => (i + 1) / 10);
    const p = percentiles(samples);
    assert.equal(p.count, 1000);
    assert.ok(Math.abs(p.p50 - 50) < 0.1 && Math.abs(p.p99 - 99) < 0.1, JSON.stringify(p));
    assert.ok(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.max);
    assert.ok(Math.abs(p.max - 100) < 0.1);
  });
});

describe('bench scenarios, quick mode', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario}: a full report with sane numbers`, { timeout: 180_000 }, async () => {
      const report = await runScenario(scenario, common);
      checkReport(report, scenario);
      if (scenario === 'setup') {
        const failed = report.rows.find((r) => r.metric === 'failed setups');
        // At most one: the simulated browser's libdatachannel occasionally closes its own peer before the
        // answer arrives (about 0.5 % of setups under load; see bench/results/README.md).
        assert.ok(
          failed?.termgate !== undefined && failed.termgate !== null && failed.termgate <= 1,
          'at most one failed setup',
        );
        assert.equal(failed.baseline, 0, 'no failed direct exec');
      }
      if (scenario === 'throughput') {
        const bytes = report.rows.find((r) => r.metric === 'bytes received, one session');
        assert.ok(
          bytes && bytes.termgate! >= 4 && bytes.baseline! >= 4,
          'all the bytes arrived on both sides',
        );
      }
      if (scenario === 'soak') {
        const shells = report.rows.find((r) => r.metric === 'shells left in containers');
        assert.equal(shells?.termgate, 0);
      }
    });
  }
});
