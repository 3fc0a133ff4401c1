/**
 * `--ice-udp-port` (issue 14, point 1): hundreds of sessions, across both workers, on one UDP port. While
 * 200 sessions are open and echoing, every candidate the agent sent names PORT, every browser's selected
 * pair ends there, and the agent's sockets (read from /proc) are PORT, the workers' PORT+1 and PORT+2
 * behind it, and the front's routes on ephemeral ports. After a worker dies, its replacement takes its
 * port back and new sessions work through the same PORT.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { before, describe, it } from 'node:test';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { removeContainers, startContainers, uniquePrefix } from './helpers/containers.js';
import { untilNoShells, untilProgress } from './helpers/progress.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

const SESSIONS = 200;
const CONTAINERS = 5;
const CONCURRENCY = 20;
const STALL_MS = 60_000;
const prefix = uniquePrefix('udpport');
let cloud: TestCloud;
let containers: string[];
let agent: AgentProcess | undefined;

before(async () => {
  containers = await startContainers(prefix, CONTAINERS);
  cloud = await TestCloud.start();
});

onTeardown(async () => {
  await agent?.stop('SIGKILL');
  await cloud?.close();
  await removeContainers(containers ?? []);
});

/** A port P with P, P+1 and P+2 free on loopback right now (the front and two workers). */
async function freePortRun(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    if ((await udpFree(port)) && (await udpFree(port + 1)) && (await udpFree(port + 2))) return port;
  }
  throw new Error('no free run of three UDP ports found on 127.0.0.1');
}

/** The agent's sockets within PORT..PORT+2: the front's and the workers'. */
const fixedPorts = async (pid: number, port: number) =>
  (await udpPortsOf(pid)).filter((p) => p >= port && p <= port + 2);

/** Every session went through PORT: the agent's candidates name it, and each selected pair ends there. */
function assertAllOnPort(browsers: BrowserPeer[], port: number): void {
  const ports = new Set(browsers.flatMap((b) => b.agentCandidates.map((c) => c.split(' ')[5])));
  assert.deepEqual([...ports], [String(port)], "the ports in the agent's candidates");
  const ends = new Set(browsers.map((b) => b.agentEndpoint));
  assert.deepEqual([...ends], [`127.0.0.1:${port}`], "the agent's end of every selected pair");
}

function udpFree(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** The local ports of every UDP socket process `pid` holds (its fds matched to its namespace's tables). */
async function udpPortsOf(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const ports: number[] = [];
  for (const table of ['udp', 'udp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9]!)) continue;
      ports.push(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

async function echo(browser: BrowserPeer, tag: string): Promise<void> {
  browser.type(`echo ${tag}-$((6*7))\n`);
  await browser.waitForScreen(`${tag}-42`, 30_000);
}

async function openSessions(count: number): Promise<BrowserPeer[]> {
  const browsers: BrowserPeer[] = [];
  for (let start = 0; start < count; start += CONCURRENCY) {
    const settled = await Promise.allSettled(
      Array.from({ length: Math.min(CONCURRENCY, count - start) }, (_, j) =>
        BrowserPeer.open(cloud, { device: containers[(start + j) % CONTAINERS]!, timeoutMs: 60_000 }),
      ),
    );
    for (const r of settled) if (r.status === 'fulfilled') browsers.push(r.value);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) {
      for (const b of browsers) b.close();
      throw failed.reason;
    }
  }
  return browsers;
}

describe('one UDP port for every session', () => {
  it(`holds ${SESSIONS} sessions of two workers on one UDP port`, async () => {
    const port = await freePortRun();
    agent = AgentProcess.start(
      cloud.url,
      [
        '--containers',
        `${prefix}-*`,
        '--workers',
        '2',
        '--ice-udp-port',
        String(port),
        '--max-sessions-per-container',
        '64',
        '--offers-per-second',
        '1000',
      ],
      { TERMGATE_FAULT_INJECTION: '1' },
      { ipc: true },
    );
    await cloud.waitForAgent();
    const pid = agent.child.pid!;
    let browsers: BrowserPeer[] = [];
    try {
      browsers = await openSessions(SESSIONS);
      browsers.forEach((b, i) => b.type(`echo mux-${i}-$((${i}*3))\n`));
      const echoed = () => browsers.filter((b, i) => b.screen().includes(`mux-${i}-${i * 3}`)).length;
      await untilProgress({
        what: `${SESSIONS} echoes`,
        stallMs: STALL_MS,
        progress: echoed,
        done: () => echoed() === SESSIONS,
      });
      assertAllOnPort(browsers, port);
      assert.deepEqual(
        await fixedPorts(pid, port),
        [port, port + 1, port + 2],
        'the front and the two workers',
      );

      // A worker dies: its sessions end, and its replacement listens on the port it left.
      const reply = await agent.request({ type: 'crash-worker' });
      assert.equal(reply.type, 'worker-crashed', JSON.stringify(reply));
      // The pool sends new sessions to the replacement once it runs; open some until it holds one.
      let ports: number[] = [];
      const fresh: BrowserPeer[] = [];
      for (let batch = 0; batch < 10 && ports.length < 3; batch++) {
        const batchOf = await openSessions(10);
        browsers.push(...batchOf);
        fresh.push(...batchOf);
        for (const [i, b] of batchOf.entries()) await echo(b, `fresh${batch}x${i}`);
        ports = await fixedPorts(pid, port);
      }
      assert.deepEqual(
        ports,
        [port, port + 1, port + 2],
        `after the crash, the replacement worker took the freed port again: ${agent.log.slice(-3000)}`,
      );
      assertAllOnPort(fresh, port);
      assert.ok(!agent.exited, 'the agent survived the worker crash');
    } finally {
      for (const b of browsers) b.close();
    }
    await untilNoShells(containers);
  });

  it('refuses to start when the port is taken, naming it', async () => {
    const port = await freePortRun();
    const holder = createSocket('udp4');
    await new Promise<void>((resolve) => holder.bind(port, '127.0.0.1', resolve));
    try {
      const refused = AgentProcess.start(cloud.url, [
        '--containers',
        `${prefix}-*`,
        '--ice-udp-port',
        String(port),
      ]);
      assert.equal(await refused.waitForExit(30_000), 2, 'exit status 2: it cannot run');
      assert.match(refused.log, /TG_ERR_ICE_PORT_UNAVAILABLE/);
      assert.match(refused.log, new RegExp(`cannot listen on UDP 127\\.0\\.0\\.1:${port} \\(EADDRINUSE`));
      // Exiting under worker threads still loading their module aborted the process (SIGABRT, ~4% of runs).
      assert.match(refused.log, /"workers":2,"peersClosed":0,"unconfirmed":0,"msg":"workers drained"/);
    } finally {
      holder.close();
    }
  });
});
