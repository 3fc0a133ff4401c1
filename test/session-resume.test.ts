/**
 * Resume with exact replay (issue 13): a browser whose connection drops without a `close` comes back
 * with its session's token and the last output offset it received, on a new peer connection, and gets
 * exactly the bytes it missed, then live output: `seq 1 2000000` arrives byte-exact (sha256) across an
 * abrupt drop mid-stream and 5 s away, in JSON and in msgpack mode. A wrong token and a resume after the
 * grace are refused with their codes; the shell is gone after the grace. Real agent, Docker, and
 * node-datachannel peers on loopback; transfers are bounded by their progress.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ErrorCodes } from '../common/errors.js';
import { BROWSER_GONE } from '../common/protocol/signaling.js';
import type { Encoding } from '../common/protocol/terminal-messages.js';
import { BrowserPeer, OfferRefused, type ResumeOptions } from './helpers/browser-peer.js';
import { shellsIn } from './helpers/containers.js';
import { untilNoShells, untilProgress } from './helpers/progress.js';
import { freePort, scrapeUntil } from './helpers/metrics.js';
import { useStack } from './helpers/stack.js';

const GRACE_S = 12;
const COUNT = 2_000_000;
const START = '<<S1001>>\n';
const END = '<<E1002>>';
const STALL_MS = 30_000;
/** How far into the output the browser drops: mid-stream, well past the replay buffer's size. */
const DROP_AFTER_BYTES = 3 * 1024 * 1024;
const AWAY_MS = 5000;
const LATENCY_RESUMES = 30;

let metricsBase = '';
const stack = useStack({
  name: 'resume',
  containers: 2,
  beforeAgent: async () => {
    metricsBase = `http://127.0.0.1:${await freePort()}`;
  },
  agentArgs: () => [
    '--resume-grace',
    String(GRACE_S),
    '--metrics-listen',
    metricsBase.replace('http://', ''),
  ],
  expectCleanDrain: true,
});

/** Waits until the agent counts `n` sessions in `state` (its `termgate_sessions` gauge). */
async function untilSessions(state: string, n: number, timeoutMs = 30_000): Promise<void> {
  await scrapeUntil(
    metricsBase,
    (s) => assert.equal(s.value('termgate_sessions', { state }), n, `sessions ${state}`),
    timeoutMs,
  );
}

/** Raw mode passes bytes unchanged; the markers are computed so the typed command's echo cannot match. */
const COMMAND = `stty raw -echo; echo "<<S$((1000+1))>>"; seq 1 ${COUNT}; echo "<<E$((1000+2))>>"\n`;

function expectedSha256(): string {
  const hash = createHash('sha256');
  let lines: string[] = [];
  for (let n = 1; n <= COUNT; n++) {
    lines.push(String(n));
    if (lines.length === 10_000) {
      hash.update(lines.join('\n') + '\n');
      lines = [];
    }
  }
  if (lines.length > 0) hash.update(lines.join('\n') + '\n');
  return hash.digest('hex');
}

