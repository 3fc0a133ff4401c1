/**
 * Per-worker gauges in one SharedArrayBuffer for the whole pool: each worker claims a row when it loads
 * and writes its live session count and its event-loop delay there; the main thread reads the rows when
 * it is scraped. Like session-stats.ts: no message per sample, no lock, one writer per row.
 *
 * Why a shared table handed over in Piscina's `workerData` rather than messages: a scrape then never waits
 * on a worker (a stuck worker is exactly when its numbers matter), and a worker needs no port of its own.
 * A row is claimed with `Atomics.compareExchange` on its thread id; the main thread frees the rows of
 * threads that are no longer in the pool, so a worker Piscina replaces finds a row again. There are more
 * rows than threads so a replacement never waits for that.
 */

export const WorkerStatSlot = {
  /** Sessions the worker hosts right now. */
  sessions: 0,
  /** Event-loop delay over the last window, in seconds. */
  delayP50: 1,
  delayP99: 2,
  delayMax: 3,
  /** Date.now() of the last write of the delay window. */
  updatedAtMs: 4,
  /** The worker isolate's memory, sampled with the delay window (bytes). */
  heapTotal: 5,
  heapUsed: 6,
  external: 7,
  arrayBuffers: 8,
} as const;

const FIELDS = 12;

/** The table's views. `claims[0]` is the row count; `claims[1 + row]` the thread id owning a row, 0 if free. */
export interface WorkerStatsTable {
  readonly buffer: SharedArrayBuffer;
  readonly rows: number;
  readonly claims: Int32Array;
  readonly values: Float64Array;
}

function headerBytes(rows: number): number {
  return Math.ceil(((rows + 1) * Int32Array.BYTES_PER_ELEMENT) / 8) * 8;
}

export function createWorkerStats(rows: number): SharedArrayBuffer {
  if (!Number.isInteger(rows) || rows < 1) throw new TypeError('rows must be a positive integer');
  const buffer = new SharedArrayBuffer(headerBytes(rows) + rows * FIELDS * Float64Array.BYTES_PER_ELEMENT);
  new Int32Array(buffer, 0, 1)[0] = rows;
  return buffer;
}

export function workerStatsTable(buffer: SharedArrayBuffer): WorkerStatsTable {
  const rows = new Int32Array(buffer, 0, 1)[0]!;
  return {
    buffer,
    rows,
    claims: new Int32Array(buffer, 0, rows + 1),
    values: new Float64Array(buffer, headerBytes(rows), rows * FIELDS),
  };
}

/** Index of a row's first value in `values`. */
export function rowOffset(row: number): number {
  return row * FIELDS;
}

/** Claims the first free row for `threadId`; -1 if every row is taken. */
export function claimRow(table: WorkerStatsTable, threadId: number): number {
  for (let row = 0; row < table.rows; row++) {
    if (Atomics.compareExchange(table.claims, 1 + row, 0, threadId) === 0) {
      table.values.fill(0, rowOffset(row), rowOffset(row) + FIELDS);
      return row;
    }
  }
  return -1;
}

/** The thread id owning `row`, or 0. */
export function rowOwner(table: WorkerStatsTable, row: number): number {
  return Atomics.load(table.claims, 1 + row);
}

/** Frees `row` if `threadId` still owns it. */
export function releaseRow(table: WorkerStatsTable, row: number, threadId: number): void {
  Atomics.compareExchange(table.claims, 1 + row, threadId, 0);
}
