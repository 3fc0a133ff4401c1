/** A token bucket: `ratePerSecond` tokens a second, bursts up to `burst` (default: one second's worth). */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #updatedMs: number;

  constructor(ratePerSecond: number, burst = ratePerSecond, now = performance.now()) {
    if (!(ratePerSecond > 0)) throw new TypeError('ratePerSecond must be positive');
    if (!(burst >= 1)) throw new TypeError('burst must be at least 1');
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#tokens = burst;
    this.#updatedMs = now;
  }

  /** Takes a token if one is available. */
  tryTake(now = performance.now()): boolean {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#updatedMs) / 1000) * this.#rate);
    this.#updatedMs = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
