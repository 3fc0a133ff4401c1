/** mDNS candidates (workers/mdns-candidates.ts): dropped without a lookup, every other one kept. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMdnsCandidate, withoutMdnsCandidates } from '../workers/mdns-candidates.js';

const MDNS = 'candidate:0 1 UDP 2122252543 91895491-6d2a-4723-bdf2-172a6f995a23.local 51679 typ host';
const PLAIN = 'candidate:0 1 UDP 2122252543 10.99.0.1 44958 typ host';

describe('mDNS candidates', () => {
  it('knows an mDNS name by the address field, with or without "a="', () => {
    assert.equal(isMdnsCandidate(MDNS), true);
    assert.equal(isMdnsCandidate(`a=${MDNS}`), true);
    assert.equal(isMdnsCandidate(MDNS.replace('.local', '.LOCAL.')), true);
    assert.equal(isMdnsCandidate(PLAIN), false);
    assert.equal(isMdnsCandidate('candidate:1 1 TCP 2105524479 10.99.0.1 9 typ host tcptype active'), false);
    // ".local" elsewhere than in the address does not count.
    assert.equal(isMdnsCandidate(`${PLAIN} generation 0 ufrag x.local`), false);
    assert.equal(isMdnsCandidate(''), false);
  });

  it('takes the mDNS candidate lines out of an SDP and leaves every other line', () => {
    const sdp = [
      'v=0',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
      `a=${MDNS}`,
      `a=${PLAIN}`,
      'a=mid:0',
      '',
    ];
    assert.equal(withoutMdnsCandidates(sdp.join('\r\n')), sdp.filter((l) => l !== `a=${MDNS}`).join('\r\n'));
    assert.equal(withoutMdnsCandidates(sdp.join('\n')), sdp.filter((l) => l !== `a=${MDNS}`).join('\n'));
    assert.equal(withoutMdnsCandidates(`v=0\r\na=${MDNS}`), 'v=0\r\n');
  });
});
