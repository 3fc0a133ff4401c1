/**
 * OutputFlow on its own, with a stand-in for a paused stream and mocked timers: a stream's small pieces
 * are held so the next read takes more, a full buffer is taken at once, a keystroke's echo never waits,
 * congestion and holds stack, nothing is read before start or after close, and nothing is lost; after a
 * Ctrl-C under congestion, what came before the TTY's `^C` echo is flushed, and without an echo nothing.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import {
  OutputFlow,
  type InterruptFlushOptions,
  type OutputFlowOptions,
  type OutputSource,
} from '../workers/OutputFlow.js';

const OPTIONS: OutputFlowOptions = { minHoldMs: 1, maxHoldMs: 10, targetReadBytes: 32 * 1024 };
const HWM = 16 * 1024;

/** A paused stream: what arrives is buffered; `read()` takes all of it, as Readable.read() does. */
class BufferedSource implements OutputSource {
  readonly readableHighWaterMark = HWM;
  #buffered: Buffer[] = [];
  arrive(text: string): void {
    this.#buffered.push(Buffer.from(text));
  }
  read(): Buffer | null {
    if (this.#buffered.length === 0) return null;
    const all = Buffer.concat(this.#buffered);
    this.#buffered = [];
    return all;
  }
}

const FLUSH: InterruptFlushOptions = { maxHeldBytes: 64, quietMs: 100, backedUpMs: 250 };

describe('OutputFlow', () => {
  let clock = 0;
  let source: BufferedSource;
  let delivered: string[];
  let flushed: number[];
  let flow: OutputFlow;

  /** A flow over a fresh source, with the given options (the interrupt flush off unless they say). */
  const makeFlow = (options: OutputFlowOptions) =>
    new OutputFlow(
      source,
      {
        deliver: (chunk) => delivered.push(chunk.toString()),
        flushed: (bytes) => flushed.push(bytes),
      },
      options,
      () => clock,
    );

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
    clock = 1000;
    source = new BufferedSource();
    delivered = [];
    flushed = [];
    flow = makeFlow(OPTIONS);
  });
  afterEach(() => {
    flow.close();
    mock.timers.reset();
  });

  /** Moves both the flow's clock and the mocked timers on. */
  const advance = (ms: number) => {
    clock += ms;
    mock.timers.tick(ms);
  };
  /** Output arrives on the stream, which says so ('readable'). */
  const arrive = (text: string) => {
    source.arrive(text);
    flow.readable();
  };

  it('reads nothing before start, then what waited, at once', () => {
    arrive('prompt$ ');
    flow.relieve();
    assert.deepEqual(delivered, [], 'a drain before the start must not start reading');
    flow.start();
    assert.deepEqual(delivered, ['prompt$ ']);
  });

  it('holds after a small piece and then takes everything that arrived meanwhile as one piece', () => {
    flow.start();
    arrive('line 1\r\n'); // a first piece after a quiet spell: held the longest
    arrive('line 2\r\n');
    arrive('line 3\r\n');
    assert.deepEqual(delivered, ['line 1\r\n']);
    advance(OPTIONS.maxHoldMs - 1);
    assert.equal(delivered.length, 1, 'still held');
    advance(1);
    assert.deepEqual(delivered, ['line 1\r\n', 'line 2\r\nline 3\r\n']);
  });

  it('aims each hold at the target piece size from the last piece rate', () => {
    // 8 KB in 2 ms: 4 KB per ms, so 32 KB take 8 ms.
    assert.equal(flow.holdFor(8 * 1024, 2), 8);
    // A fast stream is held the shortest, a slow one, a first piece and an empty one the longest.
    assert.equal(flow.holdFor(60 * 1024, 1), OPTIONS.minHoldMs);
    assert.equal(flow.holdFor(100, 5), OPTIONS.maxHoldMs);
    assert.equal(flow.holdFor(100, Infinity), OPTIONS.maxHoldMs);
    assert.equal(flow.holdFor(0, 3), OPTIONS.maxHoldMs);
  });

  it('takes a full buffer without a hold: more is waiting', () => {
    flow.start();
    arrive('x'.repeat(HWM));
    arrive('y');
    assert.deepEqual(
      delivered.map((d) => d.length),
      [HWM, 1],
    );
    assert.equal(flow.reading, false, 'the small piece after it is followed by a hold');
  });

  it("lets a keystroke's echo through at once: input ends a hold and exempts the next piece", () => {
    flow.start();
    arrive('output');
    assert.equal(flow.reading, false, 'held after output');
    flow.inputWritten();
    assert.equal(flow.reading, true, 'input ends the hold without waiting for its timer');
    arrive('e'); // the echo
    assert.deepEqual(delivered, ['output', 'e']);
    assert.equal(flow.reading, true, 'the echo is not followed by a hold');
    arrive('more output');
    assert.equal(flow.reading, false, 'output after the echo is held again');
  });

  it('reads nothing while congested, whatever the holds do, and loses nothing', () => {
    flow.start();
    arrive('a');
    flow.congest();
    arrive('b');
    advance(OPTIONS.maxHoldMs);
    flow.inputWritten();
    assert.deepEqual(delivered, ['a'], 'congestion outlasts the hold and the input');
    flow.relieve();
    assert.deepEqual(delivered, ['a', 'b']);
  });

  it('a congested flow that is relieved during a hold waits for the hold', () => {
    flow.start();
    arrive('a');
    flow.congest();
    flow.relieve();
    arrive('b');
    assert.deepEqual(delivered, ['a']);
    advance(OPTIONS.maxHoldMs);
    assert.deepEqual(delivered, ['a', 'b']);
  });

  it('close ends the hold timer and reading', () => {
    flow.start();
    arrive('a');
    flow.close();
    arrive('b');
    advance(OPTIONS.maxHoldMs * 2);
    flow.relieve();
    assert.deepEqual(delivered, ['a']);
  });

  describe('after a Ctrl-C while output was backed up', () => {
    beforeEach(() => {
      flow.close();
      flow = makeFlow({ ...OPTIONS, interrupt: FLUSH });
    });
    /** The flood so far, the channel full, and more of it waiting in the engine. */
    const backedUpFlood = () => {
      flow.start();
      arrive('yes\r\n');
      flow.congest();
      arrive('yes\r\nyes\r\nye');
    };
    const ctrlC = () => {
      flow.inputWritten();
      flow.interrupted();
    };

    it("drops what came before the TTY's ^C echo, counts it, and goes on from the echo", () => {
      backedUpFlood();
      ctrlC();
      assert.deepEqual(delivered, ['yes\r\n'], 'the flush reads through congestion, and holds what it read');
      arrive('s\r\nyes^C\r\n/ # ');
      assert.deepEqual(delivered, ['yes\r\n', '^C\r\n/ # ']);
      assert.deepEqual(flushed, ['yes\r\nyes\r\nyes\r\nyes'.length]);
      arrive('later');
      assert.equal(delivered.length, 2, 'congestion applies again once the flush is done');
      flow.relieve();
      assert.deepEqual(delivered.at(-1), 'later');
    });

    it('finds an echo split between two reads', () => {
      backedUpFlood();
      ctrlC();
      arrive('yes^');
      arrive('C\r\n');
      assert.deepEqual(delivered, ['yes\r\n', '^C\r\n']);
      assert.deepEqual(flushed, ['yes\r\nyes\r\nyeyes'.length], 'the ^ of the echo is not dropped');
    });

    it('also flushes when the channel was relieved only a moment before the key', () => {
      backedUpFlood();
      flow.relieve();
      advance(FLUSH.backedUpMs - 50);
      arrive('yes\r\n');
      ctrlC();
      arrive('yes^C');
      assert.deepEqual(delivered.at(-1), '^C');
      assert.equal(flushed.length, 1);
    });

    it('flushes nothing when output was not backed up: it is on its way already', () => {
      flow.start();
      arrive('yes\r\n');
      advance(FLUSH.backedUpMs + 1);
      ctrlC();
      arrive('yes\r\nyes^C\r\n');
      assert.deepEqual(delivered, ['yes\r\n', 'yes\r\nyes^C\r\n']);
      assert.deepEqual(flushed, []);
    });

    it('without an echo (a raw-mode program), hands on what it read, in order, after a quiet spell', () => {
      backedUpFlood();
      ctrlC();
      arrive('raw output');
      advance(FLUSH.quietMs - 1);
      assert.deepEqual(delivered, ['yes\r\n'], 'still looking for the echo');
      advance(1);
      assert.deepEqual(delivered, ['yes\r\n', 'yes\r\nyes\r\nye', 'raw output']);
      assert.deepEqual(flushed, []);
    });

    it('without an echo, hands on what it read once it holds its maximum', () => {
      backedUpFlood();
      ctrlC();
      const big = 'z'.repeat(FLUSH.maxHeldBytes);
      arrive(big);
      assert.deepEqual(delivered, ['yes\r\n', 'yes\r\nyes\r\nye', big]);
      assert.deepEqual(flushed, []);
      arrive('after');
      assert.equal(delivered.length, 3, 'congested again: the flush is over');
    });

    it('hands on what it read when the stream ends before an echo', () => {
      backedUpFlood();
      ctrlC();
      arrive('last words');
      flow.ended();
      assert.deepEqual(delivered, ['yes\r\n', 'yes\r\nyes\r\nye', 'last words']);
    });

    it('stops with close: nothing more is handed on, no timer left', () => {
      backedUpFlood();
      ctrlC();
      arrive('held');
      flow.close();
      advance(FLUSH.quietMs * 2);
      flow.ended();
      assert.deepEqual(delivered, ['yes\r\n']);
    });

    it('a second Ctrl-C during the flush changes nothing', () => {
      backedUpFlood();
      ctrlC();
      arrive('yes');
      ctrlC();
      arrive('^C');
      assert.deepEqual(delivered, ['yes\r\n', '^C']);
      assert.deepEqual(flushed, ['yes\r\nyes\r\nyeyes'.length]);
    });
  });
});
