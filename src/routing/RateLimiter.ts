/** A token bucket: `ratePerSecond` tokens a second, bursts up to one second's worth. */
export class RateLimiter {
  readonly #rate: number;
  #tokens: number;
  #updatedMs: number;

  constructor(ratePerSecond: number, now = performance.now()) {
    if (!(ratePerSecond > 0)) throw new TypeError('ratePerSecond must be positive');
    this.#rate = ratePerSecond;
    this.#tokens = ratePerSecond;
    this.#updatedMs = now;
  }

  /** Takes a token if one is available. */
  tryTake(now = performance.now()): boolean {
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#updatedMs) / 1000) * this.#rate);
    this.#updatedMs = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
