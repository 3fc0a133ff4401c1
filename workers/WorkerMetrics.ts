/**
 * This worker's row in the pool's stats table (see common/protocol/worker-stats.ts): its live session count,
 * written when a session starts or ends, and its event-loop delay and memory, written once per window. Nothing here
 * runs per message. Absent when the agent runs with `--metrics-listen off` (no table in `workerData`).
 */
import { threadId, workerData } from 'node:worker_threads';
import { EventLoopDelayWindow } from '../common/EventLoopDelayWindow.js';
import { sampleThreadMemory } from '../common/thread-memory.js';
import {
  claimRow,
  releaseRow,
  rowOffset,
  WorkerStatSlot,
  workerStatsTable,
  type WorkerStatsTable,
} from '../common/protocol/worker-stats.js';

export class WorkerMetrics {
  readonly #table: WorkerStatsTable;
  readonly #row: number;
  readonly #base: number;
  readonly #delay: EventLoopDelayWindow;

  private constructor(table: WorkerStatsTable, row: number) {
    this.#table = table;
    this.#row = row;
    this.#base = rowOffset(row);
    this.#delay = new EventLoopDelayWindow({
      onWindow: ({ p50, p99, max }) => {
        const v = this.#table.values;
        v[this.#base + WorkerStatSlot.delayP50] = p50;
        v[this.#base + WorkerStatSlot.delayP99] = p99;
        v[this.#base + WorkerStatSlot.delayMax] = max;
        const memory = sampleThreadMemory();
        v[this.#base + WorkerStatSlot.heapTotal] = memory.heapTotal;
        v[this.#base + WorkerStatSlot.heapUsed] = memory.heapUsed;
        v[this.#base + WorkerStatSlot.external] = memory.external;
        v[this.#base + WorkerStatSlot.arrayBuffers] = memory.arrayBuffers;
        v[this.#base + WorkerStatSlot.updatedAtMs] = Date.now();
      },
    });
  }

  /** Claims a row in the table Piscina handed over in `workerData`; undefined if metrics are off or full. */
  static fromWorkerData(): WorkerMetrics | undefined {
    const buffer = (workerData as { workerStats?: unknown } | null | undefined)?.workerStats;
    if (!(buffer instanceof SharedArrayBuffer)) return undefined;
    const table = workerStatsTable(buffer);
    const row = claimRow(table, threadId);
    return row < 0 ? undefined : new WorkerMetrics(table, row);
  }

  setSessions(count: number): void {
    this.#table.values[this.#base + WorkerStatSlot.sessions] = count;
  }

  /** Stops sampling and frees the row. Idempotent. */
  close(): void {
    this.#delay.close();
    this.setSessions(0);
    releaseRow(this.#table, this.#row, threadId);
  }
}
