/**
 * Where the agent's metrics endpoint can be reached from, run inside a private network namespace that
 * has `lo` and one non-loopback address (argv[2], on a veth pair with no route out; hardening-security
 * starts it there). It starts a test cloud and an agent with the DEFAULT metrics
 * address, tries `/healthz` on 127.0.0.1 and on that address (from that address), then does the same for an
 * agent told to listen on every address, as a control that the non-loopback path works at all. Prints
 * one JSON line: for each attempt, the HTTP status or the error code.
 */
import { request } from 'node:http';
import { AgentProcess } from './agent-process.js';
import { waitForStatus } from './metrics.js';
import { TestCloud } from './test-cloud.js';

const NON_LOOPBACK = process.argv[2]!;
const DEFAULT_PORT = 9464;
const CONTROL_PORT = 9465;

/** GET /healthz on host:port from `from`; the status, or the error code (ECONNREFUSED…). */
function reach(host: string, port: number, from: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/healthz', localAddress: from, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 'no status');
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

async function probe(extraArgs: string[], metrics: 'default' | 'off', port: number) {
  const cloud = await TestCloud.start();
  const agent = AgentProcess.start(
    cloud.url,
    ['--containers', 'vplc-probe-none-*', '--workers', '1', ...extraArgs],
    {},
    { metrics },
  );
  try {
    await cloud.waitForAgent();
    // Ready (pool started) before anything else: an agent stopped in its first moments waits 15 s for
    // workers that never confirm their drain.
    await waitForStatus(`http://127.0.0.1:${port}`, '/readyz', 200);
    return {
      loopback: await reach('127.0.0.1', port, '127.0.0.1'),
      nonLoopback: await reach(NON_LOOPBACK, port, NON_LOOPBACK),
    };
  } catch (err) {
    throw new Error(`${String(err)}\nagent log:\n${agent.log}`);
  } finally {
    await agent.stop();
    await cloud.close();
  }
}

const byDefault = await probe([], 'default', DEFAULT_PORT);
const allAddresses = await probe(['--metrics-listen', `0.0.0.0:${CONTROL_PORT}`], 'off', CONTROL_PORT);
console.log(JSON.stringify({ byDefault, allAddresses }));
process.exit(0);
