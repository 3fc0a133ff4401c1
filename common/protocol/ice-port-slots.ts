/**
 * `--ice-udp-port`: which UDP port each worker's ICE mux listens on. libjuice's UDP mux shares one socket
 * between the peer connections of one copy of the native addon, and every worker loads its own copy (two
 * threads sharing one crash the process; workers/native-addon.ts). A second copy cannot bind the same
 * port: measured, its peers gather no candidate at all. So worker k of the pool listens on `base + k`,
 * one port per worker, and a firewall opens the range `base`…`base + workers - 1` with one rule.
 *
 * The slots live in one SharedArrayBuffer in `workerData`, claimed with `Atomics.compareExchange` on the
 * thread id like the stats rows (worker-stats.ts). Unlike those rows there is exactly one slot per
 * worker, since each is a port the firewall was told about: a thread frees its slot when it has closed
 * its peers, and the main thread frees the slots of threads that left the pool without doing so.
 */

/** Layout of the Int32Array: [0] slot count, [1] base port, [2 + k] the thread id owning slot k (0: free). */
const HEADER = 2;

export function createIcePortSlots(workers: number, basePort: number): SharedArrayBuffer {
  if (!Number.isInteger(workers) || workers < 1) throw new TypeError('workers must be a positive integer');
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + workers - 1 > 65535) {
    throw new RangeError(`ports ${basePort}-${basePort + workers - 1} are not all valid UDP ports`);
  }
  const buffer = new SharedArrayBuffer((HEADER + workers) * Int32Array.BYTES_PER_ELEMENT);
  const view = new Int32Array(buffer);
  view[0] = workers;
  view[1] = basePort;
  return buffer;
}

function view(buffer: SharedArrayBuffer): Int32Array {
  return new Int32Array(buffer);
}

/** Claims the first free slot for `threadId` and returns its port, or undefined if every slot is held. */
export function claimIcePort(buffer: SharedArrayBuffer, threadId: number): number | undefined {
  const slots = view(buffer);
  for (let k = 0; k < slots[0]!; k++) {
    const owner = Atomics.compareExchange(slots, HEADER + k, 0, threadId);
    if (owner === 0 || owner === threadId) return slots[1]! + k;
  }
  return undefined;
}

/** Frees the slot `threadId` holds, if any. */
export function releaseIcePort(buffer: SharedArrayBuffer, threadId: number): void {
  const slots = view(buffer);
  for (let k = 0; k < slots[0]!; k++) Atomics.compareExchange(slots, HEADER + k, threadId, 0);
}

/** Frees every slot whose owner is not among `alive` (threads that ended without releasing theirs). */
export function releaseIcePortsExcept(buffer: SharedArrayBuffer, alive: ReadonlySet<number>): void {
  const slots = view(buffer);
  for (let k = 0; k < slots[0]!; k++) {
    const owner = Atomics.load(slots, HEADER + k);
    if (owner !== 0 && !alive.has(owner)) Atomics.compareExchange(slots, HEADER + k, owner, 0);
  }
}

/** The ports in use now, by slot (0 for a free slot); for logs and tests. */
export function icePortOwners(buffer: SharedArrayBuffer): number[] {
  const slots = view(buffer);
  return Array.from({ length: slots[0]! }, (_, k) => Atomics.load(slots, HEADER + k));
}
