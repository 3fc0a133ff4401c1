/**
 * One thread's share of the process's memory, as V8 and Node count it: its JS heap, the memory its
 * objects hold outside the heap, and its ArrayBuffers. The rest of the resident set is native (the
 * addon, libdatachannel, OpenSSL, malloc's arenas), which tells a JS leak from a native one.
 *
 * `TERMGATE_MEMORY_SAMPLE_GC=1` with `node --expose-gc` collects garbage before each sample, so tests
 * measuring memory see what is live rather than what is merely not collected yet. Off otherwise.
 */
export interface ThreadMemory {
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

const COLLECT_FIRST = process.env.TERMGATE_MEMORY_SAMPLE_GC === '1';

export function sampleThreadMemory(): ThreadMemory {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (COLLECT_FIRST && gc) gc();
  const m = process.memoryUsage();
  return { heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}
