/**
 * What the agent does on the host as root (issue 9, points 7 and 10): the per-worker copy of the native
 * addon cannot be planted or swapped by another local user, and shells are ended for sure: the agent
 * checks at start-up that it can see and signal container processes (and refuses to start, saying what to
 * do, when it cannot), a shell that keeps forking is frozen and killed until nothing of it is left, a kill
 * that fails is reported, and the shells of a run that was SIGKILLed are ended by the next run.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  constants,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, it } from 'node:test';
import { AgentProcess, CLI } from './helpers/agent-process.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { removeContainers, shellsIn, startContainer } from './helpers/containers.js';
import { freePort, scrape, waitForStatus } from './helpers/metrics.js';
import { useStack } from './helpers/stack.js';
import { TestCloud } from './helpers/test-cloud.js';
import { untilNoShells } from './helpers/progress.js';

const ADDON_WORKER = fileURLToPath(new URL('./helpers/addon-worker.js', import.meta.url));
const PROCESS_TREE = fileURLToPath(new URL('../common/process-tree.js', import.meta.url));
const agentId = `host-test-${process.pid}`;
let shellsEnded = 0;

const stack = useStack({
  name: 'host',
  containers: 2,
  agentArgs: ['--agent-id', agentId],
  beforeTeardown: () => console.log(`# host: shells of a killed run ended by the next: ${shellsEnded}`),
});

interface AddonReport {
  copies: Array<{ dest: string; flags: number | undefined; dirMode: number }>;
  offer: boolean;
}

describe('the per-worker addon copy is private', () => {
  for (const trap of ['symlink', 'file', 'directory'] as const) {
    it(`a ${trap} planted at the old predictable name changes nothing`, async () => {
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'tg-addon-'));
      try {
        writeFileSync(path.join(tmp, 'victim'), 'victim');
        const worker = new Worker(ADDON_WORKER, {
          workerData: { trap },
          env: { ...process.env, TMPDIR: tmp },
        });
        // Listening for `exit` from the start: a worker that ends while this thread is busy has its
        // report and its exit delivered in one go, and a listener added after the report misses the exit.
        const exited = once(worker, 'exit');
        const [report] = (await Promise.race([
          once(worker, 'message'),
          once(worker, 'error').then(([e]) => Promise.reject(e as Error)),
          exited.then(([code]) =>
            Promise.reject(new Error(`the worker exited (${String(code)}) with no report`)),
          ),
        ])) as [AddonReport];
        await exited;
        assert.ok(report.offer, 'the addon loaded and works');
        assert.equal(report.copies.length, 1);
        const [copy] = report.copies;
        assert.equal(path.dirname(path.dirname(copy!.dest)), tmp, 'inside a directory of its own');
        assert.match(path.basename(path.dirname(copy!.dest)), /^termgate-ndc-\d+-.{6}$/, 'made by mkdtemp');
        assert.equal(copy!.dirMode, 0o700);
        assert.equal(copy!.flags, constants.COPYFILE_EXCL, 'created exclusively');
        // The trap and its target are as they were, and nothing else is left.
        assert.equal(readFileSync(path.join(tmp, 'victim'), 'utf8'), 'victim');
        const trapName = readdirSync(tmp).find((n) => n.startsWith('termgate-ndc-') && n.endsWith('.node'))!;
        if (trap === 'symlink')
          assert.equal(readlinkSync(path.join(tmp, trapName)), path.join(tmp, 'victim'));
        if (trap === 'file') assert.equal(readFileSync(path.join(tmp, trapName), 'utf8'), 'planted');
        assert.deepEqual(readdirSync(tmp).sort(), [trapName, 'victim'].sort(), 'the private copy is gone');
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
});

describe('shell cleanup is verified, not assumed', () => {
  it('refuses to start outside the host PID namespace, saying what to do', () => {
    // A PID namespace of its own, with /proc to match: container processes are not visible from there.
    const result = spawnSync(
      'unshare',
      [
        '--pid',
        '--fork',
        '--mount-proc',
        process.execPath,
        CLI,
        'agent',
        '--cloud-url',
        stack.cloud.url,
        '--containers',
        `${stack.prefix}-*`,
        '--metrics-listen',
        'off',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /cannot see the containers' processes.*--pid=host/);
  });

  it('refuses to start when it may not signal container processes (not root)', async () => {
    const proxy = path.join(mkdtempSync(path.join(os.tmpdir(), 'tg-sock-')), 'docker.sock');
    // The engine's socket, reachable by an unprivileged user (socat-free: a socket file the child can use).
    const relay = spawn(process.execPath, ['-e', relayScript(proxy)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await once(relay.stdout, 'data');
      const result = spawnSync(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          CLI,
          'agent',
          '--cloud-url',
          stack.cloud.url,
          '--containers',
          `${stack.prefix}-*`,
          '--docker-socket',
          proxy,
          '--metrics-listen',
          'off',
        ],
        { encoding: 'utf8', timeout: 30_000, env: { ...process.env, TMPDIR: os.tmpdir() } },
      );
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /may not signal the containers' processes \(EPERM\)/);
    } finally {
      relay.kill();
      rmSync(path.dirname(proxy), { recursive: true, force: true });
    }
  });

  it('reports a kill it is not allowed to send instead of assuming the shell is gone', () => {
    const victim = spawn('sleep', ['1000'], { stdio: 'ignore' });
    try {
      const stat = readFileSync(`/proc/${victim.pid}/stat`, 'utf8');
      const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
      const script = `import(${JSON.stringify(PROCESS_TREE)}).then(async (m) => console.log(JSON.stringify(await m.endTree({ pid: ${victim.pid}, startTime: '${startTime}' }))))`;
      const result = spawnSync(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script],
        { encoding: 'utf8', timeout: 30_000 },
      );
      const outcome = JSON.parse(result.stdout) as { gone: boolean; failures: string[] };
      assert.equal(outcome.gone, false);
      assert.ok(
        outcome.failures.some((f) => f.endsWith('EPERM')),
        outcome.failures.join(),
      );
      assert.equal(victim.exitCode, null, 'the process is still there, and the caller was told');
    } finally {
      victim.kill('SIGKILL');
    }
  });

  it('ends a shell that kept forking, and the processes that left its tree, by the session tag', async () => {
    const name = `${stack.prefix}-forks`;
    // A cap on the container's processes, so the fork loop cannot hurt the host.
    await startContainer(name, ['--pids-limit', '200']);
    const browser = await BrowserPeer.open(stack.cloud, { device: name });
    try {
      // The subshell forks until the cap, then fails to fork and exits: its ~190 children are adopted by
      // the container's init and are no longer in the shell's process tree.
      browser.type('(while :; do sleep 1000 & done) 2>/dev/null & echo forking-$((2+3))\n');
      await browser.waitForScreen('forking-5');
      await until(
        async () => (await shellsIn(name)).filter((p) => p === 'sleep 1000').length >= 190,
        'the cap',
      );
      await until(
        async () => !(await shellsIn(name)).some((p) => p.startsWith('sh') && p !== 'sh'),
        'the subshell to exit',
        5000,
      ).catch(() => undefined);
      browser.send({ type: 'close' });
      await stack.cloud.waitForDisconnectNotice(browser.sessionId);
      await untilNoShells([name], 10_000);
    } finally {
      browser.close();
      await removeContainers([name]);
    }
  });

  it('ends the shells of a run that was SIGKILLed with 20 sessions open, and only those', async () => {
    const [a, b] = stack.containers as [string, string];
    // A bystander: another agent (another id) with a session of its own, which must keep its shell.
    const otherCloud = await TestCloud.start();
    const other = AgentProcess.start(otherCloud.url, [
      '--containers',
      `${stack.prefix}-*`,
      '--agent-id',
      `${agentId}-other`,
    ]);
    await otherCloud.waitForAgent();
    const bystander = await BrowserPeer.open(otherCloud, { device: a });
    const browsers: BrowserPeer[] = [];
    try {
      for (let i = 0; i < 20; i += 5) {
        browsers.push(
          ...(await Promise.all(
            Array.from({ length: 5 }, (_, j) =>
              BrowserPeer.open(stack.cloud, { device: i + j < 10 ? a : b }),
            ),
          )),
        );
      }
      assert.equal(await stack.agent.stop('SIGKILL'), 'SIGKILL');
      for (const br of browsers) br.close();
      // Closing the exec streams did not end them (moby#9098): 21 shells, 20 of the dead run.
      const left = (await shellsIn(a)).length + (await shellsIn(b)).length;
      assert.equal(left, 21, 'the killed run left its shells');
      const port = await freePort();
      stack.agent = AgentProcess.start(stack.cloud.url, [
        '--containers',
        `${stack.prefix}-*`,
        '--workers',
        '2',
        '--agent-id',
        agentId,
        '--metrics-listen',
        `127.0.0.1:${port}`,
      ]);
      await stack.cloud.waitForAgent();
      // The new run ended the orphans before it served: its metrics, up only after that, say how many.
      const metrics = `http://127.0.0.1:${port}`;
      await waitForStatus(metrics, '/healthz', 200);
      const orphans = await scrape(metrics);
      const ended = orphans.value('termgate_orphan_shells_total', { result: 'ended' });
      assert.ok(ended >= 20, `ended ${ended}`);
      assert.equal(orphans.value('termgate_orphan_shells_total', { result: 'failed' }), 0);
      shellsEnded = ended;
      await until(
        async () => (await shellsIn(a)).length + (await shellsIn(b)).length === 1,
        'only the bystander shell',
      );
      bystander.type('echo bystander-$((3*3))\n');
      await bystander.waitForScreen('bystander-9');
    } finally {
      for (const br of browsers) br.close();
      bystander.close();
      assert.equal(await other.stop(), 0);
      await otherCloud.close();
    }
    await untilNoShells(stack.containers);
  });
});

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A tiny relay from a socket anyone may use to the engine's (for the unprivileged agent). */
function relayScript(socket: string): string {
  return `
    const net = require('node:net'); const fs = require('node:fs');
    const server = net.createServer((c) => { const u = net.connect('/var/run/docker.sock'); c.pipe(u).pipe(c); c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); });
    server.listen(${JSON.stringify(socket)}, () => { fs.chmodSync(${JSON.stringify(socket)}, 0o666); fs.chmodSync(require('node:path').dirname(${JSON.stringify(socket)}), 0o755); console.log('ready'); });
  `;
}
