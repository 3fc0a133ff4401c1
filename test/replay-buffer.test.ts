/**
 * ReplayBuffer (workers/ReplayBuffer.ts): byte numbering, the ring while the browser is there, nothing
 * dropped once pinned, acknowledgements, and memory bounded by the bytes held whatever the chunk sizes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ReplayBuffer } from '../workers/ReplayBuffer.js';

function joined(buffer: ReplayBuffer, offset: number): Buffer {
  return Buffer.concat(buffer.since(offset));
}

describe('ReplayBuffer', () => {
  it('numbers bytes from the first and gives back any suffix it holds', () => {
    const buffer = new ReplayBuffer(1024);
    buffer.append(Buffer.from('hello '));
    buffer.append(Buffer.from('world'));
    assert.equal(buffer.end, 11);
    assert.equal(buffer.start, 0);
    assert.equal(joined(buffer, 0).toString(), 'hello world');
    assert.equal(joined(buffer, 6).toString(), 'world');
    assert.equal(joined(buffer, 11).length, 0);
    assert.throws(() => buffer.since(12), RangeError);
  });

  it('keeps only the most recent bytes while unpinned (a ring)', () => {
    const buffer = new ReplayBuffer(10_000);
    const all = randomBytes(50_000);
    for (let at = 0; at < all.length; at += 777) buffer.append(all.subarray(at, at + 777));
    assert.equal(buffer.end, 50_000);
    assert.equal(buffer.size, 10_000);
    assert.equal(buffer.start, 40_000);
    assert.ok(!buffer.has(39_999));
    assert.deepEqual(joined(buffer, 40_000), all.subarray(40_000));
    assert.deepEqual(joined(buffer, 45_123), all.subarray(45_123));
  });

  it('drops nothing once pinned, and says when it is full', () => {
    const buffer = new ReplayBuffer(4096);
    const all = randomBytes(10_000);
    buffer.append(all.subarray(0, 3000));
    buffer.pin();
    assert.ok(!buffer.full);
    buffer.append(all.subarray(3000, 6000));
    assert.ok(buffer.full);
    buffer.append(all.subarray(6000));
    assert.equal(buffer.start, 0);
    assert.deepEqual(joined(buffer, 0), all);
    buffer.unpin();
    assert.equal(buffer.size, 4096);
    assert.deepEqual(joined(buffer, buffer.start), all.subarray(10_000 - 4096));
  });

  it('forgets what the browser acknowledged', () => {
    const buffer = new ReplayBuffer(4096);
    buffer.pin();
    buffer.append(Buffer.alloc(3000, 1));
    buffer.acknowledge(2500);
    assert.equal(buffer.start, 2500);
    assert.equal(buffer.size, 500);
    buffer.acknowledge(99_999);
    assert.equal(buffer.size, 0);
    assert.equal(buffer.end, 3000);
  });

  it('holds tiny chunks in shared blocks: memory follows the bytes, not the chunk count', () => {
    const buffer = new ReplayBuffer(64 * 1024);
    buffer.pin();
    for (let i = 0; i < 60_000; i++) buffer.append(Buffer.from([i & 0xff]));
    assert.equal(buffer.size, 60_000);
    assert.ok(buffer.retainedBytes <= 60_000 + 4096, `retained ${buffer.retainedBytes}`);
    assert.equal(joined(buffer, 59_999)[0], 59_999 & 0xff);
  });

  it('refuses a capacity that is not a positive integer', () => {
    assert.throws(() => new ReplayBuffer(0), TypeError);
    assert.throws(() => new ReplayBuffer(1.5), TypeError);
  });
});
