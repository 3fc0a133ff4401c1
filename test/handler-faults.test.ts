/** HandlerFaults (workers/HandlerFaults.ts): every fault counted, the first reported, the session going on. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, TermgateError, type ErrorData } from '../common/errors.js';
import { createSessionStats, StatSlot, statsView } from '../common/protocol/session-stats.js';
import { HandlerFaults } from '../workers/HandlerFaults.js';

function setup(report: (error: ErrorData) => void = () => {}) {
  const stats = statsView(createSessionStats());
  const reported: ErrorData[] = [];
  const faults = new HandlerFaults(stats, (error) => {
    reported.push(error);
    report(error);
  });
  return { stats, reported, faults };
}

describe('HandlerFaults', () => {
  it('counts every fault and reports only the first', () => {
    const { stats, reported, faults } = setup();
    faults.count({ code: ErrorCodes.INTERNAL, message: 'first' });
    faults.count({ code: ErrorCodes.INTERNAL, message: 'second' });
    faults.count({ code: ErrorCodes.INTERNAL, message: 'third' });
    assert.equal(stats[StatSlot.handlerFaults], 3);
    assert.deepEqual(reported, [{ code: ErrorCodes.INTERNAL, message: 'first' }]);
  });

  it('runs a guarded handler, and counts its throw instead of passing it on', () => {
    const { stats, reported, faults } = setup();
    let ran = false;
    faults.guard(() => {
      ran = true;
    });
    assert.equal(ran, true);
    assert.equal(stats[StatSlot.handlerFaults], 0);
    assert.doesNotThrow(() =>
      faults.guard(() => {
        throw new TermgateError(ErrorCodes.PTY_FAILED, 'kept code');
      }),
    );
    faults.guard(() => {
      throw new Error('plain error');
    });
    assert.equal(stats[StatSlot.handlerFaults], 2);
    assert.deepEqual(reported, [{ code: ErrorCodes.PTY_FAILED, message: 'kept code' }]);
  });

  it('gives a thrown non-TermgateError the internal code', () => {
    const { reported, faults } = setup();
    faults.guard(() => {
      throw new Error('plain error');
    });
    assert.deepEqual(reported, [{ code: ErrorCodes.INTERNAL, message: 'plain error' }]);
  });

  it('goes on when reporting the fault throws too', () => {
    const { stats, faults } = setup(() => {
      throw new Error('the port is closed');
    });
    assert.doesNotThrow(() =>
      faults.guard(() => {
        throw new Error('bug');
      }),
    );
    faults.guard(() => {
      throw new Error('another bug');
    });
    assert.equal(stats[StatSlot.handlerFaults], 2);
  });
});
