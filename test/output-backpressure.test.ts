/**
 * OutputBackpressure (workers/OutputBackpressure.ts) on a fake link and PTY, with mocked timers: output
 * goes out as it comes, a congested link pauses the PTY (counted), a drain resumes it, and a link that
 * stays congested for the slow-consumer timeout ends the session once.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { ErrorCodes, type ErrorData } from '../common/errors.js';
import { createSessionStats, StatSlot, statsView } from '../common/protocol/session-stats.js';
import { OutputBackpressure, type OutputSink } from '../workers/OutputBackpressure.js';
import { ReplayBuffer } from '../workers/ReplayBuffer.js';

const TIMEOUT_MS = 2000;

class FakeLink implements OutputSink {
  congested = false;
  readonly sent: string[] = [];
  sendOutput(chunk: Buffer): void {
    this.sent.push(chunk.toString());
  }
}

describe('OutputBackpressure', () => {
  let link: FakeLink;
  let producer: string[];
  let slow: ErrorData[];
  let stats: Float64Array;
  let output: OutputBackpressure;

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
    link = new FakeLink();
    producer = [];
    slow = [];
    stats = statsView(createSessionStats());
    output = new OutputBackpressure({
      producer: { pause: () => void producer.push('pause'), resume: () => void producer.push('resume') },
      stats,
      slowConsumerTimeoutMs: TIMEOUT_MS,
      onSlowConsumer: (error) => void slow.push(error),
    });
  });
  afterEach(() => {
    output.close();
    mock.timers.reset();
  });

  /** A chunk that fills the link's buffer past its high-water mark. */
  const flood = (text: string) => {
    link.congested = true;
    output.forward(Buffer.from(text));
  };

  it('drops output before there is a link, then sends it as it comes', () => {
    output.forward(Buffer.from('lost'));
    output.sendTo(link);
    output.forward(Buffer.from('a'));
    output.forward(Buffer.from('b'));
    assert.deepEqual(link.sent, ['a', 'b']);
    assert.deepEqual(producer, []);
    assert.equal(stats[StatSlot.backpressurePauses], 0);
  });

  it('pauses the PTY on each chunk that leaves the link congested, and resumes it on drain', () => {
    output.sendTo(link);
    flood('x');
    flood('y');
    assert.deepEqual(link.sent, ['x', 'y'], 'the chunk that congests the link is still sent');
    assert.equal(stats[StatSlot.backpressurePauses], 2);
    link.congested = false;
    output.drained();
    assert.deepEqual(producer, ['pause', 'pause', 'resume']);
  });

  it('ends a browser that takes nothing for the timeout, counted from the first pause, once', () => {
    output.sendTo(link);
    flood('x');
    mock.timers.tick(TIMEOUT_MS / 2);
    flood('y'); // a later pause does not restart the clock
    mock.timers.tick(TIMEOUT_MS / 2);
    assert.deepEqual(slow, [
      { code: ErrorCodes.SLOW_CONSUMER, message: "the browser took none of the session's output for 2 s" },
    ]);
    mock.timers.tick(TIMEOUT_MS * 2);
    assert.equal(slow.length, 1);
  });

  it('stops the clock on a drain', () => {
    output.sendTo(link);
    flood('x');
    mock.timers.tick(TIMEOUT_MS - 1);
    link.congested = false;
    output.drained();
    mock.timers.tick(TIMEOUT_MS * 2);
    assert.deepEqual(slow, []);
  });

  it('keeps the PTY paused and the clock running when a drain leaves the link congested (the ack window)', () => {
    output.sendTo(link);
    flood('x');
    output.drained(); // the send buffer drained, but the browser's ack window is still full
    assert.deepEqual(producer, ['pause']);
    mock.timers.tick(TIMEOUT_MS);
    assert.equal(slow.length, 1);
  });

  it('stops the clock when the PTY goes away, without resuming it', () => {
    output.sendTo(link);
    flood('x');
    output.ptyDetached();
    mock.timers.tick(TIMEOUT_MS * 2);
    assert.deepEqual(slow, []);
    assert.deepEqual(producer, ['pause']);
  });

  it('sends nothing and ends nothing after close; close is idempotent', () => {
    output.sendTo(link);
    flood('x');
    output.close();
    output.close();
    flood('after the goodbye');
    mock.timers.tick(TIMEOUT_MS * 2);
    assert.deepEqual(link.sent, ['x']);
    assert.deepEqual(slow, []);
  });

  describe('with a replay buffer (resume)', () => {
    let replay: ReplayBuffer;
    let resumable: OutputBackpressure;

    beforeEach(() => {
      replay = new ReplayBuffer(8);
      resumable = new OutputBackpressure({
        producer: { pause: () => void producer.push('pause'), resume: () => void producer.push('resume') },
        stats,
        slowConsumerTimeoutMs: TIMEOUT_MS,
        onSlowConsumer: (error) => void slow.push(error),
        replay,
      });
    });
    afterEach(() => resumable.close());

    it('keeps what it sends, keeps (not sends) output while the browser is away, and pauses once full', () => {
      resumable.sendTo(link);
      resumable.forward(Buffer.from('abc'));
      resumable.detach();
      assert.deepEqual(producer, ['resume'], 'read on while the buffer has room');
      resumable.forward(Buffer.from('defg'));
      assert.deepEqual(producer, ['resume']);
      resumable.forward(Buffer.from('hij'));
      assert.deepEqual(producer, ['resume', 'pause'], 'the shell pauses once the buffer is full');
      assert.deepEqual(link.sent, ['abc'], 'nothing goes to the gone browser');
      assert.equal(replay.start, 0, 'nothing is dropped while the browser is away');
    });

    it('a resumed browser gets the bytes after its offset, then live output, and the shell reads again', () => {
      resumable.sendTo(link);
      resumable.forward(Buffer.from('abc'));
      resumable.detach();
      resumable.forward(Buffer.from('defg'));
      const back = new FakeLink();
      resumable.resumeTo(back, 2);
      resumable.forward(Buffer.from('h'));
      assert.equal(back.sent.join(''), 'cdefgh');
      assert.deepEqual(producer, ['resume', 'resume']);
    });

    it('a resumed browser whose buffer fills at once keeps the shell paused until it drains', () => {
      resumable.sendTo(link);
      resumable.detach();
      resumable.forward(Buffer.from('0123456789'));
      const back = new FakeLink();
      back.congested = true;
      resumable.resumeTo(back, 0);
      assert.deepEqual(producer, ['resume', 'pause', 'pause']);
      back.congested = false;
      resumable.drained();
      assert.deepEqual(producer.at(-1), 'resume');
    });
  });
});
