/**
 * Memory per session is bounded in bytes, whatever the browser does, and session churn leaves nothing
 * behind (issue 9, point 5). A browser that never reads (its channel has no message handler, so its SCTP
 * receive window closes; helpers/stalled-browser.ts) floods pings and bad messages at the rate limit for
 * 60 s: the agent's resident set stays within a stated bound while a witness session echoes byte for
 * byte. One that takes none of its output is closed as `slow-consumer`; one that sends only refused
 * messages goes idle. Then one agent opens and closes 10 rounds of 300 sessions, and its resident set
 * after each round levels off; each round's note splits it into the JS heaps, external memory and array
 * buffers of every thread (read from the agent's metrics) and the native rest, so a leak shows where it is.
 *
 * What levels off is judged on the resident set less the part of each V8 heap that is committed but free
 * (heap_total − heap_used): V8 sizes its young generation by recent allocation (up to 3 × 16 MiB on the
 * main thread; 8 MiB in a worker, WorkerPool.ts) and keeps those pages after a collection, which moved
 * the raw resident set by up to 60 MiB between rounds with heap_used flat to 0.5 MiB, before the
 * workers' cap. A leak would grow what is left: live JS objects, external memory, array buffers or
 * native memory. The raw resident set is printed beside it.
 *
 * The churn agent runs with `--expose-gc` and TERMGATE_MEMORY_SAMPLE_GC=1, so the heaps it reports are
 * what is live, not garbage waiting for a collection, and with MALLOC_ARENA_MAX=2, as bin/termgate starts it.
 */
import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer } from './helpers/browser-peer.js';

import { freePort, scrape, scrapeUntil, type Scrape } from './helpers/metrics.js';
import { useStack } from './helpers/stack.js';
import { TestCloud } from './helpers/test-cloud.js';
import { Witness } from './helpers/witness.js';
import { untilNoShells } from './helpers/progress.js';

const MiB = 1024 * 1024;
/** 60 s as the issue asks; TERMGATE_FLOOD_SECONDS runs it longer to watch the trend. */
const FLOOD_SECONDS = Number(process.env.TERMGATE_FLOOD_SECONDS ?? 60);
/** What one never-reading session may add to the agent's resident set over the whole flood. */
const FLOOD_RSS_BOUND = 48 * MiB;
const CHURN_ROUNDS = 10;
const CHURN_SESSIONS = 300;
/**
 * Levelled off: memory in use after each round's close (see above), from round 2 on (round 1 grows the
 * pools), rises by at most this much per session: a line fitted by the median of the slopes between
 * every two rounds (Theil-Sen), which a round that lands high or low now and then (malloc keeps or gives
 * back a few MiB, up to 20 MiB either way seen here) cannot move much, where comparing two rounds or
 * two medians could. Seen on five runs here, on an idle and on a busy machine: −2.2 to 5.9 KiB a session.
 * The creep was 40 KiB a session and never levelled off.
 */
const CHURN_KIB_PER_SESSION = 12;
/**
 * Where the first rounds still rise past the bound (the allocator of another machine may take longer to
 * settle), more rounds are run, up to this many in all, and the line is fitted to the last ones: a leak
 * like the rises in every round and still fails, memory that levels off late passes.
 */
