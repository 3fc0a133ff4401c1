/**
 * A shared secret the cloud stand-in checks: the agents' token, and the browsers' token made fresh for
 * each run. Compared through SHA-256 digests with `timingSafeEqual`, so neither the length nor the
 * content of the secret leaks through timing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

export class AccessToken {
  readonly #digest: Buffer;

  constructor(value: string) {
    this.#digest = digest(value);
  }

  /** A new random token: 32 bytes, base64url (43 characters, safe in a URL fragment). */
  static random(): string {
    return randomBytes(32).toString('base64url');
  }

  /** True only for a string equal to the token. */
  matches(candidate: unknown): boolean {
    return typeof candidate === 'string' && timingSafeEqual(digest(candidate), this.#digest);
  }

  /** True if an `Authorization` header is `Bearer <the token>`. */
  matchesBearer(header: string | undefined): boolean {
    const m = /^Bearer ([^\s]+)$/i.exec(header ?? '');
    return m !== null && this.matches(m[1]);
  }
}
