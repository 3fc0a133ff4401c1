/**
 * The ICE UDP front on its own, with plain UDP sockets on loopback playing browsers and workers: a STUN
 * Binding request opens a route and reaches every worker; the worker that answers gets the route, and
 * its packets reach the browser from the public port; other workers are not heard for that browser;
 * nothing but a Binding request opens a route; routes are bounded, and unanswered ones make room for
 * each other; one nobody answered is closed.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:dgram';
import { after, describe, it } from 'node:test';
import {
  clearFrontRoute,
  createFrontRoutes,
  readFrontRoute,
  writeFrontRoute,
} from '../common/protocol/front-routes.js';
import { isStunBindingRequest } from '../common/stun.js';
import { IceUdpFront, type IceUdpFrontOptions } from '../src/ice-front/IceUdpFront.js';
import { closeUdpSockets, nextDatagram as next, udp } from './helpers/udp.js';

const open: Array<{ close(): void }> = [];
/** Shared by the fronts of this file; each clears it when it opens. */
const routes = createFrontRoutes();
after(() => {
  for (const thing of open) thing.close();
  closeUdpSockets();
});

/** A STUN Binding request header (what opens a route), with a made-up transaction id. */
function bindingRequest(id: number): Buffer {
  const packet = Buffer.alloc(20);
  packet.writeUInt16BE(0x0001, 0);
  packet.writeUInt32BE(0x2112a442, 4);
  packet.writeUInt32BE(id, 16);
  return packet;
}

async function frontWith(workers: Socket[], limits: Partial<IceUdpFrontOptions> = {}) {
  const front = await IceUdpFront.open({
    bindAddress: '127.0.0.1',
    port: 0,
    workerPorts: workers.map((w) => w.address().port),
    workerAddress: '127.0.0.1',
    maxRoutes: 16,
    maxUnanswered: 16,
    unansweredMs: 5_000,
    idleMs: 60_000,
    routes,
    ...limits,
  });
  open.push(front);
  return front;
}

