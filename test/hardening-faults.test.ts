/**
 * Faults (issue 6), one test each: a worker thread dies, the Docker engine restarts, a container is
 * killed mid-session, the signaling link drops and returns, the browser vanishes without a close, and
 * SIGTERM arrives during a flood. After each: no shell left in any container (`docker top`) and, where the
 * agent is stopped cleanly, its drain finds no peer left open (exit status 0).
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { ErrorCodes } from '../common/errors.js';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer, realOfferSdp } from './helpers/browser-peer.js';
import { docker, removeContainers, shellsIn, startContainers, uniquePrefix } from './helpers/containers.js';
import { freePort, scrape, scrapeUntil } from './helpers/metrics.js';
import { PrivateEngine } from './helpers/private-engine.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';
import { untilNoShells } from './helpers/progress.js';

const prefix = uniquePrefix('fault');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let cloud: TestCloud;
let containers: string[];
let faultsInjected = 0;
/** One per test above, two for the signaling link (an outage and a server-side drop). */
const FAULTS = 8;
/** Every agent a test started: none may outlive its test. */
const agents: AgentProcess[] = [];

before(async () => {
  containers = await startContainers(prefix, 3);
  cloud = await TestCloud.start();
});

onTeardown(async () => {
  for (const agent of agents) await agent.stop('SIGKILL');
  await cloud?.close();
  await removeContainers(containers ?? []);
});

function startAgent(
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
  options: { ipc?: boolean } = {},
): AgentProcess {
  const agent = AgentProcess.start(
    cloud.url,
    ['--containers', `${prefix}-*`, '--workers', '2', ...extra],
    env,
    options,
  );
  agents.push(agent);
  return agent;
}

/**
 * Stops the agent with SIGTERM: it exits 0, which says its drain was clean (every session had ended with
 * its reason, every worker confirmed with no peer left open; README: exit status). One exception, the
 * README's known issue: after a complete drain, the process may crash (SIGSEGV) inside the native
 * library's teardown at exit. The drain was complete if the agent closed its signaling link itself, its
 * last step after every worker thread ended (the cloud sees `client namespace disconnect`, not a broken
 * connection); that crash is counted and printed, and allowed once per file at most.
 */
async function stopClean(agent: AgentProcess): Promise<void> {
  const code = await agent.stop('SIGTERM');
  if (code === 'SIGSEGV') {
    const left = await cloud.waitForAgentGone();
    assert.ok(
      left === 'client namespace disconnect' && exitCrashes === 0,
      `crashed at exit (the cloud saw: ${left}): ${agent.log.slice(-2000)}`,
    );
    exitCrashes++;
    console.log('# known issue: the agent crashed in native teardown after a complete drain (SIGSEGV)');
    return;
  }
  assert.equal(code, 0, `the drain was clean (exit 0): ${agent.log.slice(-2000)}`);
}
let exitCrashes = 0;

async function echo(browser: BrowserPeer, tag: string, timeoutMs = 15_000): Promise<void> {
  const n = Math.floor(Math.random() * 1000);
  browser.type(`echo ${tag}-$((${n}+1))\n`);
  await browser.waitForScreen(`${tag}-${n + 1}`, timeoutMs);
}

/** Waits until the browser's session has ended on the agent (the cloud was told). */
async function closeAndWait(browsers: BrowserPeer[]): Promise<void> {
  for (const b of browsers) b.close();
  await Promise.all(browsers.map((b) => cloud.waitForDisconnectNotice(b.sessionId)));
}

