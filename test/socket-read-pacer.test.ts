/**
 * SocketReadPacer on a real unix socket, as the exec's socket is: while output streams, the writes that
 * come during a pause are taken by one read; an echo (`streaming = false`, input written) and output
 * that does not stream are read the moment they come; a read that found a backlog is not paused after;
 * closing ends a pause; nothing is lost or reordered. The pauses are long (seconds) so that what the
 * kernel gathered cannot depend on the machine's speed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_PACE, SocketReadPacer, type PaceOptions } from '../workers/SocketReadPacer.js';

const LONG_PAUSE_MS = 3_000;
/** The read size the test pacers aim at: a read of 4× this is a backlog, not paused after. */
const TARGET_BYTES = 1024;

/** A pause of `ms` whatever the rate, so what the kernel gathers cannot depend on the machine's speed. */
const fixed = (ms: number): PaceOptions => ({
  minPauseMs: ms,
  maxPauseMs: ms,
  targetReadBytes: TARGET_BYTES,
});

/** A connected pair: `writer` is the engine's end, `reader` the agent's, read in paused mode. */
interface Pair {
  writer: net.Socket;
  reader: net.Socket;
  /** Every read Node made of the reader's socket, as it made it. */
  reads: string[];
  /** Resolves once the reads hold `text` in all. */
  received(text: string): Promise<void>;
  close(): void;
}

let dir: string;
let server: net.Server;
let accepted: ((socket: net.Socket) => void) | undefined;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'termgate-pacer-'));
  server = net.createServer((socket) => accepted?.(socket));
  await new Promise<void>((resolve) => server.listen(path.join(dir, 'exec.sock'), resolve));
});
after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

async function connect(pauseMs: number): Promise<Pair & { pacer: SocketReadPacer }> {
  const writerP = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const reader = net.connect(path.join(dir, 'exec.sock'));
  await new Promise((resolve) => reader.once('connect', resolve));
  const writer = await writerP;
  const pacer = new SocketReadPacer(reader, fixed(pauseMs));
  // Counts Node's reads: each one is one push into the paused stream.
  const reads: string[] = [];
  const push = reader.push.bind(reader);
  reader.push = (chunk: unknown, encoding?: BufferEncoding) => {
    if (Buffer.isBuffer(chunk)) reads.push(chunk.toString());
    return push(chunk, encoding);
  };
  // Drained as it comes, as OutputFlow does outside a hold: only the pacer decides when Node reads.
  reader.on('readable', () => {
    while (reader.read() !== null);
  });
  const received = async (text: string) => {
    while (reads.join('') !== text) {
      assert.ok(text.startsWith(reads.join('')), `read so far: ${JSON.stringify(reads.join(''))}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  return {
    writer,
    reader,
    reads,
    pacer,
    received,
    close: () => {
      pacer.close();
      writer.destroy();
      reader.destroy();
    },
  };
}

/** Writes each piece as one write, the next once the last has left. */
async function writeEach(socket: net.Socket, pieces: string[]): Promise<void> {
  for (const piece of pieces) await new Promise<void>((resolve) => socket.write(piece, () => resolve()));
}

/** A connected pair on a pacer resting `pauseMs` after each read, closed whatever `body` does. */
async function withPair(
  pauseMs: number,
  body: (pair: Pair & { pacer: SocketReadPacer }) => Promise<void>,
): Promise<void> {
  const pair = await connect(pauseMs);
  try {
    await body(pair);
  } finally {
    pair.close();
  }
}

/** Output streams and `first` is read: the socket now rests. */
async function restAfter(pair: Pair & { pacer: SocketReadPacer }, first: string): Promise<void> {
  pair.pacer.streaming = true;
  await writeEach(pair.writer, [first]);
  await pair.received(first);
}

const PIECES = Array.from({ length: 50 }, (_, i) => `line ${String(i).padStart(3, '0')}\n`);

void describe('SocketReadPacer', () => {
  void it('while output streams, the writes that come during a pause are taken by one read', () =>
    withPair(LONG_PAUSE_MS, async (pair) => {
      await restAfter(pair, 'first\n');
      // The socket now rests: the 50 writes wait in the kernel, then come as one read.
      await writeEach(pair.writer, PIECES);
      await pair.received(['first\n', ...PIECES].join(''));
      assert.deepEqual(pair.reads, ['first\n', PIECES.join('')]);
    }));

  void it('input written (an echo due) ends the pause at once', () =>
    withPair(60_000, async (pair) => {
      await restAfter(pair, 'output\n');
      await writeEach(pair.writer, ['x']);
      const started = performance.now();
      pair.pacer.streaming = false;
      await pair.received('output\nx');
      assert.ok(performance.now() - started < 30_000, 'the echo did not wait for the pause');
    }));

  void it('output that does not stream is read as it comes, each write on its own', () =>
    withPair(60_000, async (pair) => {
      for (const piece of PIECES.slice(0, 5)) {
        await writeEach(pair.writer, [piece]);
        await pair.received(pair.reads.join('') + piece);
      }
      assert.deepEqual(pair.reads, PIECES.slice(0, 5));
    }));

  void it('close ends a pause: what waits is read, nothing is lost', () =>
    withPair(60_000, async (pair) => {
      await restAfter(pair, 'a\n');
      await writeEach(pair.writer, PIECES);
      pair.pacer.close();
      await pair.received(['a\n', ...PIECES].join(''));
    }));

  void it('a read that found a backlog is not followed by a pause: the backlog drains at once', () =>
    withPair(60_000, async (pair) => {
      pair.pacer.streaming = true;
      const backlog = 'b'.repeat(16 * TARGET_BYTES);
      await writeEach(pair.writer, [backlog]);
      await pair.received(backlog);
      const started = performance.now();
      await writeEach(pair.writer, ['x']);
      await pair.received(`${backlog}x`);
      assert.ok(performance.now() - started < 30_000, 'the next write did not wait for a pause');
      assert.deepEqual(pair.reads, [backlog, 'x']);
    }));

  void it('each pause aims at the target read size from the rate the last read showed', () => {
    const { minPauseMs, maxPauseMs, targetReadBytes: target } = DEFAULT_PACE;
    const pacer = new SocketReadPacer(new PassThrough());
    // 2 KiB in 1 ms: the target takes 4× as long at that rate, within the bounds.
    assert.equal(pacer.pauseFor(target / 4, 1), Math.min(maxPauseMs, 4));
    assert.equal(pacer.pauseFor(target, 1), minPauseMs, 'fast output: the shortest pause');
    assert.equal(pacer.pauseFor(10, 1), maxPauseMs, 'slow output: the longest');
    assert.equal(pacer.pauseFor(100, Infinity), maxPauseMs, 'the first read after a quiet spell');
    assert.equal(pacer.pauseFor(4 * target, 1), 0, 'a backlog: no pause');
  });

  void it('a stream that is not a socket is read as it comes', () => {
    const stream = new PassThrough();
    const pacer = new SocketReadPacer(stream, fixed(LONG_PAUSE_MS));
    pacer.streaming = true;
    stream.write('one');
    stream.write('two');
    assert.equal(String(stream.read()), 'onetwo');
    pacer.close();
  });
});
