/**
 * Nothing lost (issue 6): 50 sessions at once each receive 20 MiB of known terminal output, verified by
 * sha256 as it streams in, while the agent's RSS stays under a stated bound. Half the sessions speak
 * JSON (UTF-8 text, multi-byte characters split across chunks), half msgpack (raw bytes). The transfer
 * is bounded by progress: it fails only when no byte has arrived at any session for STALL_MS.
 */
import assert from 'node:assert/strict';
import { createHash, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import { untilNoShells, untilProgress } from './helpers/progress.js';
import { useStack } from './helpers/stack.js';

const SESSIONS = 50;
const CONTAINERS = 5;
const LINE = 'héllo wörld € ✓ 0123456789 the quick brown fox\n';
const LINE_BYTES = Buffer.byteLength(LINE);
const REPEAT = Math.floor((20 * 1024 * 1024) / LINE_BYTES);
const TOTAL = LINE_BYTES * REPEAT;
const START = Buffer.from('<<S1001>>\n');
const END = Buffer.from('<<E1002>>');
const STALL_MS = 60_000;
const stack = useStack({
  name: 'lost',
  containers: CONTAINERS,
  // Room for a setup the test peer tries again: its first try holds its slot until the setup timeout.
  agentArgs: ['--max-sessions-per-container', String(SESSIONS / CONTAINERS + 4)],
});

/**
 * The bound: the agent idles at about 100 MiB (two workers, two addon copies). Under this load each
 * session holds output in flight at every hop: the channel's 1 MiB high-water mark, usrsctp's send
 * buffers, the exec stream's socket and stream buffers, and V8's young generation of 16 KiB strings in
 * JSON mode. Measured here: about 6 MiB a session, a peak near 410 MiB for 50 sessions. 512 MiB leaves
 * room for noise and would still be blown through by any leak of the 1 GB streamed.
 */
const RSS_BOUND_MIB = 512;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Hashes the output between the start and end markers as it arrives, keeping only a few bytes. */
class StreamVerifier {
  #before = Buffer.alloc(0);
  #started = false;
  readonly #hash: Hash = createHash('sha256');
  #body = 0;
  /** Every byte fed, markers and all: what the stall detector watches. */
  received = 0;
  #trailer = Buffer.alloc(0);
  done = false;

  get bytesSoFar(): number {
    return this.#body;
  }

  feed(chunk: Buffer): void {
    this.received += chunk.length;
    let bytes = chunk;
    if (!this.#started) {
      this.#before = Buffer.concat([this.#before, bytes]);
      const at = this.#before.indexOf(START);
      if (at < 0) return;
      this.#started = true;
      bytes = this.#before.subarray(at + START.length);
      this.#before = Buffer.alloc(0);
    }
    if (this.#body < TOTAL) {
      const take = Math.min(bytes.length, TOTAL - this.#body);
      this.#hash.update(bytes.subarray(0, take));
      this.#body += take;
      bytes = bytes.subarray(take);
    }
    if (bytes.length > 0) {
      this.#trailer = Buffer.concat([this.#trailer, bytes]);
      if (this.#trailer.includes(END)) this.done = true;
    }
  }

  result(): { bytes: number; sha256: string; trailerOk: boolean } {
    return {
      bytes: this.#body,
      sha256: this.#hash.digest('hex'),
      trailerOk: this.#trailer.subarray(0, END.length).equals(END),
    };
  }
}

/** Which sessions finished and how far the others got, for a failure message. */
function progress(verifiers: StreamVerifier[]): string {
  const stuck = verifiers.flatMap((v, i) => (v.done ? [] : [`${i}: ${v.bytesSoFar} B`]));
  return `${verifiers.length - stuck.length} of ${verifiers.length} done; unfinished: ${stuck.join(', ')}`;
}

function expectedSha256(): string {
  const hash = createHash('sha256');
  const block = Buffer.from(LINE.repeat(1000));
  let left = REPEAT;
  for (; left >= 1000; left -= 1000) hash.update(block);
  hash.update(LINE.repeat(left));
  return hash.digest('hex');
}

describe('nothing lost', () => {
  it(`delivers ${SESSIONS} × 20 MiB byte-exact at once, RSS under ${RSS_BOUND_MIB} MiB`, async () => {
    const pid = stack.agent.child.pid!;
    const baseline = rssMiB(pid);
    const verifiers = Array.from({ length: SESSIONS }, () => new StreamVerifier());
    const browsers = await Promise.all(
      verifiers.map((v, i) =>
        BrowserPeer.open(stack.cloud, {
          device: stack.containers[i % CONTAINERS]!,
          encoding: i % 2 === 0 ? 'json' : 'msgpack',
          onOutput: (bytes) => v.feed(bytes),
          timeoutMs: 60_000,
        }),
      ),
    );
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(rssMiB(pid)), 250);
    const started = performance.now();
    let longestStallMs = 0;
    try {
      for (const b of browsers) {
        b.type(
          `stty raw -echo; echo "<<S$((1000+1))>>"; yes '${LINE.trimEnd()}' | head -c ${TOTAL}; echo "<<E$((1000+2))>>"\n`,
        );
      }
      ({ longestStallMs } = await untilProgress({
        what: `${SESSIONS} sessions' output`,
        stallMs: STALL_MS,
        progress: () => verifiers.reduce((sum, v) => sum + v.received, 0),
        done: () => verifiers.every((v) => v.done),
        detail: () => progress(verifiers),
      }));
    } finally {
      clearInterval(sampler);
      for (const b of browsers) b.close();
    }
    const seconds = (performance.now() - started) / 1000;
    const expected = expectedSha256();
    for (const [i, v] of verifiers.entries()) {
      const r = v.result();
      assert.equal(r.bytes, TOTAL, `session ${i} byte count`);
      assert.equal(r.sha256, expected, `session ${i} sha256`);
      assert.ok(r.trailerOk, `session ${i}: the end marker follows the body directly`);
    }
    const peak = Math.max(baseline, ...samples);
    const verified = TOTAL * SESSIONS;
    assert.ok(peak < RSS_BOUND_MIB, `agent RSS peaked at ${peak.toFixed(0)} MiB`);
    console.log(
      `# nothing-lost: ${SESSIONS} sessions, ${(verified / 1e6).toFixed(0)} MB verified by sha256 in ` +
        `${seconds.toFixed(1)} s (${(verified / 1e6 / seconds).toFixed(1)} MB/s); agent RSS baseline ` +
        `${baseline.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB (bound ${RSS_BOUND_MIB}); longest pause ` +
        `in arrival ${(longestStallMs / 1000).toFixed(1)} s (a stall fails at ${STALL_MS / 1000} s)`,
    );
    await untilNoShells(stack.containers);
  });

  it('leaves no peer in the agent: a drain finds none, exit 0', async () => {
    // Exit 0 only when every worker confirmed its drain with no peer left open (README: exit status).
    assert.equal(await stack.agent.stop('SIGTERM'), 0, stack.agent.log.slice(-2000));
  });
});