const CHURN_MAX_ROUNDS = 20;
const STALLED = fileURLToPath(new URL('./helpers/stalled-browser.js', import.meta.url));
const LAUNCHER = fileURLToPath(new URL('../../bin/termgate', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Every agent of this file runs the way bin/termgate starts it (AgentProcess passes the environment on).
process.env.MALLOC_ARENA_MAX ??= '2';

let metricsBase = '';
const stack = useStack({
  name: 'mem',
  containers: 4,
  agentArgs: () => ['--metrics-listen', metricsBase.replace('http://', ''), '--slow-consumer-timeout', '10'],
  beforeTeardown: (s) => {
    if (process.env.MEM_LOG) writeFileSync(process.env.MEM_LOG, s.agent.log);
  },
  beforeAgent: async () => {
    metricsBase = `http://127.0.0.1:${await freePort()}`;
  },
});

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

const mib = (bytes: number) => (bytes / MiB).toFixed(1);

interface StalledBrowser {
  child: ChildProcess;
  open: Promise<void>;
  send(text: string): void;
  flood(texts: string[], perSecond: number): void;
  sent(): number;
  close(): void;
}

/** Opens a session for a browser that never reads (a child process; see helpers/stalled-browser.ts). */
async function openStalled(cloud: TestCloud, device: string, sessionId: string): Promise<StalledBrowser> {
  const child = fork(STALLED, [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  let sent = 0;
  let answered = false;
  const early: Array<Record<string, unknown>> = [];
  cloud.onIce(sessionId, (ice) => {
    const m = { type: 'candidate', candidate: ice.candidate, mid: ice.sdp_mid };
    if (answered) child.send(m);
    else early.push(m);
  });
  let opened!: () => void;
  // One setup, so a fixed bound: a browser that never opens fails the test instead of holding it.
  const open = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${sessionId}: the channel did not open in 60 s`)),
      60_000,
    );
    opened = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  open.catch(() => undefined);
  const offer = new Promise<string>((resolve) => {
    child.on(
      'message',
      (m: { type: string; sdp?: string; candidate?: string; mid?: string; count?: number }) => {
        if (m.type === 'offer') resolve(m.sdp!);
        else if (m.type === 'candidate')
          cloud.sendIce({
            session_id: sessionId,
            candidate: m.candidate,
            sdp_mid: m.mid,
            sdp_mline_index: 0,
          });
        else if (m.type === 'open') opened();
        else if (m.type === 'sent') sent = m.count ?? sent;
      },
    );
  });
  const answer = await cloud.offer({
    session_id: sessionId,
    device_id: device,
    sdp: await offer,
    sdp_type: 'offer',
  });
  assert.equal(answer.status, 'success');
  child.send({ type: 'answer', sdp: answer.status === 'success' ? answer.sdp : '' });
  answered = true;
  for (const m of early) child.send(m);
  return {
    child,
    open,
    send: (text) => child.send({ type: 'send', text }),
    flood: (texts, perSecond) => child.send({ type: 'flood', texts, perSecond }),
    sent: () => sent,
    close: () => child.kill('SIGKILL'),
  };
}

describe('a browser that does not read', () => {
  it(`pinging at the rate limit for ${FLOOD_SECONDS} s holds at most ${mib(FLOOD_RSS_BOUND)} MiB of agent memory; others echo`, async () => {
    const witness = await Witness.open(stack.cloud, stack.containers[0]!);
    const stalled = await openStalled(stack.cloud, stack.containers[1]!, 'never-reads');
    try {
      await stalled.open;
      witness.start(100);
      const pid = stack.agent.child.pid!;
      const start = rssOf(pid);
      const before = await memoryNote(metricsBase, stack.agent);
      // The agent's limit is 1000 messages a second: half pings, half messages it must refuse.
      stalled.flood(['{"type":"ping"}', '{"type":"nope"}'], 1000);
      const samples: number[] = [];
      for (let s = 0; s < FLOOD_SECONDS; s += 5) {
        await sleep(5000);
        samples.push(rssOf(pid) - start);
        assert.ok(!stack.agent.exited);
      }
      stalled.child.send({ type: 'stop' });
      const report = await witness.stop();
      const metrics = await scrape(metricsBase);
      const dropped = metrics.value('termgate_replies_dropped_total');
      const afterNote = await memoryNote(metricsBase, stack.agent);
      console.log(
        `# never-reading browser, agent memory before: ${before.text}\n# and after: ${afterNote.text}`,
      );
      const growth = Math.max(...samples);
      const firstHalf = samples.slice(0, samples.length / 2);
      const lastHalf = samples.slice(samples.length / 2);
      console.log(
        `# never-reading browser: ${stalled.sent()} messages sent in ${FLOOD_SECONDS} s, ${dropped} replies dropped, ` +
          `agent RSS growth ${samples.map(mib).join(' ')} MiB (bound ${mib(FLOOD_RSS_BOUND)}), witness ${report.rounds} rounds`,
      );
      assert.ok(stalled.sent() >= FLOOD_SECONDS * 500, `the browser sent ${stalled.sent()} messages`);
      assert.ok(dropped > 0, 'replies were dropped once the browser stopped taking them');
      assert.ok(growth <= FLOOD_RSS_BOUND, `RSS grew by ${mib(growth)} MiB`);
      // Levelled off: the second half rises no higher than the first did (RSS falling when the
      // allocator gives memory back is fine).
      assert.ok(Math.max(...lastHalf) <= Math.max(...firstHalf) + 8 * MiB, 'and levelled off');
      assert.ok(report.rounds >= FLOOD_SECONDS * 2, `the witness echoed ${report.rounds} rounds`);
    } finally {
      stalled.close();
      witness.close();
    }
    await stack.cloud.waitForDisconnectNotice(witness.peer.sessionId);
  });

  it('that takes none of its output is closed as slow-consumer after --slow-consumer-timeout', async () => {
    const ptyConnected = 'termgate_offer_to_pty_connected_seconds_count';
    const connectedBefore = (await scrape(metricsBase)).value(ptyConnected);
    const stalled = await openStalled(stack.cloud, stack.containers[2]!, 'takes-nothing');
    try {
      await stalled.open;
      // It reads nothing, so the agent's metrics say when its shell is there to type into: the only
      // session opened meanwhile has its PTY connected.
      await scrapeUntil(metricsBase, (m) => assert.equal(m.value(ptyConnected), connectedBefore + 1));
      const started = performance.now();
      stalled.send(JSON.stringify({ type: 'input', data: 'yes slow-consumer-output\n' }));
      const notice = await stack.cloud.waitForDisconnectNotice('takes-nothing', 60_000);
      const seconds = (performance.now() - started) / 1000;
      assert.equal(notice.reason, 'slow-consumer');
      assert.ok(seconds >= 10, `not before the timeout (${seconds.toFixed(1)} s)`);
      console.log(`# slow consumer closed after ${seconds.toFixed(1)} s (timeout 10 s)`);
      await untilNoShells([stack.containers[2]!]);
    } finally {
      stalled.close();
    }
  });

  it('that sends only refused messages goes idle; accepted ones keep a session', async () => {
    const cloud = await TestCloud.start();
    const agent = AgentProcess.start(cloud.url, [
      '--containers',
      `${stack.prefix}-*`,
      '--workers',
      '1',
      '--idle-timeout',
      '3',
      '--sweep-interval',
      '0.5',
    ]);
    const refused = await BrowserPeer.open(cloud, { device: stack.containers[3]! });
    const pinging = await BrowserPeer.open(cloud, { device: stack.containers[3]! });
    const keepalive = setInterval(() => {
      for (const send of [
        () => refused.sendRaw('{"type":"no-such-type"}'),
        () => pinging.send({ type: 'ping' }),
      ]) {
        try {
          send();
        } catch {
          // Closed by the agent.
        }
      }
    }, 200);
    try {
      const notice = await cloud.waitForDisconnectNotice(refused.sessionId, 30_000);
      assert.equal(notice.reason, 'idle-timeout');
      assert.ok(refused.messages.some((m) => m.type === 'error' && m.code === 'TG_ERR_UNKNOWN_MESSAGE_TYPE'));
      await sleep(1000);
      pinging.messages.length = 0;
      await pinging.waitFor((m) => m.type === 'pong');
      pinging.type('echo kept-$((5+5))\n');
      await pinging.waitForScreen('kept-10');
    } finally {
      clearInterval(keepalive);
      refused.close();
      pinging.close();
      assert.equal(await agent.stop(), 0);
      await cloud.close();
    }
  });
});

