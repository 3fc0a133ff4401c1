/**
 * The bench harness in quick mode: every scenario runs end to end against the built agent and the
 * direct-exec baseline, and its report has every field, sane numbers, ratios computed from the two
 * measured values, every `met` computed from its row's own figures against the stated target (and true
 * where the target is correctness rather than speed), and its setups and retries counted; over the whole
 * run, retries stay under the stated rate. Each scenario is bounded by its progress (its load processes
 * keep reporting while they work), not by a total deadline.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { closeAllHarnesses, type CommonOptions } from '../bench/harness.js';
import { ipcActivity } from '../bench/ipc.js';
import { markdown, percentiles, writeJson, type BenchReport, type ResultRow } from '../bench/report.js';
import { runScenario, SCENARIOS, type Scenario } from '../bench/run.js';
import { RETRIED_ROW, SETUPS_ROW } from '../bench/scenarios/common.js';
import { BROWSER_READY } from '../bench/scenarios/browser.js';
import {
  RETRANSMIT_MS,
  SEQUENTIAL_READY,
  SEQUENTIAL_SPREAD_MS,
  SETUP_CPU_TARGET,
} from '../bench/scenarios/setup.js';
import { INTERRUPT_BOUND_MS } from '../bench/scenarios/interrupt.js';
import { CPU_TARGET_MS, MANY_TARGET, ONE_TARGET, throughputQuick } from '../bench/scenarios/throughput.js';
import { StallError, withProgress } from './helpers/progress.js';
import { BENCH_RETRY_RATE, checkRetryRate } from './helpers/retry-rate.js';

const outDir = mkdtempSync(path.join(os.tmpdir(), 'termgate-bench-'));
const common: CommonOptions = { workers: 2, quick: true, progress: false, encoding: 'json', agentArgs: [] };
/** A scenario fails when its load processes have said nothing for this long. */
const STALL_MS = 120_000;

after(() => rmSync(outDir, { recursive: true, force: true }));

