// `npm start`, then Ctrl-C, as a user does it, for .ci/run: starts `npm start` in a process group of
// its own, waits for the URL it prints, checks that the demo serves exactly its own labelled containers
// (and nothing without the token), then sends SIGINT to that group (what Ctrl-C in a terminal does)
// and checks that everything exited 0, and that exactly the demo's containers are gone.
/* global fetch */
import { execFile, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { URL, fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
/** Start-up includes `npm run build`; the bound is on silence, not on the total. */
const QUIET_LIMIT_MS = 180_000;
const STOP_LIMIT_MS = 60_000;

const docker = async (...args) => (await run('docker', args)).stdout.trim();
const fail = (message) => {
  throw new Error(message);
};

/** PIDs of the processes in process group `pgid`. */
async function groupMembers(pgid) {
  const pids = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[2] === String(pgid) && fields[0] !== 'Z') pids.push(Number(pid));
  }
  return pids;
}

async function main() {
  const started = Date.now();
  // detached: a new session and process group, as a terminal gives a foreground job.
  const child = spawn('npm', ['start', '--silent'], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TERMGATE_LOG_LEVEL: 'warn' },
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let out = '';
  let lastOutput = Date.now();
  const keep = (stream, sink) =>
    stream.setEncoding('utf8').on('data', (d) => {
      out += d;
      lastOutput = Date.now();
      sink.write(d.replace(/#token=[A-Za-z0-9_-]+/g, '#token=…'));
    });
  keep(child.stdout, process.stdout);
  keep(child.stderr, process.stderr);
  let label;
  try {
    let gone = false;
    void exited.then(() => (gone = true));
    let printed;
    while (!(printed = /open (http:\/\/\S+\/#token=([A-Za-z0-9_-]+))/.exec(out))) {
      if (gone) fail('npm start exited before printing the URL');
      if (Date.now() - lastOutput > QUIET_LIMIT_MS)
        fail(`npm start printed nothing for ${QUIET_LIMIT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const upMs = Date.now() - started;
    label =
      /label (io\.termgate\.run=[0-9a-f]{12})/.exec(out)?.[1] ?? fail('the demo did not print its label');
    const page = new URL(printed[1]);
    const token = printed[2];

    const labelled = (await docker('ps', '-a', '--filter', `label=${label}`, '--format', '{{.Names}}'))
      .split('\n')
      .filter(Boolean)
      .sort();
    if (labelled.length === 0) fail(`no container carries ${label}`);
    const anonymous = await fetch(`${page.origin}/api/devices`);
    if (anonymous.status !== 401) fail(`/api/devices without the token answered ${anonymous.status}`);
    const res = await fetch(`${page.origin}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
    const served = (await res.json()).devices.map((d) => d.name).sort();
    if (served.join() !== labelled.join()) {
      fail(`the demo serves ${served.join(', ')}; its own containers are ${labelled.join(', ')}`);
    }
    const members = await groupMembers(child.pid);

    // Ctrl-C.
    const stopAt = Date.now();
    process.kill(-child.pid, 'SIGINT');
    let timer;
    const { code, signal } = await Promise.race([
      exited,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error('npm start did not stop within 60 s of Ctrl-C')),
          STOP_LIMIT_MS,
        );
      }),
    ]);
    clearTimeout(timer);
    // npm reports a Ctrl-C the shell way, by dying of the same signal; the demo's own word is its
    // last line. Every process of the group must be gone.
    if (code !== 0 && signal !== 'SIGINT') fail(`npm start exited with ${code ?? signal} after Ctrl-C`);
    let left = await groupMembers(child.pid);
    while (left.length > 0 && Date.now() - stopAt < STOP_LIMIT_MS) {
      await new Promise((r) => setTimeout(r, 100));
      left = await groupMembers(child.pid);
    }
    const stopMs = Date.now() - stopAt;
    if (left.length > 0) fail(`processes of npm start still run 60 s after Ctrl-C: ${left.join(', ')}`);
    const stopped = /termgate demo: stopped; removed its (\d+) containers/.exec(out);
    if (!stopped) fail('the demo did not say it stopped cleanly');
    if (Number(stopped[1]) !== labelled.length)
      fail(`the demo removed ${stopped[1]} of its ${labelled.length} containers`);
    const remaining = await docker('ps', '-aq', '--filter', `label=${label}`);
    if (remaining) fail(`containers with ${label} are left: ${remaining.replace(/\n/g, ' ')}`);
    await fetch(page.origin).then(
      () => fail('the stand-in still answers'),
      () => undefined,
    );
    process.stdout.write(
      `demo-check: npm start up in ${(upMs / 1000).toFixed(1)} s, serving exactly its ${labelled.length} ` +
        `containers (${label}); Ctrl-C: npm exited by ${signal ?? `code ${code}`}, all ${members.length} ` +
        `processes of the group gone in ${stopMs} ms, its ${labelled.length} containers removed\n`,
    );
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid, 'SIGKILL');
      await exited;
      // Only after a failed Ctrl-C: what carries this demo's own label, and nothing else.
      if (label) {
        const ids = await docker('ps', '-aq', '--filter', `label=${label}`);
        if (ids) await docker('rm', '-f', ...ids.split('\n'));
      }
    }
  }
}

main().catch((err) => {
  process.stderr.write(`demo-check: FAILED: ${err.message}\n`);
  process.exit(1);
});
