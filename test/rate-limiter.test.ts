/** RateLimiter (common/RateLimiter.ts): a token bucket on an explicit clock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from '../common/RateLimiter.js';

function takes(limiter: RateLimiter, n: number, now: number): number {
  let taken = 0;
  for (let i = 0; i < n; i++) if (limiter.tryTake(now)) taken += 1;
  return taken;
}

describe('RateLimiter', () => {
  it('lets a burst through at once, then nothing until tokens come back', () => {
    const limiter = new RateLimiter(10, 10, 0);
    assert.equal(takes(limiter, 15, 0), 10);
    assert.equal(limiter.tryTake(0), false);
  });

  it('refills at the rate, never past the burst', () => {
    const limiter = new RateLimiter(10, 5, 0);
    assert.equal(takes(limiter, 5, 0), 5);
    assert.equal(takes(limiter, 5, 300), 3, '300 ms at 10/s is 3 tokens');
    assert.equal(takes(limiter, 100, 60_000), 5, 'a long pause fills the bucket to the burst only');
  });

  it('holds a steady rate over time', () => {
    const limiter = new RateLimiter(100, 2, 0);
    let taken = 0;
    for (let ms = 0; ms <= 10_000; ms += 1) if (limiter.tryTake(ms)) taken += 1;
    assert.ok(Math.abs(taken - 1002) <= 2, `${taken} tokens in 10 s at 100/s (and a burst of 2)`);
  });

  it('refuses a rate or burst that cannot work', () => {
    assert.throws(() => new RateLimiter(0), TypeError);
    assert.throws(() => new RateLimiter(10, 0.5), TypeError);
  });
});
