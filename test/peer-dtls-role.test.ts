/**
 * The agent's peer answers as the DTLS server: an offer that leaves the role open (`a=setup:actpass`,
 * what browsers send) is answered `a=setup:passive`, so the browser, which starts DTLS only once it has
 * the answer, sends the first flight, and the agent never sends one a browser could drop. An offer that
 * chose a role keeps it. Real peers: the agent's `Peer` against a node-datachannel offerer that applies
 * the answer late, as a browser behind a cloud does. The offerer sends its candidates once it has the
 * answer: a libdatachannel offerer reached by the agent's checks before that breaks on its own side
 * (README, known issues), which is not what this test is about.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import nodeDataChannel from 'node-datachannel';
import { withoutCandidates } from '../bench/load/offerer-race.js';
import { getAddon, cleanupAddon } from '../workers/native-addon.js';
import { asDtlsServer, Peer } from '../workers/Peer.js';
import { onTeardown } from './helpers/teardown.js';

const peers: Array<{ close(): void }> = [];
onTeardown(() => {
  for (const p of peers) p.close();
  cleanupAddon();
});

const setupOf = (sdp: string) => /^a=setup:(\w+)/m.exec(sdp)?.[1];

/** A browser stand-in: offers `terminal`, trickles candidates, applies the answer after `answerDelayMs`. */
async function connect(offerRole: 'actpass' | 'active' | 'passive', answerDelayMs: number) {
  const browser = new nodeDataChannel.PeerConnection('browser', { iceServers: [], bindAddress: '127.0.0.1' });
  const agent = new Peer(getAddon(), {
    name: 'agent',
    iceServers: [],
    iceTransportPolicy: 'all',
    bindAddress: '127.0.0.1',
    portRangeBegin: undefined,
    portRangeEnd: undefined,
    iceUdpMux: false,
    front: undefined,
    maxMessageSize: 65536,
  });
  peers.push(browser, agent);
  let answered = false;
  const agentCandidates: Array<[string, string]> = [];
  const browserCandidates: Array<[string, string]> = [];
  agent.on('local-candidate', (candidate, mid) => {
    if (answered) browser.addRemoteCandidate(candidate, mid);
    else agentCandidates.push([candidate, mid]);
  });
  browser.onLocalCandidate((candidate, mid) => {
    if (answered) agent.addRemoteCandidate(candidate.replace(/^a=/, ''), mid);
    else browserCandidates.push([candidate.replace(/^a=/, ''), mid]);
  });
  const opened = new Promise<void>((resolve) => agent.on('data-channel', () => resolve()));
  const channel = browser.createDataChannel('terminal');
  const offer = await new Promise<string>((resolve) => {
    const ready = browser.localDescription();
    if (ready) resolve(ready.sdp);
    else browser.onLocalDescription((sdp) => resolve(sdp));
  });
  // Candidates the offer already carries would let the agent check the offerer before the answer.
  const trickleOnly = withoutCandidates(offer);
  const answer = agent.answer(trickleOnly.replace(/a=setup:actpass/g, `a=setup:${offerRole}`));
  await new Promise((r) => setTimeout(r, answerDelayMs));
  browser.setRemoteDescription(answer, 'answer');
  answered = true;
  for (const [candidate, mid] of agentCandidates) browser.addRemoteCandidate(candidate, mid);
  for (const [candidate, mid] of browserCandidates) agent.addRemoteCandidate(candidate, mid);
  await within(
    30_000,
    'the channel to open',
    new Promise<void>((resolve) => channel.onOpen(() => resolve())),
  );
  await within(30_000, "the agent's channel", opened);
  return { answer };
}

/** One setup, so a fixed bound: a channel that never opens fails the test instead of holding the run. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('DTLS role of the agent', () => {
  it('applies an actpass offer as if the browser were the DTLS client, and only that', () => {
    const offer = 'v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=setup:actpass\r\na=mid:0\r\n';
    assert.equal(
      asDtlsServer(offer),
      'v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=setup:active\r\na=mid:0\r\n',
    );
    for (const chosen of ['active', 'passive']) {
      const fixed = offer.replace('actpass', chosen);
      assert.equal(asDtlsServer(fixed), fixed, `an offer that chose ${chosen} is applied as it is`);
    }
    assert.equal(asDtlsServer('a=setup:actpassive\r\n'), 'a=setup:actpassive\r\n', 'whole values only');
  });

  it('answers a browser that leaves the role open as the DTLS server, and the channel opens', async () => {
    const { answer } = await connect('actpass', 100);
    assert.equal(setupOf(answer), 'passive');
  });

  it('keeps the role an offer chose', async () => {
    assert.equal(setupOf((await connect('active', 20)).answer), 'passive');
    assert.equal(setupOf((await connect('passive', 20)).answer), 'active');
  });
});
