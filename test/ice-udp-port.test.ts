/**
 * `--ice-udp-port` (issue 14, point 1): hundreds of sessions, across both workers, on one UDP port per
 * worker. Proven on the agent's own sockets, read from /proc: while 200 sessions are open and echoing, the
 * agent process holds exactly two UDP sockets, on PORT and PORT+1. After a worker dies, its replacement
 * takes the port back and new sessions work on it.
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

/** A port P with P and P+1 both free on loopback right now. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    if ((await udpFree(port)) && (await udpFree(port + 1))) return port;
  }
  throw new Error('no free UDP port pair found on 127.0.0.1');
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

describe('one UDP port per worker', () => {
  it(`holds ${SESSIONS} sessions on two workers with two UDP sockets, PORT and PORT+1`, async () => {
    const port = await freePortPair();
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
      // Without the mux each peer connection has a socket of its own: 200 here.
      assert.deepEqual(await udpPortsOf(pid), [port, port + 1], 'the agent holds only PORT and PORT+1');

      // A worker dies: its sessions end, and its replacement listens on the port it left.
      const reply = await agent.request({ type: 'crash-worker' });
      assert.equal(reply.type, 'worker-crashed', JSON.stringify(reply));
      // The pool sends new sessions to the replacement once it runs; open some until it holds one.
      let ports: number[] = [];
      for (let batch = 0; batch < 10 && ports.length < 2; batch++) {
        const fresh = await openSessions(10);
        browsers.push(...fresh);
        for (const [i, b] of fresh.entries()) await echo(b, `fresh${batch}x${i}`);
        ports = await udpPortsOf(pid);
      }
      assert.deepEqual(
        ports,
        [port, port + 1],
        `after the crash, the replacement worker took the freed port again: ${agent.log.slice(-3000)}`,
      );
      assert.ok(!agent.exited, 'the agent survived the worker crash');
    } finally {
      for (const b of browsers) b.close();
    }
    await untilNoShells(containers);
  });
});
