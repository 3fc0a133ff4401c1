/**
 * Who may talk to the cloud stand-in: browsers with this run's token, from the page it served, under a
 * host name it serves; agents with theirs; and only on loopback unless told `--public`. Runs inside a
 * private network namespace with only `lo`, so even the `--public` stand-in on 0.0.0.0 is reachable
 * from this machine's loopback alone.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { io } from 'socket.io-client';
import { CloudServer, type CloudRefusal } from '../standin/cloud/CloudServer.js';
import { connectFakeAgent, connectFakeBrowser, waitFor } from './helpers/cloud-fakes.js';
import { IN_NETNS, rerunInNetns } from './helpers/netns.js';

const SELF = fileURLToPath(import.meta.url);
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const AGENT_TOKEN = `agent-${Math.random().toString(36).slice(2)}`;
const BROWSER_TOKEN = `browser-${Math.random().toString(36).slice(2)}-${Date.now()}`;
const POLLING = '/socket.io/?EIO=4&transport=polling';
const WEBSOCKET = '/socket.io/?EIO=4&transport=websocket';

/** engine.io answers a refused WebSocket upgrade with 400 (its only upgrade error status), HTTP with 403. */
const refusedStatus = (path: string) => (path === WEBSOCKET ? 400 : 403);

interface RawResponse {
  status: number;
  body: string;
  /** The WebSocket upgrade was accepted (101). */
  upgraded: boolean;
}

/** One HTTP request to 127.0.0.1:port with exactly these headers; `websocket` asks for an upgrade. */
function raw(
  port: number,
  path: string,
  headers: Record<string, string>,
  websocket = false,
): Promise<RawResponse> {
  const upgrade = websocket
    ? {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': Buffer.from('termgate-key-16b').toString('base64'),
      }
    : {};
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { ...headers, ...upgrade } });
    req.once('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ status: 101, body: '', upgraded: true });
    });
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body, upgraded: false }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** Resolves with the error of a Socket.IO client that is refused; fails if it connects. */
function refusedConnect(
  url: string,
  auth: Record<string, unknown>,
): Promise<Error & { data?: { code?: string } }> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, auth });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.close();
      reject(new Error('the socket was let in'));
    });
    socket.once('connect_error', (err) => {
      socket.close();
      resolve(err);
    });
  });
}

