/**
 * Candidates behind the ICE UDP front (workers/front-candidates.ts): the agent's own host and
 * server-reflexive candidates name the front's port, a relay candidate is left alone, and the browser's
 * candidates are taken out of its offer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerThroughFront, offerThroughFront, throughFront } from '../workers/front-candidates.js';

const PORTS = { front: 50000, worker: 50002 };

describe('candidates behind the ICE UDP front', () => {
  it("names the front's port in the worker's host candidates", () => {
    assert.equal(
      throughFront('candidate:1 1 UDP 2122317823 192.0.2.10 50002 typ host', PORTS),
      'candidate:1 1 UDP 2122317823 192.0.2.10 50000 typ host',
    );
  });

  it('names it in a server-reflexive candidate too, with its related port (a NAT forwarding the one port)', () => {
    assert.equal(
      throughFront(
        'candidate:2 1 UDP 1686052607 203.0.113.7 61234 typ srflx raddr 192.0.2.10 rport 50002',
        PORTS,
      ),
      'candidate:2 1 UDP 1686052607 203.0.113.7 50000 typ srflx raddr 192.0.2.10 rport 50000',
    );
  });

  it('leaves relay candidates and other ports alone', () => {
    const relay = 'candidate:3 1 UDP 16777215 198.51.100.4 49152 typ relay raddr 192.0.2.10 rport 50002';
    assert.equal(throughFront(relay, PORTS), relay);
    const other = 'candidate:1 1 UDP 2122317823 192.0.2.10 40000 typ host';
    assert.equal(throughFront(other, PORTS), other);
  });

  it('rewrites the candidate lines of an answer, and takes them all out of an offer', () => {
    const sdp = [
      'v=0',
      'a=ice-ufrag:abcd',
      'a=candidate:1 1 UDP 2122317823 192.0.2.10 50002 typ host',
      'a=candidate:9 1 UDP 2122317823 10.0.0.2 41000 typ host',
      'a=end-of-candidates',
      '',
    ].join('\r\n');
    assert.equal(answerThroughFront(sdp, PORTS), sdp.replace('192.0.2.10 50002', '192.0.2.10 50000'));
    assert.equal(offerThroughFront(sdp), 'v=0\r\na=ice-ufrag:abcd\r\na=end-of-candidates\r\n');
  });
});
