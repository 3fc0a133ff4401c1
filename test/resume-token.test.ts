/**
 * ResumeToken (workers/ResumeToken.ts): 256 random bits in base64url, matched only by itself, and kept
 * out of anything that serializes it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResumeToken } from '../workers/ResumeToken.js';

describe('ResumeToken', () => {
  it('is 256 bits of base64url, different each time', () => {
    const a = new ResumeToken();
    assert.match(a.value, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.value, new ResumeToken().value);
  });

  it('matches itself only, whatever the length presented', () => {
    const token = new ResumeToken();
    assert.ok(token.matches(token.value));
    assert.ok(!token.matches(new ResumeToken().value));
    assert.ok(!token.matches(token.value.slice(0, -1)));
    assert.ok(!token.matches(`${token.value}x`));
    assert.ok(!token.matches(''));
  });

  it('does not show in JSON', () => {
    const token = new ResumeToken();
    assert.ok(!JSON.stringify({ token }).includes(token.value));
  });
});