if (!IN_NETNS) {
  rerunInNetns(SELF, 'cloud stand-in security, in a network namespace with only loopback', 120_000);
} else {
  void describe('cloud stand-in security (inside the namespace)', { timeout: 90_000 }, () => {
    let cloud: CloudServer;
    let url: string;
    let port: number;
    const refusals: CloudRefusal[] = [];

    before(async () => {
      cloud = new CloudServer({ agentToken: AGENT_TOKEN, browserToken: BROWSER_TOKEN, port: 0 });
      cloud.on('refused', (r) => refusals.push(r));
      url = await cloud.listen();
      port = Number(new URL(url).port);
    });

    after(() => cloud.close());

    void it('puts the browser token only in the URL fragment, a new one per run', async () => {
      const page = new URL(cloud.pageUrl('vplc-x'));
      assert.equal(page.origin, url);
      assert.equal(page.search, '?device=vplc-x');
      assert.equal(page.hash, `#token=${BROWSER_TOKEN}`);
      assert.ok(!url.includes(BROWSER_TOKEN), 'the agents’ URL carries no token');
      const runs = [
        new CloudServer({ agentToken: 'a', port: 0 }),
        new CloudServer({ agentToken: 'a', port: 0 }),
      ];
      try {
        const tokens = await Promise.all(
          runs.map(async (c) => {
            await c.listen();
            return new URLSearchParams(new URL(c.pageUrl()).hash.slice(1)).get('token');
          }),
        );
        assert.match(tokens[0]!, /^[A-Za-z0-9_-]{43}$/);
        assert.notEqual(tokens[0], tokens[1]);
      } finally {
        await Promise.all(runs.map((c) => c.close()));
      }
      assert.throws(() => new CloudServer({ agentToken: 'a', browserToken: 'short' }), /browserToken/);
    });

    void it('refuses a browser with no token or a wrong one at the handshake, saying why', async () => {
      refusals.length = 0;
      for (const auth of [{}, { token: 'guess' }, { token: BROWSER_TOKEN.slice(0, -1) }, { token: 42 }]) {
        const err = await refusedConnect(url, auth);
        assert.match(err.message, /browser token refused: open the URL termgate printed/);
        assert.equal(err.data?.code, 'TG_ERR_BROWSER_TOKEN_REFUSED');
      }
      assert.equal(refusals.filter((r) => r.code === 'TG_ERR_BROWSER_TOKEN_REFUSED').length, 4);
      // The agent token is not a browser token, and the browser token is not an agent token.
      assert.equal(
        (await refusedConnect(url, { token: AGENT_TOKEN })).data?.code,
        'TG_ERR_BROWSER_TOKEN_REFUSED',
      );
      const asAgent = await refusedConnect(url, { role: 'agent', token: BROWSER_TOKEN, agent_id: 'x' });
      assert.equal(asAgent.data?.code, 'TG_ERR_AGENT_TOKEN_REFUSED');
      assert.equal(cloud.browserCount, 0);
      assert.equal(cloud.agentCount, 0);

      const browser = await connectFakeBrowser(url, BROWSER_TOKEN);
      assert.equal(cloud.browserCount, 1);
      await browser.close();
      await waitFor('the browser to be gone', () => cloud.browserCount === 0);
    });

    void it('gives the device list only for the browser token', async () => {
      const agent = await connectFakeAgent(url, 'agent-1', ['vplc-secret-1'], AGENT_TOKEN);
      try {
        for (const authorization of [
          undefined,
          'Bearer nope',
          `Basic ${BROWSER_TOKEN}`,
          `Bearer ${AGENT_TOKEN}`,
        ]) {
          const res = await fetch(`${url}/api/devices`, { headers: authorization ? { authorization } : {} });
          assert.equal(res.status, 401, `${authorization} is refused`);
          assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="termgate"');
          const body = (await res.json()) as { code: string; message: string; devices?: unknown };
          assert.equal(body.code, 'TG_ERR_BROWSER_TOKEN_REFUSED');
          assert.match(body.message, /browser token required/);
          assert.equal(body.devices, undefined);
        }
        const ok = await fetch(`${url}/api/devices`, {
          headers: { authorization: `Bearer ${BROWSER_TOKEN}` },
        });
        assert.equal(ok.status, 200);
        const { devices } = (await ok.json()) as { devices: Array<{ name: string }> };
        assert.deepEqual(
          devices.map((d) => d.name),
          ['vplc-secret-1'],
        );
      } finally {
        await agent.close();
      }
    });

    void it('refuses a foreign Host on every path and on both Socket.IO transports (DNS rebinding)', async () => {
      refusals.length = 0;
      const foreign = { host: `rebind.example:${port}` };
      const bearer = { authorization: `Bearer ${BROWSER_TOKEN}` };
      const tries: Array<[string, Record<string, string>]> = [
        ['/', foreign],
        ['/api/devices', { ...foreign, ...bearer }],
        [POLLING, foreign],
        [WEBSOCKET, foreign],
        [POLLING, { host: `127.0.0.1:${port + 1}` }],
        ['/', { host: `localhost.rebind.example:${port}` }],
      ];
      for (const [path, headers] of tries) {
        const r = await raw(port, path, headers, path === WEBSOCKET);
        assert.equal(r.upgraded, false);
        assert.equal(r.status, refusedStatus(path), `${path} ${headers.host}`);
        assert.match(r.body, /TG_ERR_HOST_REFUSED/);
        assert.match(
          r.body,
          /is not served here: this termgate cloud answers only as http:\/\/127\.0\.0\.1:/,
        );
      }
      assert.equal(refusals.length, tries.length);
      assert.ok(refusals.every((r) => r.code === 'TG_ERR_HOST_REFUSED'));
      assert.deepEqual(
        refusals.map((r) => r.at),
        ['/', '/api/devices', 'socket.io', 'socket.io', 'socket.io', '/'],
      );
    });

    void it('refuses a foreign Origin even with the right token, and accepts the loopback forms', async () => {
      refusals.length = 0;
      const host = { host: `127.0.0.1:${port}` };
      const bearer = { authorization: `Bearer ${BROWSER_TOKEN}` };
      for (const origin of [
        `http://127.0.0.1:${port + 1}`,
        'https://evil.example',
        'null',
        `https://127.0.0.1:${port}`,
      ]) {
        for (const path of [POLLING, WEBSOCKET, '/api/devices']) {
          const r = await raw(port, path, { ...host, origin, ...bearer }, path === WEBSOCKET);
          assert.equal(r.status, refusedStatus(path), `${origin} ${path}: refused`);
          assert.equal(r.upgraded, false);
          assert.match(r.body, /TG_ERR_ORIGIN_REFUSED/);
          assert.match(r.body, /only the page served by this termgate cloud/);
        }
      }
      assert.equal(refusals.length, 12);
      assert.ok(refusals.every((r) => r.code === 'TG_ERR_ORIGIN_REFUSED'));

      // A no-cors GET from another page carries no Origin, only its Sec-Fetch-Site.
      for (const site of ['same-site', 'cross-site']) {
        for (const path of [POLLING, '/api/devices']) {
          const r = await raw(port, path, { ...host, 'sec-fetch-site': site, ...bearer });
          assert.equal(r.status, 403, `${site} ${path}`);
          assert.match(r.body, /TG_ERR_ORIGIN_REFUSED.*request is not allowed \(Sec-Fetch-Site\)/);
        }
        // The page itself may be reached from a link anywhere.
        assert.equal((await raw(port, '/', { ...host, 'sec-fetch-site': site })).status, 200);
      }
      for (const site of ['same-origin', 'none']) {
        assert.equal((await raw(port, POLLING, { ...host, 'sec-fetch-site': site })).status, 200, site);
      }
      assert.equal(refusals.length, 16);
      refusals.length = 0;

      // What the stand-in serves: its address and the loopback names of it, with or without an Origin.
      for (const name of ['127.0.0.1', 'localhost', '[::1]']) {
        const h = { host: `${name}:${port}` };
        const withOrigin = { ...h, origin: `http://${name}:${port}` };
        assert.equal((await raw(port, POLLING, withOrigin)).status, 200, `${name}: polling`);
        assert.equal((await raw(port, WEBSOCKET, withOrigin, true)).upgraded, true, `${name}: websocket`);
        assert.equal((await raw(port, '/api/devices', { ...withOrigin, ...bearer })).status, 200);
        assert.equal((await raw(port, '/healthz', h)).status, 200);
      }
      assert.equal(refusals.length, 0, 'nothing else was refused');
    });

    void it('refuses a non-loopback listen unless public, and then still wants the token', async () => {
      assert.throws(
        () => new CloudServer({ agentToken: 'a', host: '0.0.0.0' }),
        /options\.host 0\.0\.0\.0 is not a loopback address/,
      );
      assert.throws(() => new CloudServer({ agentToken: 'a', host: '10.1.2.3' }), /not a loopback address/);
      for (const host of ['127.0.0.2', '::1', 'localhost']) {
        assert.doesNotThrow(() => new CloudServer({ agentToken: 'a', host }));
      }

      const refused = spawn(process.execPath, [CLI, 'cloud', '--listen', '0.0.0.0:0', '--agent-token', 'a'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      refused.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const [code] = (await once(refused, 'exit')) as [number | null];
      assert.notEqual(code, 0);
      assert.match(stderr, /--listen 0\.0\.0\.0:0 is not a loopback address.*pass --public/s);

      const open = spawn(
        process.execPath,
        [
          CLI,
          'cloud',
          '--listen',
          '0.0.0.0:0',
          '--public',
          '--agent-token',
          AGENT_TOKEN,
          '--log-level',
          'debug',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let log = '';
      open.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      open.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
      try {
        await waitFor('the printed URL', () => /open (\S+)/.test(out), 20_000);
        const page = new URL(/open (\S+)/.exec(out)![1]!);
        const token = new URLSearchParams(page.hash.slice(1)).get('token')!;
        assert.match(token, /^[A-Za-z0-9_-]{43}$/, 'a random 32-byte token');
        assert.equal(out.split(token).length - 1, 1, 'the token is printed once, inside the URL');
        // The warning goes to stderr, the URL to stdout: two pipes, in no set order.
        await waitFor(
          'the --public warning',
          () => /listening beyond loopback \(--public\).*put TLS in front/s.test(log),
          20_000,
        );
        const base = page.origin;

        const err = await refusedConnect(base, {});
        assert.equal(err.data?.code, 'TG_ERR_BROWSER_TOKEN_REFUSED');
        assert.equal((await fetch(`${base}/api/devices`)).status, 401);
        const browser = await connectFakeBrowser(base, token);
        await browser.close();
        const listed = await fetch(`${base}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(listed.status, 200);
        // Nothing the stand-in logged (at debug level) holds the token: it lives in the fragment only.
        assert.ok(log.length > 0 && !log.includes(token), 'the token never reaches the log');
      } finally {
        open.kill('SIGINT');
        await once(open, 'exit');
      }
    });
  });
}
