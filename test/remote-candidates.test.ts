/** RemoteCandidates (workers/RemoteCandidates.ts): candidates before the offer wait for it, in order. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IceCandidate } from '../common/protocol/worker-messages.js';
import { RemoteCandidates } from '../workers/RemoteCandidates.js';

const ice = (n: number): IceCandidate => ({
  candidate: `candidate:${n} 1 UDP 1 127.0.0.1 ${5000 + n} typ host`,
  sdpMid: null,
  sdpMLineIndex: 0,
});

describe('RemoteCandidates', () => {
  it('holds what comes before the offer and hands it over, in order, once answered', () => {
    const candidates = new RemoteCandidates();
    const taken: IceCandidate[] = [];
    candidates.add(ice(1));
    candidates.add(ice(2));
    assert.equal(taken.length, 0, 'nothing goes anywhere before the answer');
    candidates.answered({ addRemoteCandidate: (c) => void taken.push(c) });
    assert.deepEqual(taken, [ice(1), ice(2)]);
  });

  it('passes what comes after the answer straight on, and hands nothing over twice', () => {
    const candidates = new RemoteCandidates();
    const taken: IceCandidate[] = [];
    candidates.add(ice(1));
    candidates.answered({ addRemoteCandidate: (c) => void taken.push(c) });
    candidates.add(ice(2));
    candidates.add(ice(3));
    assert.deepEqual(taken, [ice(1), ice(2), ice(3)]);
  });
});
