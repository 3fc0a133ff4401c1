/**
 * `termgate demo` as a user runs it, on a host where other `vplc-*` containers run: it creates its own
 * containers, labelled with its run id, serves only those (its agent selects by that label, never by a
 * name glob), prints the URL with the browser token in its fragment, and on Ctrl-C (SIGINT) stops all
 * of it and removes exactly the containers it created.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';
import Dockerode from 'dockerode';
import { removeContainers, startContainers, uniquePrefix } from './helpers/containers.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** Command lines (arguments NUL-separated) of the processes that mention `needle`. */
async function processesWith(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) found.push(cmd);
  }
  return found;
}

const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
/** A bystander named like a real vPLC, running before the demo starts: the demo must leave it alone. */
const bystanders: string[] = [];
after(() => removeContainers(bystanders));

void it(
  'termgate demo serves only its own labelled containers, prints a URL with a token, and on SIGINT removes only them',
  { timeout: 120_000 },
  async () => {
    bystanders.push(...(await startContainers(uniquePrefix('demo-bystander'), 1)));
    const bystander = await docker.getContainer(bystanders[0]!).inspect();

    const demo = spawn(process.execPath, [CLI, 'demo', '--listen', '127.0.0.1:0', '--containers', '2'], {
      env: { ...process.env, TERMGATE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    let label: string | undefined;
    try {
      let out = '';
      demo.stdout.setEncoding('utf8');
      const printed = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no URL printed within 60 s; output: ${out}`)),
          60_000,
        );
        demo.stdout.on('data', (chunk: string) => {
          out += chunk;
          const m = /open (http:\/\/127\.0\.0\.1:\d+\/#token=\S+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        void exited.then((code) => reject(new Error(`demo exited with ${code}: ${out}`)));
      });
      label = /label (io\.termgate\.run=[0-9a-f]{12})/.exec(out)?.[1];
      assert.ok(label, `the demo names its label: ${out}`);
      const page = new URL(printed);
      const token = new URLSearchParams(page.hash.slice(1)).get('token')!;
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      const base = page.origin;

      // Exactly the demo's own containers are served, each labelled with the run id; not the bystander.
      const mine = await docker.listContainers({ all: true, filters: { label: [label] } });
      assert.equal(mine.length, 2);
      const own = mine.map((c) => c.Names[0]!.replace(/^\//, '')).sort();
      assert.equal((await fetch(`${base}/api/devices`)).status, 401, 'no list without the token');
      const res = await fetch(`${base}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
      const { devices } = (await res.json()) as { devices: Array<{ name: string }> };
      assert.deepEqual(devices.map((d) => d.name).sort(), own);
      for (const c of mine) {
        const info = await docker.getContainer(c.Id).inspect();
        assert.equal(info.Config.Labels['io.termgate.owner'], 'demo');
        assert.equal(info.HostConfig.NetworkMode, 'none');
        assert.equal(info.HostConfig.Init, true);
      }
      const html = await fetch(`${base}/`);
      assert.equal(html.status, 200);
      assert.match(await html.text(), /<script type="module" src="main.js">/);

      // Its agent selects by the run's label, never by a name glob; the token is not on its command line.
      const agentNeedle = `--cloud-url\0${base}`;
      const agents = await processesWith(agentNeedle);
      assert.equal(agents.length, 1, 'one agent process');
      assert.ok(agents[0]!.includes(`--container-label\0${label}\0`), agents[0]!.replaceAll('\0', ' '));
      assert.ok(!agents[0]!.includes('--containers'), 'no name glob');
      assert.ok(!agents[0]!.includes(token));

      demo.kill('SIGINT');
      assert.equal(await exited, 0);
      assert.deepEqual(await processesWith(agentNeedle), [], 'the agent is gone');
      assert.deepEqual(
        await docker.listContainers({ all: true, filters: { label: [label] } }),
        [],
        'demo containers removed',
      );
      await assert.rejects(fetch(base), 'the cloud no longer listens');
      const later = await docker.getContainer(bystander.Id).inspect();
      assert.equal(later.State.Running, true, 'the bystander still runs');
      assert.equal(later.State.StartedAt, bystander.State.StartedAt, 'and was not restarted');
    } finally {
      if (demo.exitCode === null) {
        demo.kill('SIGKILL');
        await exited;
      }
      // Only if the demo failed to: remove what carries this demo run's label (never anything else).
      if (label) {
        for (const c of await docker.listContainers({ all: true, filters: { label: [label] } })) {
          await docker.getContainer(c.Id).remove({ force: true });
        }
      }
    }
  },
);