/** Metrics that are latencies or rates: measured, so strictly positive on both sides. */
const POSITIVE: Record<Scenario, RegExp[]> = {
  setup: [/^offer→/, /^sessions per second$/],
  echo: [/^keystroke round trip/],
  throughput: [/: one session$/, /: aggregate$/, /beside the simulated browser's CPU$/],
  capacity: [/: RSS$/, /: open fds$/],
  soak: [/^cycle/, /^RSS warm base$/, /^open fds base$/],
  browser: [/^Chromium offer→pty_connected/],
  interrupt: [/^Ctrl-C to last output byte/],
};

/**
 * Every row with a target, and what its `met` must be, restated here from each scenario's target in
 * words. `required`: a correctness target, met in every run however loaded the machine; the others are
 * speed and memory targets, reported by the bench and checked here only for being computed right.
 */
interface MetRule {
  pattern: RegExp;
  met: (r: Values, rows: ResultRow[]) => boolean;
  required?: boolean;
}
type Values = ResultRow & { termgate: number; baseline: number };

const termgateOf = (rows: ResultRow[], metric: string): number => {
  const r = rows.find((x) => x.metric === metric);
  assert.ok(r && r.termgate !== null, `a row ${metric} with a termgate value`);
  return r.termgate;
};

/** A sequential p99 within the spread of its p50, and that p50 below one DTLS retransmit. */
const spreadMet = (p99: Values, p50: number) =>
  p99.termgate <= p50 + SEQUENTIAL_SPREAD_MS && p50 < RETRANSMIT_MS;

const MET: Record<Scenario, MetRule[]> = {
  setup: [
    { pattern: /^offer→pty_connected vs exec ready p50$/, met: (r) => r.termgate <= r.baseline + 25 },
    { pattern: /^failed setups$/, met: (r) => r.termgate === 0, required: true },
    {
      pattern: /^sequential offer→pty_connected .* p99$/,
      met: (r, rows) => spreadMet(r, termgateOf(rows, `${SEQUENTIAL_READY} p50`)),
    },
    { pattern: /^CPU per setup, /, met: (r) => r.termgate <= SETUP_CPU_TARGET * r.baseline },
  ],
  echo: [
    { pattern: /^keystroke round trip p50$/, met: (r) => r.termgate <= r.baseline + 1 },
    { pattern: /^keystroke round trip p99$/, met: (r) => r.termgate <= r.baseline + 5 },
    {
      pattern: /^idle sessions open meanwhile$/,
      met: (r) => r.termgate === Number(r.target),
      required: true,
    },
  ],
  throughput: [
    { pattern: /: one session$/, met: (r) => r.termgate >= ONE_TARGET * r.baseline },
    {
      pattern: /: CPU per MB( \(agent vs direct-exec client\))?$/,
      met: (r) => r.termgate <= CPU_TARGET_MS[/\bjson\b/.test(r.metric) ? 'json' : 'msgpack'],
    },
    {
      pattern: /at once .*: completed$/,
      met: (r) => r.termgate === throughputQuick.parallel && r.baseline === throughputQuick.parallel,
      required: true,
    },
    { pattern: /at once .*: aggregate$/, met: (r) => r.termgate >= MANY_TARGET * r.baseline },
    {
      pattern: /^transfers missing or not byte-exact/,
      met: (r) => r.termgate === 0 && r.baseline === 0,
      required: true,
    },
  ],
  capacity: [
    {
      pattern: /^\d+: sessions open$/,
      met: (r, rows) => {
        const n = Number(r.metric.split(':')[0]);
        return r.termgate === n && termgateOf(rows, `${n}: failed setups (cumulative)`) === 0;
      },
      required: true,
    },
    { pattern: /^\d+: RSS per session beyond base$/, met: (r) => r.termgate <= 1 },
  ],
  soak: [
    { pattern: /^failed cycles$/, met: (r) => r.termgate === 0, required: true },
    {
      pattern: /^RSS after, all closed$/,
      met: (r, rows) => r.termgate <= termgateOf(rows, 'RSS warm base') * 1.15 + 8,
    },
    {
      pattern: /^open fds after, all closed$/,
      met: (r, rows) => r.termgate <= termgateOf(rows, 'open fds base') + 2,
    },
    { pattern: /^shells left in containers$/, met: (r) => r.termgate === 0, required: true },
  ],
  browser: [
    {
      pattern: /^Chromium offer→pty_connected .* p99$/,
      met: (r, rows) => spreadMet(r, termgateOf(rows, `${BROWSER_READY} p50`)),
    },
    { pattern: /^failed setups$/, met: (r) => r.termgate === 0, required: true },
  ],
  interrupt: [
    { pattern: /^Ctrl-C to last output byte p99$/, met: (r) => r.termgate <= INTERRUPT_BOUND_MS },
    {
      pattern: /^floods interrupted$/,
      met: (r) => r.termgate === Number(r.target) && r.baseline === Number(r.target),
      required: true,
    },
  ],
};

function checkMet(report: BenchReport, scenario: Scenario): void {
  const used = new Set<MetRule>();
  for (const r of report.rows) {
    const where = `${scenario} / ${r.metric}`;
    const rules = MET[scenario].filter((rule) => rule.pattern.test(r.metric));
    if (r.target === undefined) {
      assert.equal(r.met, undefined, `${where}: no target, so no met`);
      continue;
    }
    assert.equal(rules.length, 1, `${where}: exactly one rule here for its target "${r.target}"`);
    const rule = rules[0]!;
    used.add(rule);
    assert.ok(r.termgate !== null && r.baseline !== null, `${where}: both values, to judge the target`);
    const expected = rule.met(r as Values, report.rows);
    assert.equal(r.met, expected, `${where}: met is ${String(r.met)}, the figures say ${expected}`);
    if (rule.required)
      assert.equal(
        r.met,
        true,
        `${where}: ${r.termgate} against the target ${r.target}; errors: ${JSON.stringify(report.details.errors ?? [])}`,
      );
  }
  for (const rule of MET[scenario])
    assert.ok(used.has(rule), `${scenario}: no row with a target matches ${String(rule.pattern)}`);
}

function checkReport(report: BenchReport, scenario: Scenario): void {
  assert.equal(report.scenario, scenario);
  assert.equal(report.quick, true);
  assert.ok(!Number.isNaN(Date.parse(report.date)), 'date is ISO');
  assert.ok(report.durationSeconds > 0);
  assert.equal(report.agent.workers, 2);
  assert.ok(report.agent.args.includes('--workers'));
  assert.ok(report.machine.cpus > 0 && report.machine.node.startsWith('v'));
  assert.match(report.machine.cpusAllowed, /^[0-9][0-9,-]*$/, 'the CPUs the bench ran on, from /proc');
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
  }
  for (const re of POSITIVE[scenario])
    assert.ok(
      report.rows.some((r) => re.test(r.metric)),
      `${scenario}: no row matches ${String(re)}`,
    );
  checkMet(report, scenario);
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

/** Setups and retries of the termgate side, from the two rows every scenario ends with. */
const setups = { sessions: 0, retried: 0, scenarios: [] as string[] };

function countSetups(report: BenchReport, scenario: Scenario): void {
  const sessions = termgateOf(report.rows, SETUPS_ROW);
  const retried = termgateOf(report.rows, RETRIED_ROW);
  assert.ok(sessions > 0, `${scenario}: sessions were set up`);
  assert.ok(retried >= 0 && retried <= sessions);
  setups.sessions += sessions;
  setups.retried += retried;
  setups.scenarios.push(`${scenario} ${retried}/${sessions}`);
}

/** Runs a scenario, failing early if it stalls; a stalled run's harness is torn down. */
async function runQuick(scenario: Scenario): Promise<BenchReport> {
  try {
    return await withProgress(runScenario(scenario, common), {
      what: `the ${scenario} scenario`,
      stallMs: STALL_MS,
      progress: () => ipcActivity.messages,
    });
  } catch (err) {
    if (err instanceof StallError) await closeAllHarnesses();
    throw err;
  }
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

  it("a table's heading says when the bench ran pinned to some of the machine's CPUs", () => {
    const report = (cpus: number, cpusAllowed: string): BenchReport => ({
      scenario: 'throughput',
      date: '2026-12-04T00:00:00.000Z',
      quick: false,
      durationSeconds: 1,
      machine: {
        cpus,
        cpuModel: 'x',
        memoryBytes: 1,
        node: 'v20',
        kernel: 'k',
        loadAverage: [1, 1, 1],
        cpusAllowed,
      },
      agent: { workers: 2, args: [] },
      options: {},
      rows: [],
      details: {},
    });
    assert.match(markdown(report(2, '1')), /^### .*; bench and agent on CPUs 1\)$/m);
    assert.doesNotMatch(markdown(report(2, '0-1')), /bench and agent on CPUs/);
    assert.doesNotMatch(markdown(report(1, '0')), /bench and agent on CPUs/);
  });
});

describe('bench scenarios, quick mode', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario}: a full report with sane numbers and honest targets`, async () => {
      const report = await runQuick(scenario);
      checkReport(report, scenario);
      countSetups(report, scenario);
      if (scenario === 'setup') {
        assert.equal(report.rows.find((r) => r.metric === 'failed setups')?.baseline, 0, 'no failed exec');
      }
      if (scenario === 'soak') {
        const shells = report.rows.find((r) => r.metric === 'shells left in containers');
        assert.equal(shells?.baseline, 0, 'the direct execs left no shell either');
      }
    });
  }

  it('retried setups stay under the stated rate over the whole run', () => {
    assert.equal(setups.scenarios.length, SCENARIOS.length, 'every scenario reported its setups');
    const line = checkRetryRate('bench, quick', setups.sessions, setups.retried, BENCH_RETRY_RATE);
    console.log(`# ${line} (${setups.scenarios.join(', ')})`);
  });
});
