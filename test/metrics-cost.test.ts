/**
 * What metrics cost on the data path, measured rather than asserted: the same bulk terminal output
 * through an agent with metrics on (scraped every 100 ms, far more often than any real Prometheus) and one
 * with `--metrics-listen off`, rounds alternating so machine noise hits both alike. Printed per mode:
 * throughput (MB/s, median of rounds) and the agent process's CPU time per MB moved (all its threads).
 * With metrics off the per-session counters are still written (the idle sweep reads them), so the
 * difference is what metrics add: the delay monitors, the per-worker table, prom-client and the scrapes.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, describe, it } from 'node:test';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { removeContainers, startContainers, uniquePrefix } from './helpers/containers.js';
import { freePort, scrape, waitForStatus } from './helpers/metrics.js';
import { untilProgress } from './helpers/progress.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

const BYTES = Number(process.env.TERMGATE_COST_BYTES ?? 8 * 1024 * 1024);
const ROUNDS = Number(process.env.TERMGATE_COST_ROUNDS ?? 3);
const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux
/** Each round is bounded by its progress: it fails when no output has arrived for this long. */
const STALL_MS = 30_000;

interface Mode {
  name: 'off' | 'on';
  cloud: TestCloud;
  agent: AgentProcess;
  container: string;
  metricsBase: string | undefined;
  mbPerS: number[];
  cpuMsPerMb: number[];
  scrapes: number;
  scrapeMs: number;
  idleCpuMsPerS: number;
  cpuMsPerScrape: number;
}

const prefix = uniquePrefix('cost');
let containers: string[] = [];
const modes: Mode[] = [];

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S; // utime, stime
}

async function startMode(name: Mode['name'], container: string): Promise<Mode> {
  const cloud = await TestCloud.start();
  const port = name === 'on' ? await freePort() : undefined;
  const agent = AgentProcess.start(cloud.url, [
    '--containers',
    container,
    '--workers',
    '2',
    '--log-level',
    'warn',
    ...(port ? ['--metrics-listen', `127.0.0.1:${port}`] : []),
  ]);
  await cloud.waitForAgent();
  const metricsBase = port ? `http://127.0.0.1:${port}` : undefined;
  if (metricsBase) await waitForStatus(metricsBase, '/readyz', 200);
  return {
    name,
    cloud,
    agent,
    container,
    metricsBase,
    mbPerS: [],
    cpuMsPerMb: [],
    scrapes: 0,
    scrapeMs: 0,
    idleCpuMsPerS: NaN,
    cpuMsPerScrape: NaN,
  };
}

async function round(mode: Mode): Promise<void> {
  const browser = await BrowserPeer.open(mode.cloud, { device: mode.container, encoding: 'msgpack' });
  let scraping = mode.metricsBase !== undefined;
  const scraper = (async () => {
    while (scraping) {
      const t0 = performance.now();
      await scrape(mode.metricsBase!);
      mode.scrapeMs += performance.now() - t0;
      mode.scrapes++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const cpu0 = await cpuSeconds(mode.agent.child.pid!);
    const t0 = performance.now();
    browser.type(`yes | head -c ${BYTES}; echo; echo END-$((1+1))\n`);
    await untilProgress({
      what: `${BYTES} bytes with metrics ${mode.name}`,
      stallMs: STALL_MS,
      progress: () => browser.outputBytes,
      done: () => browser.tail().includes('END-2\r\n'),
    });
    const seconds = (browser.lastOutputAt - t0) / 1000;
    const cpu = (await cpuSeconds(mode.agent.child.pid!)) - cpu0;
    const mb = browser.outputBytes / 1e6;
    assert.ok(browser.outputBytes >= BYTES, `${browser.outputBytes} bytes received`);
    mode.mbPerS.push(mb / seconds);
    mode.cpuMsPerMb.push((cpu * 1000) / mb);
  } finally {
    scraping = false;
    await scraper;
    browser.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

before(
  async () => {
    containers = await startContainers(prefix, 2);
    modes.push(await startMode('off', containers[0]!), await startMode('on', containers[1]!));
  },
  { timeout: 120_000 },
);

onTeardown(async () => {
  for (const m of modes) {
    await m.agent.stop();
    await m.cloud.close();
  }
  await removeContainers(containers);
});

/**
 * The fixed cost with no session: the agent's CPU time per second over `ms` of idling, not scraped (the
 * event-loop delay monitors are what runs); then, with metrics on, the CPU time of one scrape, from
 * `scrapes` back-to-back scrapes.
 */
async function idle(mode: Mode, ms = 8_000, scrapes = 50): Promise<void> {
  const pid = mode.agent.child.pid!;
  let cpu0 = await cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  mode.idleCpuMsPerS = (((await cpuSeconds(pid)) - cpu0) * 1000) / ((performance.now() - t0) / 1000);
  if (!mode.metricsBase) return;
  await scrape(mode.metricsBase); // warm
  cpu0 = await cpuSeconds(pid);
  for (let i = 0; i < scrapes; i++) await scrape(mode.metricsBase);
  mode.cpuMsPerScrape = (((await cpuSeconds(pid)) - cpu0) * 1000) / scrapes;
}

describe('cost of metrics on the data path', () => {
  it(`moves ${ROUNDS} × ${BYTES} bytes with metrics off and on, and prints both`, async (t) => {
    for (const mode of modes) await idle(mode);
    for (let i = 0; i < ROUNDS; i++) {
      for (const mode of i % 2 === 0 ? modes : [...modes].reverse()) await round(mode);
    }
    const on = modes.find((m) => m.name === 'on')!;
    const final = await scrape(on.metricsBase!);
    const bytesOut = final.value('termgate_terminal_bytes_total', { direction: 'to_browser' });
    assert.ok(bytesOut >= ROUNDS * BYTES);
    const messagesOut = final.value('termgate_datachannel_messages_total', { direction: 'to_browser' });
    t.diagnostic(
      `output messages average ${(bytesOut / messagesOut).toFixed(0)} bytes (from the metrics themselves)`,
    );
    for (const m of modes) {
      t.diagnostic(
        `metrics ${m.name.padEnd(3)}: ${median(m.mbPerS).toFixed(1)} MB/s median ` +
          `[${m.mbPerS.map((x) => x.toFixed(1)).join(', ')}], agent CPU ${median(m.cpuMsPerMb).toFixed(1)} ms/MB median ` +
          `[${m.cpuMsPerMb.map((x) => x.toFixed(1)).join(', ')}]` +
          (m.scrapes ? `, ${m.scrapes} scrapes of ${(m.scrapeMs / m.scrapes).toFixed(2)} ms mean` : '') +
          `; idle, no session, not scraped: ${m.idleCpuMsPerS.toFixed(1)} ms CPU per s` +
          (m.scrapes ? `; one scrape costs the agent ${m.cpuMsPerScrape.toFixed(1)} ms CPU` : ''),
      );
    }
  });
});
