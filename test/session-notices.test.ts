/**
 * SessionNotices (workers/SessionNotices.ts) on a fake channel: when the session counts as connected, and
 * what still reaches the main thread once the session is closing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes } from '../common/errors.js';
import { createSessionStats, StatSlot, statsView } from '../common/protocol/session-stats.js';
import { SessionNotices, type NoticeLine } from '../workers/SessionNotices.js';

function setup() {
  const sent: Array<[string, unknown]> = [];
  const line: NoticeLine = { notify: (method, params) => void sent.push([method, params]) };
  const stats = statsView(createSessionStats());
  const session = { closing: false };
  const notices = new SessionNotices(line, stats, () => session.closing);
  return { sent, stats, session, notices };
}

const error = { code: ErrorCodes.SHELL_CLEANUP_FAILED, message: 'pid 42 still there' };
const candidate = { candidate: 'candidate:1 1 UDP 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 };

describe('SessionNotices', () => {
  it('says connected only once both the peer is connected and a PTY is attached', () => {
    const { sent, notices } = setup();
    notices.peerState('connecting', false);
    notices.peerState('connected', false); // the shell is still starting
    notices.ptyOpened('plc-1');
    notices.peerState('disconnected', true);
    notices.peerState('connected', true); // back, with the PTY still there
    assert.deepEqual(sent, [
      ['state', { state: 'connecting' }],
      ['pty-opened', { container: 'plc-1' }],
      ['state', { state: 'connected' }],
      ['state', { state: 'disconnected' }],
      ['state', { state: 'connected' }],
    ]);
  });

  it('passes candidates and the first fault on while the session runs', () => {
    const { sent, notices } = setup();
    notices.localCandidate(candidate);
    notices.handlerFault({ code: ErrorCodes.INTERNAL, message: 'bug' });
    assert.deepEqual(sent, [
      ['local-candidate', candidate],
      ['handler-fault', { error: { code: ErrorCodes.INTERNAL, message: 'bug' } }],
    ]);
  });

  it('sends no state, candidate or fault once closing, but still PTYs opened and shells not ended', () => {
    const { sent, stats, session, notices } = setup();
    session.closing = true;
    notices.peerState('disconnected', true);
    notices.localCandidate(candidate);
    notices.handlerFault({ code: ErrorCodes.INTERNAL, message: 'bug' });
    notices.ptyOpened('plc-1');
    notices.cleanupFailed(error);
    assert.deepEqual(sent, [
      ['pty-opened', { container: 'plc-1' }],
      ['cleanup-failed', { error }],
    ]);
    assert.equal(stats[StatSlot.cleanupFailures], 1);
  });
});
