/**
 * A session's resume token (issue 13): the secret a browser presents in a resume offer to reattach to its
 * shell. 256 random bits, base64url, handed out only inside the DTLS channel (`pty_connected`), never
 * logged. A presented token is compared in constant time: both sides are hashed first, so neither its
 * length nor where it differs shows in the time taken.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export class ResumeToken {
  readonly value = randomBytes(32).toString('base64url');
  readonly #digest = digest(this.value);

  /** True if `presented` is this token. */
  matches(presented: string): boolean {
    return timingSafeEqual(digest(presented), this.#digest);
  }

  /** Keeps the token out of logs that serialize an object holding it. */
  toJSON(): string {
    return '[resume token]';
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
