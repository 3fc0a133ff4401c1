/**
 * The throughput rows over several rounds (bench --rounds): each side shows the median of its rounds'
 * MB/s and CPU per MB, and every round's transfers still count in the byte-exact check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { medianBurnedRun, medianRun, type Run } from '../bench/scenarios/throughput-rows.js';

function run(mbPerSecond: number, cpuMsPerMb: number, exact = 1): Run {
  return {
    mbPerSecond,
    cpuMsPerMb,
    bytes: 1_000_000,
    seconds: 1 / mbPerSecond,
    cpuSeconds: cpuMsPerMb / 1000,
    loadCpuSeconds: 0.01,
    completed: 1,
    exact,
    transfers: 1,
    errors: exact === 1 ? [] : ['sha256 differs'],
  };
}

describe('a throughput row over several rounds', () => {
  it('is the run itself when there was one round', () => {
    const only = run(5, 20);
    assert.equal(medianRun([only]), only);
  });

  it('shows the median MB/s and the median CPU per MB, each on its own', () => {
    const m = medianRun([run(6, 30), run(4, 10), run(5, 40)]);
    assert.equal(m.mbPerSecond, 5);
    assert.equal(m.cpuMsPerMb, 30);
    assert.equal(medianRun([run(6, 30), run(4, 10)]).mbPerSecond, 5);
  });

  it("counts every round's transfers, checks and errors", () => {
    const m = medianRun([run(6, 30), run(4, 10, 0), run(5, 40)]);
    assert.equal(m.transfers, 3);
    assert.equal(m.completed, 3);
    assert.equal(m.exact, 2);
    assert.deepEqual(m.errors, ['sha256 differs']);
    assert.equal(m.bytes, 3_000_000);
    assert.equal(m.rounds?.length, 3);
  });

  it("gives the direct exec beside a burner the median of the burner's shares too", () => {
    const m = medianBurnedRun([
      { ...run(6, 30), burnShare: 0.3 },
      { ...run(4, 10), burnShare: 0.1 },
      { ...run(5, 40), burnShare: 0.2 },
    ]);
    assert.equal(m.mbPerSecond, 5);
    assert.equal(m.burnShare, 0.2);
    assert.equal(m.transfers, 3);
  });
});