describe('faults', () => {
  it('a worker thread dies: its sessions end with a reason, the pool recovers, others keep working', async () => {
    const port = await freePort();
    const metrics = `http://127.0.0.1:${port}`;
    const agent = startAgent(
      ['--metrics-listen', `127.0.0.1:${port}`],
      { TERMGATE_FAULT_INJECTION: '1' },
      { ipc: true },
    );
    await cloud.waitForAgent();
    const browsers: BrowserPeer[] = [];
    try {
      for (let i = 0; i < 6; i++)
        browsers.push(await BrowserPeer.open(cloud, { device: containers[i % 3]! }));
      const started = (await scrape(metrics)).value('termgate_pool_threads_started_total');
      // The fault injection's own reply: the thread it crashed has left the pool.
      const reply = await agent.request({ type: 'crash-worker' });
      faultsInjected++;
      assert.equal(reply.type, 'worker-crashed', JSON.stringify(reply));
      // The pool replaced it: one thread more started, two alive.
      await scrapeUntil(
        metrics,
        (m) => {
          assert.equal(m.value('termgate_pool_threads_started_total'), started + 1);
          assert.equal(m.value('termgate_pool_threads'), 2);
        },
        20_000,
      );
      // Every browser now either pongs (its worker lives) or was told its worker died.
      for (const b of browsers) {
        try {
          b.send({ type: 'ping' });
        } catch {
          // The channel is already closed.
        }
      }
      await Promise.all(
        browsers.map((b) =>
          b.until(() => b.channelClosed || b.messages.some((m) => m.type === 'pong'), 'pong or close'),
        ),
      );
      const died = browsers.filter((b) => b.channelClosed);
      const alive = browsers.filter((b) => !b.channelClosed);
      assert.ok(died.length >= 1, 'the crashed worker hosted sessions');
      assert.ok(alive.length >= 1, 'the other worker hosted sessions');
      for (const b of died) {
        assert.ok(
          b.messages.some((m) => m.type === 'pty_disconnected' && m.reason === 'worker-died'),
          'the browser was told why',
        );
        assert.equal((await cloud.waitForDisconnectNotice(b.sessionId)).reason, 'worker-died');
      }
      for (const [i, b] of alive.entries()) await echo(b, `alive${i}`);
      const fresh = await BrowserPeer.open(cloud, { device: containers[0]! });
      browsers.push(fresh);
      await echo(fresh, 'fresh');
      assert.ok(!agent.exited);
      await closeAndWait(browsers.filter((b) => !died.includes(b)));
      await untilNoShells(containers);
    } finally {
      for (const b of browsers) b.close();
      await stopClean(agent);
    }
  });

  it('the Docker engine restarts: sessions get pty_disconnected, new sessions work once it is back', async () => {
    const engine = await PrivateEngine.start();
    const names = [`${prefix}-eng-1`, `${prefix}-eng-2`];
    const agent = startAgent(['--docker-socket', engine.socket]);
    const browsers: BrowserPeer[] = [];
    try {
      for (const name of names) await engine.runContainer(name);
      await cloud.waitForAgent();
      for (const name of names) browsers.push(await BrowserPeer.open(cloud, { device: name }));
      for (const b of browsers) await echo(b, 'before');
      await engine.stop();
      faultsInjected++;
      for (const b of browsers) {
        const gone = await b.waitFor((m) => m.type === 'pty_disconnected', 20_000);
        // The engine stops its containers as it goes: whether it still answered the agent's question
        // (container-stopped) or no longer did (shell-exited) is a race of its shutdown.
        assert.ok(
          gone.type === 'pty_disconnected' &&
            ['shell-exited', 'container-stopped'].includes(gone.reason ?? ''),
          `reason: ${JSON.stringify(gone)}`,
        );
      }
      // While the engine is down: a clear refusal, and the agent stays up.
      const down = await cloud.offer({
        session_id: 'while-down',
        device_id: names[0],
        sdp: 'v=0',
        sdp_type: 'offer',
      });
      assert.equal(down.status === 'error' && down.code, 'TG_ERR_DOCKER_UNAVAILABLE');
      await engine.start();
      for (const name of names) await engine.docker('start', name);
      // The old session reconnects its terminal; a new session works.
      browsers[0]!.send({ type: 'connect_pty', container: names[0]! });
      await browsers[0]!.waitFor((m) => m.type === 'pty_connected');
      await echo(browsers[0]!, 'again');
      const fresh = await BrowserPeer.open(cloud, { device: names[1]! });
      browsers.push(fresh);
      await echo(fresh, 'after');
      await closeAndWait(browsers);
      await engine.waitForNoShells(names);
    } finally {
      for (const b of browsers) b.close();
      await stopClean(agent);
      await engine.destroy();
    }
  });

  it('a container is killed mid-session: pty_disconnected, the session and others go on', async () => {
    const [victim] = await startContainers(`${prefix}-kill`, 1);
    const agent = startAgent(['--containers', `${prefix}-*`, '--allow-container-switch']);
    await cloud.waitForAgent();
    const browsers: BrowserPeer[] = [];
    try {
      const hit = await BrowserPeer.open(cloud, { device: victim! });
      const bystander = await BrowserPeer.open(cloud, { device: containers[0]! });
      browsers.push(hit, bystander);
      hit.type('sleep 1000 & echo bg-$((1+1))\n');
      await hit.waitForScreen('bg-2');
      await docker('kill', victim!);
      faultsInjected++;
      const gone = await hit.waitFor((m) => m.type === 'pty_disconnected', 20_000);
      assert.equal(gone.type === 'pty_disconnected' && gone.reason, 'container-stopped');
      await echo(bystander, 'bystander');
      hit.send({ type: 'connect_pty', container: containers[1]! });
      await hit.waitFor((m) => m.type === 'pty_connected');
      await echo(hit, 'moved');
      await closeAndWait(browsers);
      await untilNoShells(containers);
      await docker('start', victim!);
      await untilNoShells([victim!]);
    } finally {
      for (const b of browsers) b.close();
      await stopClean(agent);
      await removeContainers([victim!]);
    }
  });

  it('the signaling link drops and returns: terminals keep working, new offers work after', async () => {
    const port = await freePort();
    const metrics = `http://127.0.0.1:${port}`;
    const agent = startAgent(['--metrics-listen', `127.0.0.1:${port}`]);
    await cloud.waitForAgent();
    const browsers: BrowserPeer[] = [];
    try {
      const established = await BrowserPeer.open(cloud, { device: containers[0]! });
      browsers.push(established);
      // 1. The cloud goes away entirely: the data path is peer to peer and keeps working.
      await cloud.stop();
      faultsInjected++;
      await scrapeUntil(metrics, (m) => assert.equal(m.value('termgate_signaling_connected'), 0), 20_000);
      await echo(established, 'during-outage');
      await cloud.restart();
      await cloud.waitForAgent();
      browsers.push(await BrowserPeer.open(cloud, { device: containers[1]! }));
      await echo(browsers[1]!, 'after-restart');
      // 2. The cloud drops the agent on purpose ('io server disconnect'): the agent reconnects itself.
      const dropped = { reason: 'io server disconnect' };
      const start = await scrape(metrics);
      cloud.dropAgent();
      faultsInjected++;
      await scrapeUntil(
        metrics,
        (m) =>
          assert.equal(
            m.value('termgate_signaling_disconnects_total', dropped),
            start.value('termgate_signaling_disconnects_total', dropped) + 1,
          ),
        20_000,
      );
      await echo(established, 'during-drop');
      // Counted after the drop, so 1 here means the agent connected again on its own.
      await scrapeUntil(metrics, (m) => assert.equal(m.value('termgate_signaling_connected'), 1), 20_000);
      await cloud.waitForAgent();
      browsers.push(await BrowserPeer.open(cloud, { device: containers[2]! }));
      await echo(browsers[2]!, 'after-drop');
      await echo(established, 'still');
      await closeAndWait(browsers);
      await untilNoShells(containers);
    } finally {
      for (const b of browsers) b.close();
      await stopClean(agent);
    }
  });

  it('the browser vanishes without a close: the session ends by timeout and the shell is gone', async () => {
    const agent = startAgent(['--idle-timeout', '3', '--sweep-interval', '0.5']);
    await cloud.waitForAgent();
    const sessionId = `vanish-${randomBytes(3).toString('hex')}`;
    const child = await openChildBrowser(sessionId, containers[2]!);
    try {
      child.send({
        type: 'send',
        text: JSON.stringify({ type: 'input', data: 'sleep 1000 & echo up-$((3+4))\n' }),
      });
      await child.waitForText('up-7');
      assert.ok((await shellsIn(containers[2]!)).length >= 2);
      child.process.kill('SIGKILL');
      faultsInjected++;
      // Nothing tells the agent the browser is gone: the idle timeout (3 s) ends the session before ICE
      // would give up on the peer (10 s disconnected).
      const notice = await cloud.waitForDisconnectNotice(sessionId, 30_000);
      assert.equal(notice.reason, 'idle-timeout');
      await untilNoShells([containers[2]!]);
    } finally {
      child.process.kill('SIGKILL');
      await stopClean(agent);
    }
  });

  it('the browser never connects: the session and its early shell end at the setup timeout', async () => {
    const agent = startAgent(['--setup-timeout', '2']);
    await cloud.waitForAgent();
    const sessionId = `never-${randomBytes(3).toString('hex')}`;
    const started = Date.now();
    try {
      // A real offer from a peer that is closed at once: the answer goes out, nobody ever connects.
      const answer = await cloud.offer({
        session_id: sessionId,
        device_id: containers[1]!,
        sdp: await realOfferSdp(),
        sdp_type: 'offer',
      });
      assert.equal(answer.status, 'success');
      faultsInjected++;
      const notice = await cloud.waitForDisconnectNotice(sessionId, 20_000);
      assert.equal(notice.reason, 'peer-failed');
      assert.ok(Date.now() - started >= 2_000, 'not before the setup timeout');
      await untilNoShells([containers[1]!]);
    } finally {
      await stopClean(agent);
    }
  });

  it('SIGTERM during a flood: drains, no shell left, exit 0', async () => {
    const agent = startAgent(['--offers-per-second', '1000']);
    await cloud.waitForAgent();
    const browsers = await Promise.all(containers.map((device) => BrowserPeer.open(cloud, { device })));
    try {
      for (const b of browsers) b.type('yes "flood flood flood flood flood"\n');
      const pinger = setInterval(() => {
        for (const b of browsers) {
          try {
            for (let i = 0; i < 20; i++) b.send({ type: 'ping' });
          } catch {
            // Closed by the drain.
          }
        }
      }, 20);
      // An offer flood beside the output flood: real offers, so the agent admits some (each a session
      // whose browser never connects, for the drain to end too), until capacity or the drain refuses.
      const sdp = await realOfferSdp();
      const outcomes: string[] = [];
      let offering = true;
      const offers = (async () => {
        for (let n = 0; offering; n++) {
          await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              cloud
                .offer(
                  { session_id: `flood-${n}-${i}`, device_id: containers[i % 3], sdp, sdp_type: 'offer' },
                  10_000,
                )
                .then(
                  (a) => outcomes.push(a.status === 'success' ? 'success' : a.code),
                  () => outcomes.push('no answer'),
                ),
            ),
          );
        }
      })();
      await sleep(1_500);
      // A slower machine may not have answered an offer yet: the drain must meet at least one admitted.
      for (let waited = 0; !outcomes.includes('success') && waited < 60_000; waited += 100) await sleep(100);
      faultsInjected++;
      const code = await agent.stop('SIGTERM');
      offering = false;
      clearInterval(pinger);
      await offers;
      // 0: the drain was clean, every session ended and every worker confirmed with no peer left.
      assert.equal(code, 0, agent.log.slice(-2000));
      const tally = Object.entries(
        outcomes.reduce<Record<string, number>>((t, o) => ({ ...t, [o]: (t[o] ?? 0) + 1 }), {}),
      );
      const known = new Set<string>(['success', 'no answer', ...Object.values(ErrorCodes)]);
      assert.ok(outcomes.includes('success'), `no offer of the flood was accepted: ${tally.join(' ')}`);
      assert.ok(
        outcomes.every((o) => known.has(o)),
        `every offer was answered or cut off: ${tally.join(' ')}`,
      );
      console.log(`# SIGTERM during a flood: offers ${tally.map(([o, n]) => `${o} ${n}`).join(', ')}`);
      // Every browser hears why its session ended, though its goodbye queued behind the flood's output.
      const summary = (b: BrowserPeer) =>
        `${b.sessionId}: channel closed ${b.channelClosed}, states ${b.states.join(',')}, last ` +
        b.messages
          .filter((m) => m.type !== 'output')
          .slice(-3)
          .map((m) => JSON.stringify(m))
          .join(' ');
      await Promise.all(
        browsers.map((b) =>
          b
            .until(
              () => b.messages.some((m) => m.type === 'pty_disconnected' && m.reason === 'shutdown'),
              'the shutdown goodbye',
              10_000,
            )
            .catch((err: unknown) => {
              throw new Error(`${(err as Error).message}\n${browsers.map(summary).join('\n')}`);
            }),
        ),
      );
      await untilNoShells(containers);
    } finally {
      for (const b of browsers) b.close();
    }
  });
});

