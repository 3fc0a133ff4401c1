/** The cloud stand-in's HTTP side: the page, its headers, and what it refuses to serve. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { CloudServer } from '../standin/cloud/CloudServer.js';

void it('serves the built page read-only and says so when it is not built', { timeout: 20_000 }, async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'termgate-web-'));
  const browserToken = 'browser-token-of-this-test';
  const cloud = new CloudServer({ agentToken: 't', browserToken, port: 0, webRoot: root });
  try {
    const url = await cloud.listen();
    const missing = await fetch(`${url}/`);
    assert.equal(missing.status, 503);
    assert.match(await missing.text(), /npm run build:web/);

    await writeFile(path.join(root, 'index.html'), '<!doctype html><title>t</title>');
    await writeFile(path.join(root, 'main.js'), 'export {};');
    await writeFile(path.join(root, 'secret.env'), 'TOKEN=x');
    const index = await fetch(`${url}/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(index.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(await index.text(), '<!doctype html><title>t</title>');
    assert.equal(
      (await fetch(`${url}/main.js`)).headers.get('content-type'),
      'text/javascript; charset=utf-8',
    );
    assert.equal((await fetch(`${url}/secret.env`)).status, 404, 'unknown file types are not served');
    assert.equal((await fetch(`${url}/%2e%2e/%2e%2e/etc/hostname`)).status, 404, 'no path outside the root');
    assert.equal((await fetch(`${url}/nope.html`)).status, 404);
    const head = await fetch(`${url}/index.html`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    const devices = await fetch(`${url}/api/devices`, {
      headers: { authorization: `Bearer ${browserToken}` },
    });
    assert.deepEqual(await devices.json(), { devices: [] });
  } finally {
    await cloud.close();
    await rm(root, { recursive: true, force: true });
  }
  assert.throws(() => new CloudServer({ agentToken: '' }), /agentToken/);
  assert.throws(() => new CloudServer({ agentToken: 'x', port: 70000 }), /options\.port/);
});
