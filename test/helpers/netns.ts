/**
 * Runs a test file again inside a private network namespace that has only `lo` (`unshare -n`, as
 * root): everything it starts can talk over loopback only, and nothing it listens on (even on
 * 0.0.0.0) can be reached from outside. The Docker engine's unix socket is still reachable.
 *
 * Firefox gathers no loopback candidate at all, only the address of its default route; for it the
 * namespace can also have a route that leads nowhere (`deadEndRoute`, the one exception to the
 * loopback rule: nothing can leave the namespace through it either).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { it } from 'node:test';
import { promisify } from 'node:util';

/** True in the copy of the file that runs inside the namespace. */
export const IN_NETNS = process.env.TERMGATE_IN_NETNS === '1';

/** The namespace's end of the dead-end route, and its address (what Firefox offers as its candidate). */
export const DEAD_END_DEVICE = 'v0';
export const DEAD_END_ADDRESS = '10.99.0.1';

/**
 * A veth pair whose other end has no address and no route: a default route into it gives a browser an
 * address to gather, and whatever it sends that way goes nowhere. No IPv6 on it, so that the kernel itself
 * sends nothing there (router solicitations, MLD) and no IPv6 candidate is gathered.
 */
const DEAD_END_ROUTE = [
  `ip link add ${DEAD_END_DEVICE} type veth peer name v1`,
  `echo 1 > /proc/sys/net/ipv6/conf/${DEAD_END_DEVICE}/disable_ipv6`,
  'echo 1 > /proc/sys/net/ipv6/conf/v1/disable_ipv6',
  `ip addr add ${DEAD_END_ADDRESS}/24 dev ${DEAD_END_DEVICE}`,
  `ip link set ${DEAD_END_DEVICE} up`,
  'ip link set v1 up',
  `ip route add default dev ${DEAD_END_DEVICE}`,
];

export interface NetnsOptions {
  /** Also a default route over a veth pair that leads nowhere (for Firefox). Default: only `lo`. */
  deadEndRoute?: boolean;
}

/**
 * The addresses something in the namespace tried to reach through the dead-end route (inside the
 * namespace): the route is on-link, so each unicast attempt (a DNS lookup, a browser's background
 * request) first asks ARP for its destination, which stays in the neighbour table, failed, since
 * nothing answers. Multicast (a browser's mDNS group join) needs no ARP and is not counted.
 */
export async function deadEndDestinations(): Promise<string[]> {
  const { stdout } = await promisify(execFile)('ip', ['-j', 'neigh', 'show', 'dev', DEAD_END_DEVICE]);
  return (JSON.parse(stdout || '[]') as Array<{ dst: string }>).map((n) => n.dst);
}

/** Declares one outer test that re-runs `file` inside the namespace and passes if all its tests pass. */
export function rerunInNetns(
  file: string,
  title: string,
  timeoutMs: number,
  options: NetnsOptions = {},
): void {
  const setUp = ['ip link set lo up', ...(options.deadEndRoute ? DEAD_END_ROUTE : [])].join(' && ');
  void it(title, { timeout: timeoutMs }, async () => {
    // NODE_TEST_CONTEXT would make the inner runner report to us in its wire format, or skip files.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const child = spawn(
      'unshare',
      ['-n', 'sh', '-c', `${setUp} && exec "$0" --test --test-reporter=spec "$1"`, process.execPath, file],
      { env: { ...env, TERMGATE_IN_NETNS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.pipe(process.stderr);
    child.stderr.pipe(process.stderr);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, 'the tests inside the namespace failed (output above)');
  });
}