describe('session churn', () => {
  it('bin/termgate starts the agent with MALLOC_ARENA_MAX=2', async () => {
    const cloud = await TestCloud.start();
    const child = spawn(
      LAUNCHER,
      ['agent', '--cloud-url', cloud.url, '--containers', 'vplc-none-*', '--metrics-listen', 'off'],
      {
        env: { ...process.env, MALLOC_ARENA_MAX: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await cloud.waitForAgent();
      // The launcher execs node, so the agent is the launched process itself: its environment says.
      const environ = readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
      assert.ok(
        environ.includes('MALLOC_ARENA_MAX=2'),
        `${environ.filter((e) => e.startsWith('MALLOC')).join()}\n${log}`,
      );
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
      await cloud.close();
    }
  });

  it(`levels off over ${CHURN_ROUNDS} rounds (at most ${CHURN_MAX_ROUNDS}) of ${CHURN_SESSIONS} sessions opened and closed in one agent`, async () => {
    const cloud = await TestCloud.start();
    const base = `http://127.0.0.1:${await freePort()}`;
    const agent = AgentProcess.start(
      cloud.url,
      [
        '--containers',
        `${stack.prefix}-*`,
        '--workers',
        '2',
        '--max-sessions-per-container',
        '100',
        '--offers-per-second',
        '1000',
        '--metrics-listen',
        base.replace('http://', ''),
      ],
      { NODE_OPTIONS: '--expose-gc', TERMGATE_MEMORY_SAMPLE_GC: '1', MALLOC_ARENA_MAX: '2' },
    );
    const rows: string[] = [];
    const after: number[] = [];
    try {
      await cloud.waitForAgent();
      rows.push(`before: ${(await memoryNote(base, agent)).text}`);
      let kibPerSession = Infinity;
      for (let round = 1; round <= CHURN_MAX_ROUNDS; round++) {
        const note = await churnRound(cloud, base, agent, round);
        after.push(note.inUse);
        rows.push(`round ${String(round).padStart(2)}: ${note.text}`);
        if (round < CHURN_ROUNDS) continue;
        // Rounds 2–10 at first (round 1 grows the pools), then the last nine.
        kibPerSession = theilSenSlope(after.slice(-(CHURN_ROUNDS - 1))) / CHURN_SESSIONS / 1024;
        if (kibPerSession <= CHURN_KIB_PER_SESSION) break;
      }
      const summary =
        `churn, ${CHURN_SESSIONS} sessions a round, after each round's close:\n# ${rows.join('\n# ')}\n` +
        `# in use over the last ${CHURN_ROUNDS - 1} rounds rises ${kibPerSession.toFixed(1)} KiB a session ` +
        `(Theil-Sen; bound ${CHURN_KIB_PER_SESSION})`;
      console.log(`# ${summary}`);
      assert.ok(
        kibPerSession <= CHURN_KIB_PER_SESSION,
        `not levelled off after ${after.length} rounds: ${summary}`,
      );
      await untilNoShells(stack.containers);
    } finally {
      const status = await agent.stop();
      await cloud.close();
      assert.equal(status, 0, `the churn agent's exit; its log ends:\n${agent.log.slice(-2000)}`);
    }
  });
});

type MemoryNote = Awaited<ReturnType<typeof memoryNote>>;

/** Opens CHURN_SESSIONS sessions 20 at a time, types in each, closes them all; the agent's memory after. */
async function churnRound(
  cloud: TestCloud,
  base: string,
  agent: AgentProcess,
  round: number,
): Promise<MemoryNote> {
  const open: BrowserPeer[] = [];
  for (let i = 0; i < CHURN_SESSIONS; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, CHURN_SESSIONS - i) }, (_, j) =>
        BrowserPeer.open(cloud, { device: stack.containers[(i + j) % 4]! }),
      ),
    );
    batch.forEach((b, j) => b.type(`echo r${round}-${i + j}-$((1+1))\n`));
    await Promise.all(batch.map((b, j) => b.waitForScreen(`r${round}-${i + j}-2`)));
    open.push(...batch);
  }
  for (const b of open) b.close();
  await Promise.all(open.map((b) => cloud.waitForDisconnectNotice(b.sessionId, 60_000)));
  await scrapeUntil(base, (s) => assert.equal(s.sum('termgate_sessions'), 0), 30_000);
  // A worker sampling window (5 s) and a margin, so every thread's numbers are from after the close.
  await sleep(6_000);
  return memoryNote(base, agent);
}