describe('ICE UDP front', () => {
  it('tells a STUN Binding request from anything else', () => {
    assert.equal(isStunBindingRequest(bindingRequest(1)), true);
    const response = bindingRequest(1);
    response.writeUInt16BE(0x0101, 0);
    assert.equal(isStunBindingRequest(response), false, 'a Binding success response');
    assert.equal(isStunBindingRequest(Buffer.from([22, 254, 253, 0])), false, 'a DTLS record');
    assert.equal(isStunBindingRequest(bindingRequest(1).subarray(0, 19)), false, 'a short packet');
  });

  it('routes a browser to the worker that answers, both ways, through one public port', async () => {
    const [w1, w2, browser, other] = await Promise.all([udp(), udp(), udp(), udp()]);
    const front = await frontWith([w1, w2]);
    const { port } = front.address;

    browser.send(bindingRequest(7), port, '127.0.0.1');
    const [at1, at2] = await Promise.all([next(w1), next(w2)]);
    assert.ok(at1 && at2, 'the first request reaches every worker');
    assert.equal(at1.from.port, at2.from.port, "from the route's one socket");
    assert.deepEqual(
      readFrontRoute(routes, at1.from.port),
      { address: '127.0.0.1', port: browser.address().port },
      'the workers can tell which browser the route stands for',
    );

    // Worker 2 owns the ufrag: it answers, to the route's socket.
    w2.send(Buffer.from('answer'), at2.from.port, '127.0.0.1');
    const back = await next(browser);
    assert.equal(back?.packet.toString(), 'answer');
    assert.equal(back?.from.port, port, 'the browser hears the public port');

    // From now on the browser's packets go to worker 2 only, DTLS or not.
    browser.send(Buffer.from('dtls'), port, '127.0.0.1');
    assert.equal((await next(w2))?.packet.toString(), 'dtls');
    assert.equal(await next(w1, 200), undefined, 'worker 1 hears nothing more of this browser');

    // Worker 1 cannot speak for the browser once worker 2 has the route; neither can anyone else.
    w1.send(Buffer.from('not mine'), at1.from.port, '127.0.0.1');
    other.send(Buffer.from('spoof'), at1.from.port, '127.0.0.1');
    assert.equal(await next(browser, 200), undefined);
    assert.deepEqual(front.counts, { routes: 1, dropped: 0 });
  });

  it('opens no route for anything but a Binding request, and at most maxRoutes', async () => {
    const [w1, a, b, c] = await Promise.all([udp(), udp(), udp(), udp()]);
    const front = await frontWith([w1], { maxRoutes: 2 });
    const { port } = front.address;
    a.send(Buffer.from('dtls from nowhere'), port, '127.0.0.1');
    assert.equal(await next(w1, 200), undefined);
    for (const [i, s] of [a, b, c].entries()) s.send(bindingRequest(i), port, '127.0.0.1');
    const reached = [await next(w1), await next(w1), await next(w1, 200)].filter(Boolean);
    assert.equal(reached.length, 2, 'the third browser found no room');
    assert.deepEqual(front.counts, { routes: 2, dropped: 2 });
  });

  it('makes room among unanswered routes: requests nobody answers cannot crowd out a session', async () => {
    const [w1, a, b, c] = await Promise.all([udp(), udp(), udp(), udp()]);
    const front = await frontWith([w1], { maxUnanswered: 2 });
    const { port } = front.address;
    a.send(bindingRequest(1), port, '127.0.0.1');
    const atWorker = await next(w1);
    assert.ok(atWorker);
    w1.send(Buffer.from('answer a'), atWorker.from.port, '127.0.0.1'); // a serves a session
    assert.equal((await next(a))?.packet.toString(), 'answer a');
    for (const [i, s] of [b, c].entries()) {
      s.send(bindingRequest(10 + i), port, '127.0.0.1');
      assert.ok(await next(w1));
    }
    // A third request nobody answers: the oldest waiting route (b's) goes, a's stays.
    const d = await udp();
    d.send(bindingRequest(20), port, '127.0.0.1');
    assert.ok(await next(w1));
    assert.deepEqual(front.counts, { routes: 3, dropped: 0 });
    a.send(Buffer.from('still here'), port, '127.0.0.1');
    assert.equal((await next(w1))?.packet.toString(), 'still here');
  });

  it('closes a route no worker answered', async () => {
    const [w1, browser] = await Promise.all([udp(), udp()]);
    const front = await frontWith([w1], { unansweredMs: 100 });
    browser.send(bindingRequest(1), front.address.port, '127.0.0.1');
    const atWorker = await next(w1);
    assert.ok(atWorker);
    assert.equal(front.counts.routes, 1);
    assert.ok(readFrontRoute(routes, atWorker.from.port));
    await new Promise((resolve) => setTimeout(resolve, 350));
    assert.equal(front.counts.routes, 0);
    assert.equal(readFrontRoute(routes, atWorker.from.port), undefined, 'its entry cleared');
  });
});

describe("the front's routes table", () => {
  it('gives back the address written for a port, IPv4 and IPv6 in their usual spelling, until cleared', () => {
    const table = createFrontRoutes();
    writeFrontRoute(table, 50001, { address: '::ffff:192.0.2.7', port: 40001 });
    writeFrontRoute(table, 50002, { address: '2001:DB8:0:0:0:0:0:1', port: 40002 });
    writeFrontRoute(table, 65535, { address: '10.99.0.2', port: 1 });
    assert.deepEqual(readFrontRoute(table, 50001), { address: '192.0.2.7', port: 40001 });
    assert.deepEqual(readFrontRoute(table, 50002), { address: '2001:db8::1', port: 40002 });
    assert.deepEqual(readFrontRoute(table, 65535), { address: '10.99.0.2', port: 1 });
    clearFrontRoute(table, 50001);
    assert.equal(readFrontRoute(table, 50001), undefined);
    for (const port of [0, -1, 65536, 1.5, NaN]) assert.equal(readFrontRoute(table, port), undefined);
  });
});