function body(all: Buffer): Buffer {
  const from = all.indexOf(START) + START.length;
  const to = all.lastIndexOf(END);
  assert.ok(from >= START.length && to > from, 'both markers are in the output');
  return all.subarray(from, to);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A session whose browser typed `command`, saw `marker`, then dropped without a goodbye. */
async function droppedAfter(device: string, command: string, marker: string): Promise<BrowserPeer> {
  const browser = await BrowserPeer.open(stack.cloud, { device });
  browser.type(command);
  await browser.waitForScreen(marker);
  browser.drop();
  return browser;
}

/** The code of the agent's refusal of a resume offer (fails if it is accepted). */
async function refusal(options: ResumeOptions): Promise<string> {
  const err = await BrowserPeer.resume(stack.cloud, options).then(
    () => assert.fail('the resume was accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OfferRefused, `refused by the agent: ${String(err)}`);
  return err.code;
}

/**
 * What a resume that showed nothing had to go on: the offset it asked for, what each peer holds, and the
 * range the agent keeps (asked with an offset it must refuse, which leaves the session as it is).
 */
async function resumeReport(r: {
  old: BrowserPeer;
  resumed: BrowserPeer;
  resumeOffset: number;
  device: string;
  token: string;
}): Promise<string> {
  const tail = (peer: BrowserPeer) => JSON.stringify(peer.screen().slice(-160));
  const kept = await BrowserPeer.resume(stack.cloud, {
    device: r.device,
    sessionId: r.resumed.sessionId,
    resumeToken: r.token,
    resumeOffset: 2 ** 40,
  }).then(
    (probe) => (probe.close(), 'the probe was accepted'),
    (e: unknown) => String(e),
  );
  return [
    `asked from offset ${r.resumeOffset}; the agent: ${kept}`,
    `dropped peer: last offset ${r.old.lastOffset}, screen ends ${tail(r.old)}`,
    `resumed peer: last offset ${r.resumed.lastOffset}, ${r.resumed.outputBytes} bytes, ` +
      `messages ${r.resumed.messages.map((m) => m.type).join(',')}, screen ends ${tail(r.resumed)}`,
  ].join('\n');
}

/** Resume latencies (offer sent → first replayed byte), ms, across the file. */
const latencies: number[] = [];

describe('session resume', () => {
  const expected = expectedSha256();

  for (const encoding of ['json', 'msgpack'] as Encoding[]) {
    it(`replays exactly what a dropped browser missed (${encoding})`, async () => {
      const device = stack.containers[0]!;
      const first = await BrowserPeer.open(stack.cloud, { device, encoding });
      const token = first.resumeToken;
      assert.match(token ?? '', /^[A-Za-z0-9_-]{43,}$/, 'pty_connected carries a base64url token');
      first.type(COMMAND);
      await untilProgress({
        what: `output before the drop (${encoding})`,
        stallMs: STALL_MS,
        progress: () => first.outputBytes,
        done: () => first.outputBytes >= DROP_AFTER_BYTES,
      });
      first.drop(); // mid-stream, no goodbye
      const dropped = performance.now();
      const offset = first.lastOffset;
      const before = Buffer.from(first.output());
      assert.equal(first.offsetGaps, 0, 'offsets follow on, message by message');
      await untilSessions('disconnected', 1);
      const noticed = performance.now() - dropped;
      await sleep(Math.max(0, AWAY_MS - noticed));

      const second = await BrowserPeer.resume(stack.cloud, {
        device,
        encoding,
        sessionId: first.sessionId,
        resumeToken: token!,
        resumeOffset: offset,
      });
      try {
        const connected = second.ptyConnected;
        assert.equal(connected?.type === 'pty_connected' && connected.resume_token, token);
        await untilProgress({
          what: `output after the resume (${encoding})`,
          stallMs: STALL_MS,
          progress: () => second.outputBytes,
          done: () => second.tail().includes(END),
        });
        latencies.push(second.firstOutputAt! - second.offeredAt);
        assert.equal(second.offsetGaps, 0, 'the replay starts at the offset asked for and follows on');
        const all = Buffer.concat([before, second.output()]);
        const received = body(all);
        await untilSessions('connected', 1);
        console.log(
          `# ${encoding}: dropped at ${offset} bytes (the agent noticed in ${noticed.toFixed(0)} ms), ` +
            `${second.outputBytes} after the resume, ` +
            `first replayed byte ${(second.firstOutputAt! - second.offeredAt).toFixed(1)} ms after the offer`,
        );
        assert.equal(createHash('sha256').update(received).digest('hex'), expected, 'byte-exact');
        if (encoding === 'msgpack') {
          const output = second.messages.find((m) => m.type === 'output');
          assert.ok(output?.type === 'output' && output.data instanceof Uint8Array, 'the replay is msgpack');
        }
      } finally {
        await second.end();
      }
      await untilNoShells([device]);
    });
  }

  it('refuses a wrong token and a session it does not have, and the session stays resumable', async () => {
    const device = stack.containers[1]!;
    const first = await droppedAfter(device, 'echo hi-$((40+2))\n', 'hi-42');
    const resume = { device, sessionId: first.sessionId, resumeOffset: first.lastOffset };
    const wrong = first.resumeToken!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
    assert.equal(await refusal({ ...resume, resumeToken: wrong }), ErrorCodes.RESUME_REFUSED);
    assert.equal(
      await refusal({
        ...resume,
        sessionId: 'nobody-here',
        resumeToken: first.resumeToken!,
      }),
      ErrorCodes.RESUME_REFUSED,
    );
    assert.equal(
      await refusal({
        ...resume,
        resumeToken: first.resumeToken!,
        resumeOffset: first.lastOffset + 1000,
      }),
      ErrorCodes.RESUME_OFFSET_OUT_OF_RANGE,
    );
    const back = await BrowserPeer.resume(stack.cloud, { ...resume, resumeToken: first.resumeToken! });
    try {
      back.type('echo back-$((40+3))\n');
      await back.waitForScreen('back-43');
      assert.ok(!back.screen().includes('hi-42'), 'nothing the browser already had is sent again');
    } finally {
      await back.end();
    }
    await untilNoShells([device]);
  });

  it('a browser gone from the cloud (a reloaded tab) leaves the session resumable; a plain disconnect ends it', async () => {
    const device = stack.containers[1]!;
    const first = await BrowserPeer.open(stack.cloud, { device });
    first.type('echo gone-$((40+2))\n');
    await first.waitForScreen('gone-42');
    stack.cloud.disconnect(first.sessionId, BROWSER_GONE);
    // The agent lets the link go (its channel closes) but keeps the shell.
    await first.until(() => first.channelClosed, 'the agent to let the link go');
    first.drop();
    const back = await BrowserPeer.resume(stack.cloud, {
      device,
      sessionId: first.sessionId,
      resumeToken: first.resumeToken!,
      resumeOffset: first.lastOffset,
    });
    try {
      back.type('echo again-$((40+4))\n');
      await back.waitForScreen('again-44');
      stack.cloud.disconnect(first.sessionId);
      await back.until(() => back.channelClosed, 'a plain disconnect to end the session');
    } finally {
      back.close();
    }
    await untilNoShells([device]);
  });

  it('refuses a resume after the grace, and the shell is gone by then', async () => {
    const device = stack.containers[1]!;
    const first = await droppedAfter(device, 'sleep 1000 & echo bg-$((2+2))\n', 'bg-4');
    const dropped = Date.now();
    await sleep(2000);
    assert.ok((await shellsIn(device)).length >= 2, 'shell and sleep run on while the browser is away');
    const notice = await stack.cloud.waitForDisconnectNotice(first.sessionId, (GRACE_S + 30) * 1000);
    assert.equal(notice.reason, 'resume-expired');
    assert.ok(Date.now() - dropped >= GRACE_S * 1000 - 500, 'not before the grace');
    await untilNoShells([device]);
    assert.equal(
      await refusal({
        device,
        sessionId: first.sessionId,
        resumeToken: first.resumeToken!,
        resumeOffset: first.lastOffset,
      }),
      ErrorCodes.RESUME_REFUSED,
    );
  });

  it(`measures offer → first replayed byte over ${LATENCY_RESUMES} resumes of one session`, async () => {
    const device = stack.containers[1]!;
    let peer = await BrowserPeer.open(stack.cloud, { device });
    const token = peer.resumeToken!;
    try {
      for (let i = 0; i < LATENCY_RESUMES; i++) {
        // Output written while the browser is away, so the resume has something to replay. On a loaded
        // host it may still reach the old peer before the drop: then that resume is not timed.
        // Its echo, this command's own (an earlier one's may be on the screen, replayed), shows the shell
        // has it: dropped sooner, the keystrokes could die with the connection.
        const command = `sleep 0.5; echo away-$((${i}+1000))`;
        peer.type(`${command}\n`);
        await peer.waitForScreen(command);
        peer.drop();
        // A message already on its way may still be handed to the dropped peer after drop(): its screen
        // and its last offset are read once it is surely quiet, below.
        const old = peer;
        await sleep(1000);
        const resumeOffset = peer.lastOffset;
        peer = await BrowserPeer.resume(stack.cloud, {
          device,
          sessionId: peer.sessionId,
          resumeToken: token,
          resumeOffset,
          noWait: true,
        });
        const resumed = peer;
        const marker = `away-${i + 1000}`;
        await resumed
          .until(
            () => (old.screen() + resumed.screen()).includes(marker),
            `${marker} before or after the drop`,
          )
          .catch(async (err: unknown) => {
            const report = await resumeReport({ old, resumed, resumeOffset, device, token });
            throw new Error(`resume ${i + 1} of ${LATENCY_RESUMES}: ${String(err)}\n${report}`);
          });
        // The next command is typed on this peer: its channel must be open.
        await resumed.until(() => resumed.messages.some((m) => m.type === 'pty_connected'), 'pty_connected');
        if (resumed.firstOutputAt !== undefined) latencies.push(resumed.firstOutputAt - resumed.offeredAt);
        assert.equal(resumed.offsetGaps, 0);
      }
      assert.ok(latencies.length >= LATENCY_RESUMES / 2, `${latencies.length} resumes had output to replay`);
    } finally {
      await peer.end();
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
    console.log(
      `# resume, offer → first replayed byte over ${sorted.length}: p50 ${at(0.5).toFixed(1)} ms, ` +
        `p99 ${at(0.99).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`,
    );
    await untilNoShells([device]);
  });
});
