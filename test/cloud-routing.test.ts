/**
 * The cloud stand-in with several fake agents and browsers at once, on loopback: routing by device,
 * ICE both ways, unknown device, agent gone mid-session, token refused, browser gone, the HTTP side.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { io } from 'socket.io-client';
import { CloudServer } from '../standin/cloud/CloudServer.js';
import {
  connectFakeAgent,
  connectFakeBrowser,
  waitFor,
  type FakeAgent,
  type FakeBrowser,
} from './helpers/cloud-fakes.js';

const TOKEN = 'test-token-' + Math.random().toString(36).slice(2);
const BROWSER_TOKEN = 'browser-token-' + Math.random().toString(36).slice(2);
const withToken = { headers: { authorization: `Bearer ${BROWSER_TOKEN}` } };

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms).unref(),
    ),
  ]);
}

void describe('cloud stand-in', { timeout: 60_000 }, () => {
  let cloud: CloudServer;
  let url: string;
  const open: Array<{ close(): Promise<void> }> = [];

  async function agent(id: string, devices: string[], token = TOKEN): Promise<FakeAgent> {
    const a = await connectFakeAgent(url, id, devices, token);
    open.push(a);
    return a;
  }
  async function browser(): Promise<FakeBrowser> {
    const b = await connectFakeBrowser(url, BROWSER_TOKEN);
    open.push(b);
    return b;
  }

  before(async () => {
    cloud = new CloudServer({
      agentToken: TOKEN,
      browserToken: BROWSER_TOKEN,
      port: 0,
      offerTimeoutMs: 1500,
      devicesTimeoutMs: 1000,
    });
    url = await cloud.listen();
  });

  after(async () => {
    await withTimeout(Promise.all(open.map((s) => s.close())), 5000, 'closing sockets');
    await withTimeout(cloud.close(), 5000, 'cloud.close()');
    await withTimeout(cloud.close(), 1000, 'second cloud.close()'); // idempotent
  });

  void it('listens on 127.0.0.1 by default-style URL and serves health', async () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal((await fetch(`${url}/../../etc/passwd`)).status, 404);
    assert.equal((await fetch(`${url}/api/devices`, { method: 'POST' })).status, 405);
  });

  void it('routes offers and ICE by device across several agents and browsers', async () => {
    const a = await agent('agent-a', ['vplc-a1', 'vplc-a2']);
    const b = await agent('agent-b', ['vplc-b1']);
    const x = await browser();
    const y = await browser();

    const res = await fetch(`${url}/api/devices`, withToken);
    const { devices } = (await res.json()) as { devices: Array<{ name: string; agent_id: string }> };
    for (const [name, owner] of [
      ['vplc-a1', 'agent-a'],
      ['vplc-a2', 'agent-a'],
      ['vplc-b1', 'agent-b'],
    ]) {
      assert.ok(
        devices.some((d) => d.name === name && d.agent_id === owner),
        `${name} listed for ${owner}`,
      );
    }

    x.offer('sx1', 'vplc-a1');
    y.offer('sy1', 'vplc-b1');
    x.offer('sx2', 'vplc-b1');
    y.offer('sy2', 'vplc-a2');
    await waitFor('four answers', () => x.answers.length === 2 && y.answers.length === 2);

    assert.deepEqual(a.offers.map((o) => o.session_id).sort(), ['sx1', 'sy2']);
    assert.deepEqual(b.offers.map((o) => o.session_id).sort(), ['sx2', 'sy1']);
    for (const o of [...a.offers, ...b.offers]) {
      assert.equal(typeof o.correlation_id, 'number');
      assert.equal(o.sdp_type, 'offer');
      assert.match(o.sdp, new RegExp(`offer-${o.session_id}`));
    }
    const ids = [...a.offers, ...b.offers].map((o) => o.correlation_id);
    assert.equal(new Set(ids).size, 4, 'correlation ids are unique');

    const answerOf = (br: FakeBrowser, sid: string) => br.answers.find((m) => m.session_id === sid);
    assert.deepEqual(answerOf(x, 'sx1'), {
      action: 'webrtc:offer',
      correlation_id: a.offers.find((o) => o.session_id === 'sx1')!.correlation_id,
      status: 'success',
      session_id: 'sx1',
      sdp: 'answer-from-agent-a',
      sdp_type: 'answer',
    });
    assert.equal(answerOf(x, 'sx2')?.sdp, 'answer-from-agent-b');
    assert.equal(answerOf(y, 'sy1')?.sdp, 'answer-from-agent-b');
    assert.equal(answerOf(y, 'sy2')?.sdp, 'answer-from-agent-a');

    // ICE browser → the agent of that session only.
    const cand = {
      candidate: 'candidate:1 1 UDP 2122252543 127.0.0.1 5000 typ host',
      sdp_mid: '0',
      sdp_mline_index: 0,
    };
    x.socket.emit('webrtc:ice', { session_id: 'sx2', ...cand });
    await waitFor('ICE at agent b', () => b.ice.length === 1);
    assert.deepEqual(b.ice[0], { session_id: 'sx2', ...cand });
    assert.equal(a.ice.length, 0);
    // A browser cannot inject ICE into another browser's session. What y sends next, for its own session
    // on the same agent, follows the same path in order: once it arrives, the injection was dropped.
    y.socket.emit('webrtc:ice', { session_id: 'sx1', ...cand });
    y.socket.emit('webrtc:ice', { session_id: 'sy2', ...cand });
    await waitFor("y's own ICE at agent a", () => a.ice.length === 1);
    assert.deepEqual(a.ice, [{ session_id: 'sy2', ...cand }]);
    // ICE agent → the browser of that session only.
    a.socket.emit('webrtc:ice', { session_id: 'sy2', ...cand, sdp_mid: null, sdp_mline_index: null });
    await waitFor('ICE at browser y', () => y.ice.length === 1);
    assert.deepEqual(y.ice[0], { session_id: 'sy2', ...cand, sdp_mid: null, sdp_mline_index: null });
    // An agent cannot send ICE into a session it does not own; its next, for its own session sx2 (also
    // browser x's), shows the injection was dropped.
    b.socket.emit('webrtc:ice', { session_id: 'sx1', ...cand });
    b.socket.emit('webrtc:ice', { session_id: 'sx2', ...cand });
    await waitFor("b's own ICE at browser x", () => x.ice.length === 1);
    assert.deepEqual(x.ice, [{ session_id: 'sx2', ...cand }]);
    assert.equal(a.ice.length, 1);

    // Browser ends a session → its agent gets webrtc:disconnect.
    x.socket.emit('webrtc:disconnect', { session_id: 'sx1' });
    await waitFor('disconnect at agent a', () => a.disconnects.length === 1);
    assert.deepEqual(a.disconnects[0], { session_id: 'sx1' });

    // Browser socket gone → every session it had ends on its agents.
    await y.close();
    await waitFor('browser-gone disconnects', () => a.disconnects.length === 2 && b.disconnects.length === 1);
    assert.deepEqual(a.disconnects[1], { session_id: 'sy2', reason: 'browser-gone' });
    assert.deepEqual(b.disconnects[0], { session_id: 'sy1', reason: 'browser-gone' });

    x.socket.emit('webrtc:disconnect', { session_id: 'sx2' });
    await waitFor('sessions gone', () => cloud.sessionCount === 0);
    await Promise.all([a.close(), b.close(), x.close()]);
  });

  void it('answers an offer for an unknown device with an error, and finds a device added later', async () => {
    const a = await agent('agent-late', ['vplc-late-1']);
    const x = await browser();
    x.offer('s-unknown', 'vplc-nowhere');
    await waitFor('error answer', () => x.answers.length === 1);
    // The cloud numbers every offer it takes; this one reached no agent, so its id is the cloud's alone.
    const unknownId = x.answers[0]!.correlation_id;
    assert.ok(
      Number.isInteger(unknownId) && (unknownId as number) > 0,
      `correlation_id ${String(unknownId)}`,
    );
    assert.deepEqual(x.answers[0], {
      action: 'webrtc:offer',
      correlation_id: unknownId,
      status: 'error',
      session_id: 's-unknown',
      message: 'no agent serves device "vplc-nowhere"',
      code: 'TG_ERR_CONTAINER_NOT_FOUND',
    });
    assert.equal(a.offers.length, 0);

    a.devices.push({ name: 'vplc-late-2', state: 'running' });
    x.offer('s-late', 'vplc-late-2');
    await waitFor('answer for the new device', () => x.answers.length === 2);
    assert.equal(x.answers[1]!.status, 'success');
    assert.equal(a.offers[0]?.device_id, 'vplc-late-2');
    // The answer carries the correlation_id the agent was sent, and a new one, not the refused offer's.
    assert.equal(x.answers[1]!.correlation_id, a.offers[0]?.correlation_id);
    assert.notEqual(x.answers[1]!.correlation_id, unknownId);

    x.socket.emit('webrtc:offer', { session_id: 's-bad', device_id: 'vplc-late-1', sdp_type: 'offer' });
    await waitFor('invalid payload answer', () => x.answers.length === 3);
    assert.equal(x.answers[2]!.status, 'error');
    assert.equal(x.answers[2]!.code, 'TG_ERR_INVALID_PAYLOAD');
    assert.match(String(x.answers[2]!.message), /sdp/);
    await Promise.all([a.close(), x.close()]);
  });

  void it('relays an agent refusal, refuses a duplicate session id, and times out a silent agent', async () => {
    const a = await agent('agent-picky', ['vplc-p1', 'vplc-silent']);
    a.reply = (offer) =>
      offer.device_id === 'vplc-silent'
        ? 'no-ack'
        : {
            action: 'webrtc:offer',
            correlation_id: offer.correlation_id,
            status: 'error',
            session_id: offer.session_id,
            message: 'host capacity reached',
            code: 'TG_ERR_CAPACITY_HOST',
          };
    const x = await browser();
    const y = await browser();
    x.offer('s-refused', 'vplc-p1');
    await waitFor('refusal', () => x.answers.length === 1);
    assert.equal(x.answers[0]!.status, 'error');
    assert.equal(x.answers[0]!.code, 'TG_ERR_CAPACITY_HOST');
    assert.equal(x.answers[0]!.message, 'host capacity reached');

    x.offer('s-silent', 'vplc-silent');
    await waitFor('offer at the agent', () => a.offers.length === 2);
    y.offer('s-silent', 'vplc-p1');
    await waitFor('duplicate refused', () => y.answers.length === 1);
    assert.equal(y.answers[0]!.code, 'TG_ERR_DUPLICATE_SESSION');
    assert.equal(a.offers.length, 2);

    await waitFor('timeout answer', () => x.answers.length === 2, 5000);
    assert.equal(x.answers[1]!.status, 'error');
    assert.match(String(x.answers[1]!.message), /did not answer/);
    await waitFor('agent told to drop the session', () => a.disconnects.length === 1);
    assert.equal(cloud.sessionCount, 0);
    await Promise.all([a.close(), x.close(), y.close()]);
  });

  void it("relays a resume offer with its token and offset, in place of the same browser's route only", async () => {
    const a = await agent('agent-resume', ['vplc-r1']);
    const x = await browser();
    const y = await browser();
    x.offer('s-r1', 'vplc-r1');
    await waitFor('first answer', () => x.answers.length === 1);
    assert.equal(a.offers[0]!.resume_token, undefined, 'a plain offer has no resume fields');

    // The same browser, its peer connection dropped: the resume offer replaces its live route.
    x.offer('s-r1', 'vplc-r1', { token: 'tok-1', offset: 4096 });
    await waitFor('resume answer', () => x.answers.length === 2);
    assert.equal(x.answers[1]!.status, 'success');
    assert.equal(a.offers[1]!.resume_token, 'tok-1');
    assert.equal(a.offers[1]!.resume_offset, 4096);
    assert.equal(a.disconnects.length, 0, 'the agent is not told to end the session');
    assert.equal(cloud.sessionCount, 1);

    // Another browser cannot take the route over, token or not.
    y.offer('s-r1', 'vplc-r1', { token: 'tok-1', offset: 0 });
    await waitFor('takeover refused', () => y.answers.length === 1);
    assert.equal(y.answers[0]!.code, 'TG_ERR_DUPLICATE_SESSION');
    assert.equal(a.offers.length, 2);

    // A bad offset is refused at the edge, not relayed.
    y.socket.emit('webrtc:offer', {
      session_id: 's-r2',
      device_id: 'vplc-r1',
      sdp: 'v=0',
      sdp_type: 'offer',
      resume_token: 'tok',
      resume_offset: -1,
    });
    await waitFor('bad offset refused', () => y.answers.length === 2);
    assert.equal(y.answers[1]!.code, 'TG_ERR_INVALID_PAYLOAD');
    assert.equal(a.offers.length, 2);
    await Promise.all([a.close(), x.close(), y.close()]);
  });

  void it('tells browsers when the agent of their session goes away mid-session', async () => {
    const a = await agent('agent-doomed', ['vplc-d1']);
    const b = await agent('agent-stays', ['vplc-s1']);
    const x = await browser();
    const y = await browser();
    x.offer('s-d1', 'vplc-d1');
    y.offer('s-d2', 'vplc-d1');
    x.offer('s-s1', 'vplc-s1');
    await waitFor('answers', () => x.answers.length === 2 && y.answers.length === 1);

    await a.close();
    await waitFor(
      'agent-gone at both browsers',
      () => x.disconnects.length === 1 && y.disconnects.length === 1,
    );
    assert.deepEqual(x.disconnects[0], { session_id: 's-d1', reason: 'agent-gone' });
    assert.deepEqual(y.disconnects[0], { session_id: 's-d2', reason: 'agent-gone' });

    // The other agent's session is untouched and the device is no longer routable.
    assert.equal(b.disconnects.length, 0);
    x.offer('s-d3', 'vplc-d1');
    await waitFor('unknown device now', () => x.answers.length === 3);
    assert.equal(x.answers[2]!.code, 'TG_ERR_CONTAINER_NOT_FOUND');
    const listed = (await (await fetch(`${url}/api/devices`, withToken)).json()) as {
      devices: Array<{ name: string }>;
    };
    assert.ok(!listed.devices.some((d) => d.name === 'vplc-d1'));

    // An agent ending a session itself tells the browser.
    b.socket.emit('webrtc:disconnect', { session_id: 's-s1', reason: 'idle-timeout' });
    await waitFor('agent-ended at browser', () => x.disconnects.length === 2);
    assert.deepEqual(x.disconnects[1], { session_id: 's-s1', reason: 'idle-timeout' });
    await Promise.all([b.close(), x.close(), y.close()]);
  });

  void it('refuses an agent with a wrong or missing token, and still lets browsers with theirs in', async () => {
    await assert.rejects(
      connectFakeAgent(url, 'intruder', ['vplc-evil'], 'wrong-token'),
      /agent token refused/,
    );
    const noToken = io(url, { transports: ['websocket'], reconnection: false, auth: { role: 'agent' } });
    const err = await new Promise<Error>((resolve) => noToken.once('connect_error', resolve));
    noToken.close();
    assert.match(err.message, /agent token refused/);
    assert.equal((err as Error & { data?: { code?: string } }).data?.code, 'TG_ERR_AGENT_TOKEN_REFUSED');
    assert.equal(cloud.agentCount, 0);

    const x = await browser();
    x.offer('s-evil', 'vplc-evil');
    await waitFor('unknown device', () => x.answers.length === 1);
    assert.equal(x.answers[0]!.code, 'TG_ERR_CONTAINER_NOT_FOUND');
    await x.close();
  });
});
