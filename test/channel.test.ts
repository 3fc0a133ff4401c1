/** The request/response channel (common/Channel.ts) over real MessagePorts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Channel, portEndpoint } from '../common/Channel.js';
import { ErrorCodes, TermgateError } from '../common/errors.js';

interface AskerSends {
  requests: {
    add: { params: { a: number; b: number }; result: number };
    fail: { params: { code: 'TG_ERR_PTY_BUSY' }; result: never };
    slow: { params: { ms: number }; result: string };
    adopt: { params: { port: MessagePort }; result: string };
    unserved: { params: object; result: never };
  };
  notifications: { tick: { n: number } };
}

interface ServerSends {
  requests: Record<never, never>;
  notifications: { tock: { n: number } };
}

function pair(options: { onListenerError?: (method: string, err: unknown) => void } = {}) {
  const { port1, port2 } = new MessageChannel();
  const asker = new Channel<AskerSends, ServerSends>(portEndpoint(port1), options);
  const server = new Channel<ServerSends, AskerSends>(portEndpoint(port2), options);
  server
    .handle('add', ({ a, b }) => a + b)
    .handle('fail', ({ code }) => {
      throw new TermgateError(code, 'busy on purpose');
    })
    .handle('slow', async ({ ms }) => {
      await new Promise((r) => setTimeout(r, ms));
      return 'late';
    })
    .handle('adopt', ({ port }) => {
      port.postMessage('hello through the adopted port');
      port.close();
      return 'adopted';
    });
  const close = () => {
    asker.close();
    server.close();
    port1.close();
    port2.close();
  };
  return { asker, server, port1, port2, close };
}

describe('Channel', () => {
  it('answers a request with its result, each reply to its own request', async () => {
    const { asker, close } = pair();
    try {
      const sums = await Promise.all([1, 2, 3, 4].map((n) => asker.request('add', { a: n, b: 10 })));
      assert.deepEqual(sums, [11, 12, 13, 14]);
      assert.equal(asker.pendingRequests, 0);
    } finally {
      close();
    }
  });

  it('rebuilds an error from the other side with its code and message', async () => {
    const { asker, close } = pair();
    try {
      await assert.rejects(asker.request('fail', { code: 'TG_ERR_PTY_BUSY' }), (err: unknown) => {
        assert.ok(err instanceof TermgateError);
        assert.equal(err.code, ErrorCodes.PTY_BUSY);
        assert.equal(err.message, 'busy on purpose');
        return true;
      });
      await assert.rejects(asker.request('unserved', {}), /nothing serves "unserved"/);
    } finally {
      close();
    }
  });

  it('fails a request at its limit with the error it names, and ignores the late reply', async () => {
    const { asker, close } = pair();
    try {
      const timeoutError = { code: ErrorCodes.WORKER_DIED, message: 'too slow' } as const;
      await assert.rejects(
        asker.request('slow', { ms: 200 }, { timeoutMs: 20, timeoutError }),
        (err: unknown) => {
          assert.ok(err instanceof TermgateError && err.code === ErrorCodes.WORKER_DIED);
          return true;
        },
      );
      await new Promise((r) => setTimeout(r, 250));
      assert.equal(asker.pendingRequests, 0);
      assert.equal(await asker.request('add', { a: 1, b: 1 }), 2, 'the channel goes on');
    } finally {
      close();
    }
  });

  it('with a stall limit, waits as long as the other side is heard from', async () => {
    const { asker, server, close } = pair();
    try {
      const ticking = setInterval(() => server.notify('tock', { n: 1 }), 10);
      // Ticks every 10 ms against a 500 ms stall limit: a busy machine's late timers stay well inside it.
      const result = await asker.request('slow', { ms: 1500 }, { stallMs: 500 });
      clearInterval(ticking);
      assert.equal(result, 'late');
      await assert.rejects(
        asker.request('slow', { ms: 3000 }, { stallMs: 500 }),
        /nothing else heard for 500 ms/,
      );
    } finally {
      close();
    }
  });

  it('fails what is pending when it closes, and when the port closes', async () => {
    const first = pair();
    const pending = first.asker.request('slow', { ms: 1000 });
    first.asker.close({ code: ErrorCodes.SHUTTING_DOWN, message: 'closing' });
    await assert.rejects(
      pending,
      (err: unknown) => err instanceof TermgateError && err.code === 'TG_ERR_SHUTTING_DOWN',
    );
    await assert.rejects(first.asker.request('add', { a: 1, b: 2 }), /the channel is closed/);
    first.close();

    const second = pair();
    const orphan = second.asker.request('slow', { ms: 1000 });
    second.port2.close(); // the other side goes away: both ends see 'close'
    await assert.rejects(orphan, /the port closed/);
    assert.ok(second.asker.closed);
    second.close();
  });

  it('delivers notifications; a listener that throws is reported and the channel goes on', async () => {
    const errors: string[] = [];
    const { asker, server, close } = pair({ onListenerError: (method) => errors.push(method) });
    try {
      const seen: number[] = [];
      let done!: () => void;
      const all = new Promise<void>((resolve) => (done = resolve));
      server.on('tick', ({ n }) => {
        if (n === 2) throw new Error('listener bug');
        seen.push(n);
        if (n === 3) done();
      });
      for (const n of [1, 2, 3]) asker.notify('tick', { n });
      await all;
      assert.deepEqual(seen, [1, 3]);
      assert.deepEqual(errors, ['tick']);
    } finally {
      close();
    }
  });

  it('transfers a port with a request', async () => {
    const { asker, close } = pair();
    const { port1, port2 } = new MessageChannel();
    try {
      const heard = new Promise((resolve) => port1.once('message', resolve));
      assert.equal(await asker.request('adopt', { port: port2 }, {}, [port2]), 'adopted');
      assert.equal(await heard, 'hello through the adopted port');
    } finally {
      port1.close();
      close();
    }
  });
});
