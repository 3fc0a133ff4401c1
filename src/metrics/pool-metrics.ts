/**
 * Metrics of the worker pool and its threads, read at scrape time: sessions per worker, event-loop delay
 * and memory by thread (the main thread's own, and each worker's row of the shared stats table), and
 * Piscina's thread count, threads started (a replaced thread counts once more), utilization and queue.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventLoopDelaySample } from '../../common/EventLoopDelayWindow.js';
import { sampleThreadMemory, type ThreadMemory } from '../../common/thread-memory.js';
import { rowOffset, WorkerStatSlot, type WorkerStatsTable } from '../../common/protocol/worker-stats.js';
import type { WorkerPool } from '../pool/WorkerPool.js';

export interface PoolMetricsSources {
  pool: WorkerPool;
  table: WorkerStatsTable;
  /** Rows of the stats table owned by threads alive now. */
  liveRows: () => number[];
  /** The main thread's delay over the last window, kept up to date by its owner. */
  mainDelay: EventLoopDelaySample;
}

export function addPoolMetrics(registers: Registry[], o: PoolMetricsSources): void {
  const workerSessions = new Gauge({
    name: 'termgate_worker_sessions',
    help: 'Sessions hosted by each worker thread (worker = row index in the pool, stable across scrapes).',
    labelNames: ['worker'],
    registers,
    collect: () => {
      workerSessions.reset();
      for (const row of o.liveRows()) {
        workerSessions.set(
          { worker: String(row) },
          o.table.values[rowOffset(row) + WorkerStatSlot.sessions] ?? 0,
        );
      }
    },
  });
  const delay = new Gauge({
    name: 'termgate_event_loop_delay_seconds',
    help: 'Event-loop delay over the last window, by thread (main, worker-N) and quantile (1 = max).',
    labelNames: ['thread', 'quantile'],
    registers,
    collect: () => {
      delay.reset();
      const set = (thread: string, s: EventLoopDelaySample) => {
        delay.set({ thread, quantile: '0.5' }, s.p50);
        delay.set({ thread, quantile: '0.99' }, s.p99);
        delay.set({ thread, quantile: '1' }, s.max);
      };
      set('main', o.mainDelay);
      const v = o.table.values;
      for (const row of o.liveRows()) {
        const base = rowOffset(row);
        set(`worker-${row}`, {
          p50: v[base + WorkerStatSlot.delayP50] ?? 0,
          p99: v[base + WorkerStatSlot.delayP99] ?? 0,
          max: v[base + WorkerStatSlot.delayMax] ?? 0,
        });
      }
    },
  });
  const memory = new Gauge({
    name: 'termgate_thread_memory_bytes',
    help: 'Memory V8 and Node count for each thread (main, worker-N): kind heap_total, heap_used, external, array_buffers. The resident set minus their sum is native memory.',
    labelNames: ['thread', 'kind'],
    registers,
    collect: () => {
      memory.reset();
      const set = (thread: string, m: ThreadMemory) => {
        memory.set({ thread, kind: 'heap_total' }, m.heapTotal);
        memory.set({ thread, kind: 'heap_used' }, m.heapUsed);
        memory.set({ thread, kind: 'external' }, m.external);
        memory.set({ thread, kind: 'array_buffers' }, m.arrayBuffers);
      };
      set('main', sampleThreadMemory());
      const v = o.table.values;
      for (const row of o.liveRows()) {
        const base = rowOffset(row);
        set(`worker-${row}`, {
          heapTotal: v[base + WorkerStatSlot.heapTotal] ?? 0,
          heapUsed: v[base + WorkerStatSlot.heapUsed] ?? 0,
          external: v[base + WorkerStatSlot.external] ?? 0,
          arrayBuffers: v[base + WorkerStatSlot.arrayBuffers] ?? 0,
        });
      }
    },
  });
  const threads = new Gauge({
    name: 'termgate_pool_threads',
    help: 'Worker threads alive in the pool.',
    registers,
    collect: () => {
      threads.set(o.pool.threadCount);
    },
  });
  let startedCounted = 0;
  const started = new Counter({
    name: 'termgate_pool_threads_started_total',
    help: 'Worker threads started since the agent started: the pool size, plus one for each thread that replaced one that died.',
    registers,
    collect: () => {
      const now = o.pool.threadsStarted;
      if (now > startedCounted) started.inc(now - startedCounted);
      startedCounted = now;
    },
  });
  const utilization = new Gauge({
    name: 'termgate_pool_utilization_ratio',
    help: "Piscina's pool utilization: share of the pool's capacity busy with tasks (sessions), 0 to 1.",
    registers,
    collect: () => {
      utilization.set(o.pool.utilization);
    },
  });
  const queued = new Gauge({
    name: 'termgate_pool_queued_sessions',
    help: 'Sessions waiting in the pool queue for a worker.',
    registers,
    collect: () => {
      queued.set(o.pool.queueSize);
    },
  });
}
