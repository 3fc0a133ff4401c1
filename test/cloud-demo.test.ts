/**
 * `termgate demo` as a user runs it: it creates its containers, starts the cloud stand-in and the agent,
 * prints the URL, and on Ctrl-C (SIGINT) stops all of it and removes the containers it created.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import Dockerode from 'dockerode';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** Command lines of the processes that mention `needle`. */
async function processesWith(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) found.push(cmd.replaceAll('\0', ' '));
  }
  return found;
}

void it(
  'termgate demo starts everything, prints the URL, and cleans up on SIGINT',
  { timeout: 120_000 },
  async () => {
    const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
    const prefix = `vplc-dt${randomBytes(3).toString('hex')}-`;
    const demo = spawn(
      process.execPath,
      [CLI, 'demo', '--listen', '127.0.0.1:0', '--new-containers', '--containers', '2'],
      {
        env: { ...process.env, TERMGATE_DEMO_PREFIX: prefix, TERMGATE_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    try {
      let out = '';
      demo.stdout.setEncoding('utf8');
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no URL printed within 60 s; output: ${out}`)),
          60_000,
        );
        demo.stdout.on('data', (chunk: string) => {
          out += chunk;
          const m = /open (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        void exited.then((code) => reject(new Error(`demo exited with ${code}: ${out}`)));
      });

      const { devices } = (await (await fetch(`${url}api/devices`)).json()) as {
        devices: Array<{ name: string }>;
      };
      const names = devices.map((d) => d.name);
      assert.ok(names.includes(`${prefix}1`) && names.includes(`${prefix}2`), `devices: ${names.join(', ')}`);
      const info = await docker.getContainer(`${prefix}1`).inspect();
      assert.equal(info.Config.Labels['termgate.demo'], '1');
      assert.equal(info.HostConfig.NetworkMode, 'none');
      assert.equal(info.HostConfig.Init, true);
      const page = await fetch(url);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<script type="module" src="main.js">/);
      const agentNeedle = `--cloud-url\0${url.replace(/\/$/, '')}`;
      assert.equal((await processesWith(agentNeedle)).length, 1, 'one agent process');

      demo.kill('SIGINT');
      assert.equal(await exited, 0);
      assert.deepEqual(await processesWith(agentNeedle), [], 'the agent is gone');
      const left = await docker.listContainers({ all: true, filters: { name: [prefix] } });
      assert.deepEqual(left, [], 'demo containers removed');
      await assert.rejects(fetch(url), 'the cloud no longer listens');
    } finally {
      if (demo.exitCode === null) {
        demo.kill('SIGKILL');
        await exited;
      }
      for (const c of await docker.listContainers({ all: true, filters: { name: [prefix] } })) {
        await docker.getContainer(c.Id).remove({ force: true });
      }
    }
  },
);
