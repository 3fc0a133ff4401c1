/**
 * Nothing lost: 50 MB of known terminal output crosses docker exec, a worker and the data channel and
 * arrives byte-exact (sha256), in JSON mode (UTF-8 text, multi-byte characters split across chunks)
 * and in msgpack mode (raw bytes). Each transfer, and the direct-exec baseline, is bounded by its
 * progress: it fails when no byte has arrived for STALL_MS, however long the whole takes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Encoding } from '../common/protocol/terminal-messages.js';
import { BrowserPeer } from './helpers/browser-peer.js';

import { directTtyRun } from './helpers/direct-exec.js';
import { untilNoShells, untilProgress } from './helpers/progress.js';
import { useStack } from './helpers/stack.js';

const LINE = 'héllo wörld € ✓ 0123456789 the quick brown fox\n';
const LINE_BYTES = Buffer.byteLength(LINE);
const REPEAT = Math.floor((50 * 1024 * 1024) / LINE_BYTES);
const TOTAL = LINE_BYTES * REPEAT;
const START = '<<S1001>>\n';
const END = '<<E1002>>';
const STALL_MS = 30_000;

const stack = useStack({ name: 'bulk', containers: 1 });

function expectedSha256(): string {
  const hash = createHash('sha256');
  const block = Buffer.from(LINE.repeat(1000));
  let left = REPEAT;
  for (; left >= 1000; left -= 1000) hash.update(block);
  hash.update(LINE.repeat(left));
  return hash.digest('hex');
}

const COMMAND = `stty raw -echo; echo "<<S$((1000+1))>>"; yes '${LINE.trimEnd()}' | head -c ${TOTAL}; echo "<<E$((1000+2))>>"\n`;

function body(all: Buffer): Buffer {
  const from = all.indexOf(START) + START.length;
  const to = all.lastIndexOf(END);
  assert.ok(from >= START.length && to > from, 'both markers are in the output');
  return all.subarray(from, to);
}

async function bulk(encoding: Encoding): Promise<{ bytes: number; sha256: string; mbPerSecond: number }> {
  const browser = await BrowserPeer.open(stack.cloud, { device: stack.containers[0]!, encoding });
  try {
    // Raw mode: the TTY passes bytes through unchanged (no \n → \r\n); markers are computed so the
    // echo of the typed command cannot match them.
    browser.type(COMMAND);
    const started = performance.now();
    await untilProgress({
      what: `50 MB in ${encoding} mode`,
      stallMs: STALL_MS,
      progress: () => browser.outputBytes,
      done: () => browser.tail().includes(END),
    });
    const seconds = (browser.lastOutputAt - started) / 1000;
    const received = body(browser.output());
    return {
      bytes: received.length,
      sha256: createHash('sha256').update(received).digest('hex'),
      mbPerSecond: received.length / 1e6 / seconds,
    };
  } finally {
    browser.close();
  }
}

describe('bulk output', () => {
  const expected = expectedSha256();

  let baselineMbPerSecond = 0;

  it('measures the baseline: the same output through a direct dockerode TTY exec', async () => {
    const { seconds, output } = await directTtyRun(stack.containers[0]!, COMMAND, END, STALL_MS);
    const received = body(output);
    assert.equal(createHash('sha256').update(received).digest('hex'), expected);
    baselineMbPerSecond = received.length / 1e6 / seconds;
    console.log(`# bulk baseline (direct TTY exec): ${baselineMbPerSecond.toFixed(1)} MB/s`);
  });

  for (const encoding of ['json', 'msgpack'] as const) {
    it(`delivers 50 MB byte-exact in ${encoding} mode`, async () => {
      const result = await bulk(encoding);
      assert.equal(result.bytes, TOTAL);
      assert.equal(result.sha256, expected);
      const ratio = result.mbPerSecond / baselineMbPerSecond;
      console.log(
        `# bulk ${encoding}: ${(TOTAL / 1e6).toFixed(1)} MB at ${result.mbPerSecond.toFixed(1)} MB/s, ` +
          `${ratio.toFixed(2)}x the direct exec`,
      );
    });
  }

  it('leaves no shell behind', async () => {
    await untilNoShells(stack.containers);
  });
});
