/**
 * End to end in a real headless Chromium: the page served by the cloud stand-in, the real agent
 * executable, a real container. Then what the stand-in refuses to a browser: a page of another local
 * origin, a page under a rebound host name, a page opened without the token. Runs inside a private
 * network namespace with only `lo` (the file re-executes itself under `unshare -n`), so every packet
 * stays on loopback.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { CloudRefusal } from '../standin/cloud/CloudServer.js';
import { launchChromium, type ChromiumSession } from './helpers/chromium.js';
import { startBrowserStack, type BrowserStack } from './helpers/browser-stack.js';
import { IN_NETNS, rerunInNetns } from './helpers/netns.js';
import {
  closeLeavesNoShell,
  run,
  shellsIn,
  typeAndResize,
  until,
  waitConnected,
} from './helpers/terminal-page.js';

const SELF = fileURLToPath(import.meta.url);
const SCREENSHOT = fileURLToPath(new URL('../../docs/terminal.png', import.meta.url));
/** A name an attacker's DNS points at 127.0.0.1 after their page has loaded (DNS rebinding). */
const REBOUND = 'rebind.test';

const tokenOf = (stack: BrowserStack) =>
  new URLSearchParams(new URL(stack.cloud.pageUrl()).hash.slice(1)).get('token') ?? '';
const storedToken = (page: Page) =>
  page.evaluate(() =>
    (
      globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }
    ).sessionStorage.getItem('termgate.token'),
  );

/** What a script in some page got when it tried the stand-in. */
interface ProbeResult {
  websocket: { opened: boolean; messages: string[] };
  polling: string;
  pollingNoCors: string;
  devices: string;
  devicesNoCors: string;
}

/**
 * Runs inside a page: what any script there could try against the stand-in at `target` with `token`:
 * a Socket.IO handshake over a raw WebSocket (then the namespace connect with the token, then an offer),
 * the polling handshake, and the device list, with and without CORS.
 */
