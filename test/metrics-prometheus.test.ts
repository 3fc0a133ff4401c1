/**
 * A real Prometheus scrapes a real agent: with sessions open through the test cloud, an instant query
 * through Prometheus' HTTP API returns the session count the agent reports.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { AgentProcess } from './helpers/agent-process.js';
import { BrowserPeer } from './helpers/browser-peer.js';
import { removeContainers, startContainers, uniquePrefix } from './helpers/containers.js';
import { freePort, waitForStatus } from './helpers/metrics.js';
import { PrometheusServer, type QueryResult } from './helpers/prometheus.js';
import { onTeardown } from './helpers/teardown.js';
import { TestCloud } from './helpers/test-cloud.js';

const prefix = uniquePrefix('prom');
let cloud: TestCloud | undefined;
let agent: AgentProcess | undefined;
let prometheus: PrometheusServer | undefined;
let containers: string[] = [];
let target: string;

before(
  async () => {
    containers = await startContainers(prefix, 2);
    cloud = await TestCloud.start();
    const port = await freePort();
    target = `127.0.0.1:${port}`;
    agent = AgentProcess.start(cloud.url, [
      '--containers',
      `${prefix}-*`,
      '--workers',
      '2',
      '--metrics-listen',
      target,
    ]);
    await cloud.waitForAgent();
    await waitForStatus(`http://${target}`, '/readyz', 200);
    prometheus = await PrometheusServer.start([target]);
  },
  { timeout: 120_000 },
);

onTeardown(async () => {
  await prometheus?.close();
  await agent?.stop();
  await cloud?.close();
  await removeContainers(containers);
});

function scalar(r: QueryResult): number {
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'success');
  const result = r.body.data?.result ?? [];
  assert.equal(result.length, 1, `one series expected, got ${JSON.stringify(result)}`);
  return Number(result[0]!.value[1]);
}

describe('Prometheus scraping the agent', () => {
  it('sees the target up and the sessions the agent hosts', { timeout: 120_000 }, async () => {
    await prometheus!.queryUntil(`up{job="termgate",instance="${target}"}`, (r) =>
      assert.equal(scalar(r), 1),
    );
    const peers: BrowserPeer[] = [];
    const retriesBefore = BrowserPeer.iceRetries;
    try {
      peers.push(await BrowserPeer.open(cloud!, { device: containers[0]! }));
      peers.push(await BrowserPeer.open(cloud!, { device: containers[1]! }));
      peers.push(await BrowserPeer.open(cloud!, { device: containers[1]! }));
      // A setup the test peer tried again (README, known issues) was a session on the agent too; its
      // first try lives on in a worker until the setup timeout.
      const retried = BrowserPeer.iceRetries - retriesBefore;
      const q = `sum(termgate_sessions{instance="${target}",state="connected"})`;
      await prometheus!.queryUntil(q, (r) => assert.equal(scalar(r), 3));
      await prometheus!.queryUntil(`sum(termgate_worker_sessions{instance="${target}"})`, (r) => {
        assert.ok(scalar(r) >= 3 && scalar(r) <= 3 + retried, `worker sessions: ${scalar(r)}`);
      });
      await prometheus!.queryUntil(
        `termgate_sessions_opened_total{instance="${target}",result="success"}`,
        (r) => assert.equal(scalar(r), 3 + retried),
      );
      peers.pop()!.close();
      await prometheus!.queryUntil(q, (r) => assert.equal(scalar(r), 2));
      await prometheus!.queryUntil(
        `termgate_sessions_ended_total{instance="${target}",reason="browser-closed"}`,
        (r) => assert.equal(scalar(r), 1),
      );
    } finally {
      for (const p of peers) p.close();
    }
  });
});
