/**
 * How many setup retries a test tolerates. A simulated browser (libdatachannel as the offerer) can lose
 * its setup to the offerer race (the README's known issues; bench/load/offerer-race.ts) and is tried
 * again, counted. The tests' and the bench's peers hold their candidates until the answer is applied,
 * which the race needs: none in over 4,000 setups here, and RETRY_RATE bounds any other loss. The
 * bench's peers, which set up many sessions at a time on a loaded machine, are bounded at
 * BENCH_RETRY_RATE: a machine or a change that makes lost setups common still fails. A count fails when it is more than a binomial count at the rate would
 * reach with probability SIGNIFICANCE.
 */
import assert from 'node:assert/strict';

export const RETRY_RATE = 0.02;
export const BENCH_RETRY_RATE = 0.1;
export const SIGNIFICANCE = 0.001;

/** P(X ≥ k) for X binomial with `n` trials at rate `p`. */
function atLeast(k: number, n: number, p: number): number {
  let pmf = (1 - p) ** n;
  let below = 0;
  for (let i = 0; i < k && i <= n; i++) {
    below += pmf;
    pmf *= ((n - i) / (i + 1)) * (p / (1 - p));
  }
  return Math.max(0, 1 - below);
}

/** The most retries of `setups` setups that `rate` explains. */
export function retryLimit(setups: number, rate = RETRY_RATE): number {
  let k = 0;
  while (k < setups && atLeast(k + 1, setups, rate) >= SIGNIFICANCE) k++;
  return k;
}

/** Asserts the retries are within `retryLimit`, and returns the line that reports them. */
export function checkRetryRate(what: string, setups: number, retries: number, rate = RETRY_RATE): string {
  const limit = retryLimit(setups, rate);
  const share = setups > 0 ? `${((100 * retries) / setups).toFixed(1)} %` : '–';
  const line = `${what}: ${retries} of ${setups} setups retried (${share}; at most ${limit} at a ${100 * rate} % rate)`;
  assert.ok(retries <= limit, `too many retries: ${line}`);
  return line;
}
