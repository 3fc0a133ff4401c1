/** The `--ice-udp-port` slot table: one port per worker, taken back from threads that left the pool. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  claimIcePort,
  createIcePortSlots,
  icePortOwners,
  releaseIcePort,
  releaseIcePortsExcept,
} from '../common/protocol/ice-port-slots.js';

describe('ICE UDP port slots', () => {
  it('gives each worker its own port, base + slot, and none beyond the worker count', () => {
    const slots = createIcePortSlots(2, 50_000);
    assert.equal(claimIcePort(slots, 11), 50_000);
    assert.equal(claimIcePort(slots, 12), 50_001);
    assert.equal(claimIcePort(slots, 13), undefined, 'a third thread finds no port');
    assert.equal(claimIcePort(slots, 11), 50_000, 'claiming again returns the port already held');
  });

  it('lets a released port, or one held by a thread gone from the pool, go to the next thread', () => {
    const slots = createIcePortSlots(2, 50_000);
    claimIcePort(slots, 11);
    claimIcePort(slots, 12);
    releaseIcePort(slots, 11);
    assert.equal(claimIcePort(slots, 13), 50_000);
    releaseIcePortsExcept(slots, new Set([13]));
    assert.deepEqual(icePortOwners(slots), [13, 0], 'thread 12 is gone: its slot is free');
    assert.equal(claimIcePort(slots, 14), 50_001);
  });

  it('refuses a range that runs past the last UDP port', () => {
    assert.throws(() => createIcePortSlots(3, 65_534), /not all valid UDP ports/);
    assert.throws(() => createIcePortSlots(0, 50_000), /positive integer/);
  });
});
