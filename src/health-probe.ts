/**
 * `termgate-probe [/healthz|/readyz] [--wait <seconds>]`: asks a running agent's observability endpoint
 * whether it is alive (`/healthz`, the default) or serving (`/readyz`), and exits 0 for yes, 1 for no.
 *
 * Made for a container's HEALTHCHECK (the image has no curl) and for rolling upgrades (`/readyz --wait
 * 60`: wait until the new process serves before moving to the next host). It reads where the agent
 * listens from TERMGATE_METRICS_LISTEN (default 127.0.0.1:9464), the variable the agent itself reads, and
 * loads nothing else: a probe every few seconds must cost little.
 */
const PATHS = ['/healthz', '/readyz'];
const REQUEST_TIMEOUT_MS = 2_000;
const RETRY_MS = 250;

interface ProbeArgs {
  path: string;
  waitMs: number;
  listen: string;
}

function usage(problem: string): never {
  process.stderr.write(
    `termgate-probe: ${problem}\nusage: termgate-probe [/healthz|/readyz] [--wait <seconds>]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): ProbeArgs {
  const args: ProbeArgs = {
    path: '/healthz',
    waitMs: 0,
    listen: process.env.TERMGATE_METRICS_LISTEN ?? '127.0.0.1:9464',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (PATHS.includes(arg)) args.path = arg;
    else if (arg === '--wait') {
      const seconds = Number(argv[++i]);
      if (!Number.isFinite(seconds) || seconds < 0) usage(`--wait wants seconds, got ${argv[i]}`);
      args.waitMs = seconds * 1000;
    } else usage(`unknown argument ${JSON.stringify(arg)}`);
  }
  if (args.listen === 'off') usage('TERMGATE_METRICS_LISTEN is off: the agent serves no health endpoint');
  return args;
}

/** One GET; resolves with the status and the first line of the body, or the reason it failed. */
async function ask(url: string): Promise<{ ok: boolean; says: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const says = (await res.text()).split('\n')[0] ?? '';
    return { ok: res.status === 200, says: `${res.status} ${says}` };
  } catch (err) {
    return { ok: false, says: (err as Error).cause ? String((err as Error).cause) : String(err) };
  }
}

async function main(): Promise<void> {
  const { path, waitMs, listen } = parseArgs(process.argv.slice(2));
  let url: string;
  try {
    url = new URL(path, `http://${listen}`).href;
  } catch {
    usage(`TERMGATE_METRICS_LISTEN is not HOST:PORT: ${JSON.stringify(listen)}`);
  }
  const deadline = performance.now() + waitMs;
  for (;;) {
    const answer = await ask(url);
    if (answer.ok || performance.now() >= deadline) {
      process.stdout.write(`${url}: ${answer.says}\n`);
      process.exit(answer.ok ? 0 : 1);
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

await main();