describe('after every fault', () => {
  it('leaves no orphan: no shell in any container, no agent process still running', async () => {
    const shells = (await Promise.all(containers.map(async (c) => shellsIn(c)))).flat();
    const running = agents.filter((a) => !a.exited).map((a) => a.child.pid);
    assert.deepEqual(shells, [], 'shells left in the containers');
    assert.deepEqual(running, [], 'agent processes still running');
    assert.equal(faultsInjected, FAULTS, 'every fault was injected');
    console.log(
      `# faults injected: ${faultsInjected}, orphans found: ${shells.length} shells, ` +
        `${running.length} of ${agents.length} agent processes`,
    );
  });
});

// --- helpers for one fault each ---------------------------------------------------------------------

interface ChildBrowser {
  process: ChildProcess;
  send(message: Record<string, unknown>): void;
  waitForText(text: string, timeoutMs?: number): Promise<void>;
}

const CHILD = fileURLToPath(new URL('./helpers/browser-child.js', import.meta.url));

/** A browser in a child process, signaled through the test cloud, that can be SIGKILLed. */
async function openChildBrowser(sessionId: string, device: string): Promise<ChildBrowser> {
  const child = fork(CHILD, [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  let text = '';
  const waiters = new Set<() => void>();
  const pending: Array<Record<string, unknown>> = [];
  let answered = false;
  cloud.onIce(sessionId, (ice) => {
    const m = { type: 'candidate', candidate: ice.candidate, mid: ice.sdp_mid };
    if (answered) child.send(m);
    else pending.push(m);
  });
  const offer = new Promise<string>((resolve) => {
    child.on(
      'message',
      (m: { type: string; sdp?: string; candidate?: string; mid?: string; text?: string }) => {
        if (m.type === 'offer') resolve(m.sdp!);
        else if (m.type === 'candidate')
          cloud.sendIce({
            session_id: sessionId,
            candidate: m.candidate,
            sdp_mid: m.mid,
            sdp_mline_index: 0,
          });
        else if (m.type === 'message') {
          text += m.text ?? '';
          for (const w of waiters) w();
        }
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
  for (const m of pending) child.send(m);
  const browser: ChildBrowser = {
    process: child,
    send: (m) => child.send(m),
    waitForText: (wanted, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${wanted} from the child browser`)), timeoutMs);
        const check = () => {
          if (!text.includes(wanted)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
  };
  await browser.waitForText('pty_connected');
  return browser;
}