async function probeStandIn({ target, token }: { target: string; token: string }): Promise<ProbeResult> {
  interface RawSocket {
    onopen: (() => void) | null;
    onmessage: ((e: { data: unknown }) => void) | null;
    onclose: (() => void) | null;
    send(data: string): void;
    close(): void;
  }
  const Ws = (globalThis as unknown as { WebSocket: new (url: string) => RawSocket }).WebSocket;
  const websocket = await new Promise<ProbeResult['websocket']>((resolve) => {
    const result = { opened: false, messages: [] as string[] };
    const socket = new Ws(`${target.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
    socket.onopen = () => {
      result.opened = true;
      socket.send(`40${JSON.stringify({ token })}`);
      const offer = { session_id: 'probe', device_id: 'x', sdp: 'v=0', sdp_type: 'offer' };
      setTimeout(() => socket.send(`42${JSON.stringify(['webrtc:offer', offer])}`), 300);
    };
    socket.onmessage = (e) => result.messages.push(String(e.data));
    socket.onclose = () => resolve(result);
    setTimeout(() => {
      socket.close();
      resolve(result);
    }, 3000);
  });
  const attempt = async (path: string, init: RequestInit) => {
    try {
      const res = await fetch(`${target}${path}`, init);
      return `status ${res.status} (${res.type}): ${await res.text()}`;
    } catch (err) {
      return `error: ${String(err)}`;
    }
  };
  const polling = '/socket.io/?EIO=4&transport=polling';
  return {
    websocket,
    polling: await attempt(polling, {}),
    pollingNoCors: await attempt(polling, { mode: 'no-cors' }),
    devices: await attempt('/api/devices', { headers: { authorization: `Bearer ${token}` } }),
    devicesNoCors: await attempt('/api/devices', { mode: 'no-cors' }),
  };
}

/** Another local origin: a blank page on its own port, as any site the operator visits could be. */
async function startOtherOrigin(): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const codesAt = (refusals: CloudRefusal[]) => refusals.map((r) => `${r.at} ${r.code}`).sort();

if (!IN_NETNS) {
  rerunInNetns(SELF, 'browser end to end, in a network namespace with only loopback', 300_000);
} else {
  void describe('browser end to end (inside the namespace)', { timeout: 240_000 }, () => {
    let stack: BrowserStack;
    let browser: ChromiumSession;

    let current: Page | undefined;
    const refusals: CloudRefusal[] = [];

    before(async () => {
      stack = await startBrowserStack();
      stack.cloud.on('refused', (r) => refusals.push(r));
      browser = await launchChromium({
        origin: stack.url,
        viewport: { width: 1000, height: 640 },
        rebindToLoopback: [REBOUND],
      });
    });

    beforeEach(() => {
      refusals.length = 0;
    });

    // A failed test must not leave its tab (and so its shell) to the next one.
    afterEach(async () => {
      if (current && !current.isClosed()) await current.close();
      current = undefined;
      await until('no shell left', async () => (await shellsIn(stack)).length === 0, 15_000);
    });

    after(async () => {
      await browser?.close();
      await stack?.close();
    });

    void it('types into the container, follows a resize, and leaves no shell when the tab closes', async () => {
      const page = await browser.context.newPage();
      current = page;
      const consoleErrors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
      page.on('pageerror', (e) => consoleErrors.push(String(e)));
      await page.goto(stack.cloud.pageUrl(stack.container));
      await waitConnected(page);
      assert.match((await page.textContent('#state')) ?? '', /connected to .*msgpack/);
      // The token has left the address bar (no bookmark, history entry or screenshot shows it) and is
      // kept for this tab only.
      assert.equal(page.url(), `${stack.url}/?device=${stack.container}`);
      assert.equal(await storedToken(page), tokenOf(stack));

      await typeAndResize(page, () => page.setViewportSize({ width: 760, height: 420 }));

      await run(page, 'uname -s; id -un', /^root$/);
      await mkdir(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT });

      // A reload of the tab still has the token, though the address bar no longer shows it.
      await page.reload();
      await waitConnected(page);
      const again = `e2e-${randomBytes(6).toString('hex')}`;
      await run(page, `echo ${again}`, new RegExp(`^${again}$`));
      assert.deepEqual(refusals, [], 'nothing of the real page was refused');

      await closeLeavesNoShell(page, stack);
      assert.deepEqual(consoleErrors, []);
    });

    void it('speaks JSON when picked, and reconnects with the button', async () => {
      const page = await browser.context.newPage();
      current = page;
      const url = new URL(stack.cloud.pageUrl(stack.container));
      url.searchParams.set('encoding', 'json');
      await page.goto(url.href);
      await waitConnected(page);
      assert.match((await page.textContent('#state')) ?? '', /\(json\)/);
      const first = `e2e-${randomBytes(6).toString('hex')}`;
      await run(page, `echo ${first}`, new RegExp(`^${first}$`));

      await page.click('#connect');
      await page.waitForSelector('#state[data-state="connecting"], #state[data-state="connected"]');
      await waitConnected(page);
      const second = `e2e-${randomBytes(6).toString('hex')}`;
      await run(page, `echo ${second}`, new RegExp(`^${second}$`));
      // The replaced session's shell is gone; only the new one runs.
      await until(
        'one shell after reconnect',
        async () => (await shellsIn(stack)).length === 1,
        15_000,
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}; processes: ${JSON.stringify(await stack.processes())}`);
      });
      await page.close();
      await until('no shell after close', async () => (await shellsIn(stack)).length === 0, 15_000);
    });

    void it('refuses a page from another local origin: no Socket.IO on either transport, no device list', async () => {
      const other = await startOtherOrigin();
      try {
        const page = await browser.context.newPage();
        current = page;
        await page.goto(`${other.url}/`);
        // Even holding the right token (leaked, say), a page of another origin gets nothing.
        const probe = await page.evaluate(probeStandIn, { target: stack.url, token: tokenOf(stack) });
        assert.deepEqual(probe.websocket, { opened: false, messages: [] }, 'the WebSocket never opened');
        assert.match(probe.polling, /^error: TypeError/);
        assert.match(probe.pollingNoCors, /^status 0 \(opaque\)/);
        assert.match(probe.devices, /^error: TypeError/);
        assert.match(probe.devicesNoCors, /^status 0 \(opaque\)/);
        // The stand-in refused each of them for its origin (the page cannot read why; the log can).
        const codes = codesAt(refusals);
        assert.ok(
          codes.length >= 5 && codes.every((c) => c.endsWith('TG_ERR_ORIGIN_REFUSED')),
          codes.join(', '),
        );
        assert.equal(
          codes.filter((c) => c.startsWith('socket.io')).length,
          3,
          'websocket, polling, no-cors polling',
        );
        assert.equal(codes.filter((c) => c.startsWith('/api/devices')).length, 2, 'preflight, no-cors GET');
        // A CORS request and a WebSocket name their origin; a no-cors GET only its Sec-Fetch-Site.
        assert.ok(
          refusals.every(
            (r) =>
              r.message.includes(`origin "${other.url}" is not allowed`) ||
              r.message.includes('a "same-site" request is not allowed (Sec-Fetch-Site)'),
          ),
          refusals.map((r) => r.message).join('\n'),
        );
        assert.equal(stack.cloud.browserCount, 0);
        assert.equal(stack.cloud.sessionCount, 0);
      } finally {
        other.server.closeAllConnections();
        other.server.close();
      }
    });

    void it('refuses a page under a rebound host name, the page itself included (DNS rebinding)', async () => {
      const port = new URL(stack.url).port;
      const rebound = `http://${REBOUND}:${port}`;
      const page = await browser.context.newPage();
      current = page;
      const direct = await page.goto(`${rebound}/?device=${stack.container}`);
      assert.equal(direct?.status(), 403);
      const body = JSON.parse((await direct?.text()) ?? '{}') as { code?: string; message?: string };
      assert.equal(body.code, 'TG_ERR_HOST_REFUSED');
      assert.match(body.message ?? '', /host "rebind\.test:\d+" is not served here/);

      // The attacker's script, running in a document of that origin (here: the refusal itself; in an
      // attack, the attacker's page loaded before their DNS pointed the name at 127.0.0.1).
      const probe = await page.evaluate(probeStandIn, { target: rebound, token: tokenOf(stack) });
      assert.deepEqual(probe.websocket, { opened: false, messages: [] }, 'the WebSocket never opened');
      // Same origin in the browser's eyes, so the page reads the refusals.
      assert.match(probe.polling, /^status 403 \(basic\): .*TG_ERR_HOST_REFUSED/);
      assert.match(probe.devices, /^status 403 \(basic\): .*TG_ERR_HOST_REFUSED/);
      const codes = codesAt(refusals);
      assert.ok(codes.length >= 6 && codes.every((c) => c.endsWith('TG_ERR_HOST_REFUSED')), codes.join(', '));
      assert.equal(stack.cloud.browserCount, 0);
      assert.equal(stack.cloud.sessionCount, 0);
    });

    void it('gives a browser without the token no device list and no session', async () => {
      const page = await browser.context.newPage();
      current = page;
      await page.goto(`${stack.url}/?device=${stack.container}`);
      await page.waitForSelector('#state[data-state="disconnected"]');
      await until('the page to say why', async () =>
        /no access token: open the URL termgate printed/.test((await page.textContent('#state')) ?? ''),
      );
      assert.deepEqual(await page.locator('#device option').allTextContents(), ['no devices']);
      assert.equal(await storedToken(page), null);

      // A script on the stand-in's own page, without the token: the handshake is refused with the
      // reason, the offer after it goes nowhere, and the device list is refused.
      const probe = await page.evaluate(probeStandIn, { target: stack.url, token: 'not-the-token' });
      assert.equal(probe.websocket.opened, true, 'same origin: the transport opens');
      assert.ok(
        probe.websocket.messages.some((m) => m.startsWith('44') && m.includes('browser token refused')),
        `messages: ${probe.websocket.messages.join(' | ')}`,
      );
      assert.ok(!probe.websocket.messages.some((m) => m.startsWith('40') || m.startsWith('42')));
      assert.match(probe.devices, /^status 401 \(basic\): .*TG_ERR_BROWSER_TOKEN_REFUSED/);
      assert.doesNotMatch(probe.devices, new RegExp(stack.container));

      // A wrong token in the fragment fares no better.
      const wrong = await browser.context.newPage();
      await wrong.goto(`${stack.url}/?device=${stack.container}#token=${'x'.repeat(43)}`);
      await until('the wrong token to be refused', async () =>
        /refused/.test((await wrong.textContent('#state')) ?? ''),
      );
      await wrong.close();

      const codes = codesAt(refusals);
      assert.ok(
        codes.every((c) => c.endsWith('TG_ERR_BROWSER_TOKEN_REFUSED')),
        codes.join(', '),
      );
      assert.ok(codes.filter((c) => c.startsWith('socket.io')).length >= 3, 'page, probe, wrong token');
      assert.ok(codes.filter((c) => c.startsWith('/api/devices')).length >= 3);
      assert.equal(stack.cloud.browserCount, 0);
      assert.equal(stack.cloud.sessionCount, 0);
      assert.deepEqual(await shellsIn(stack), []);
    });
  });
}