/**
 * The agent's resident set, how much of it each thread's JS side accounts for, and what is in use: the
 * resident set less the heap V8 holds committed but free.
 */
async function memoryNote(
  base: string,
  agent: AgentProcess,
): Promise<{ rss: number; inUse: number; text: string }> {
  const s: Scrape = await scrape(base);
  const rss = rssOf(agent.child.pid!);
  const kind = (k: string) => s.sum('termgate_thread_memory_bytes', { kind: k });
  const [heap, used] = [kind('heap_total'), kind('heap_used')];
  const js = heap + kind('external') + kind('array_buffers');
  const threads = new Set(s.series('termgate_thread_memory_bytes').map((x) => x.labels.thread)).size;
  const inUse = rss - (heap - used);
  return {
    rss,
    inUse,
    text:
      `rss ${mib(rss)} MiB = heaps ${mib(heap)} (used ${mib(used)}) + external ${mib(kind('external'))} ` +
      `+ array buffers ${mib(kind('array_buffers'))} over ${threads} threads + native ${mib(rss - js)}; ` +
      `in use ${mib(inUse)}`,
  };
}

/** The median of the slopes between every two points (Theil-Sen): a trend that outliers hardly move. */
function theilSenSlope(values: number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < values.length; i++)
    for (let j = i + 1; j < values.length; j++) slopes.push((values[j]! - values[i]!) / (j - i));
  const sorted = slopes.sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
