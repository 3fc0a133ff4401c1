/**
 * The replay buffers' memory at 1,000 disconnected sessions (issue 13): each session's ReplayBuffer
 * filled the way a worker fills it (PTY reads of a given size, pinned as when the browser dropped), for
 * three kinds of session: a quiet prompt, a screenful of interactive work, and a bulk command stopped
 * with its buffer full (the worst case, `--replay-buffer` per session). Reports the buffers' own
 * accounting and the process's RSS and array-buffer memory beyond a base. No peers or shells: what a
 * disconnected session adds is this buffer; its shell and (gone) peer cost what a connected one does,
 * measured by the bench's capacity scenario.
 *
 *   node --expose-gc dist/bench/replay-memory.js [sessions=1000] [capacity=1048576]
 */
import { ReplayBuffer } from '../workers/ReplayBuffer.js';

interface Profile {
  name: string;
  /** Output bytes each session produced since its browser dropped, and the size of each PTY read. */
  bytes: number;
  readBytes: number;
}

const sessions = Number(process.argv[2] ?? 1000);
const capacity = Number(process.argv[3] ?? 1024 * 1024);

const PROFILES: Profile[] = [
  { name: 'prompt (200 B in 20 B reads)', bytes: 200, readBytes: 20 },
  { name: 'interactive (16 KiB in 300 B reads)', bytes: 16 * 1024, readBytes: 300 },
  { name: 'bulk, buffer full (32 KiB reads)', bytes: capacity, readBytes: 32 * 1024 },
];

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function memory(): { rss: number; arrayBuffers: number } {
  gc();
  const { rss, arrayBuffers } = process.memoryUsage();
  return { rss, arrayBuffers };
}

function fill(profile: Profile): ReplayBuffer[] {
  const read = Buffer.alloc(profile.readBytes, 0x61);
  const buffers: ReplayBuffer[] = [];
  for (let i = 0; i < sessions; i++) {
    const buffer = new ReplayBuffer(capacity);
    // While connected the ring kept what was sent; the drop pins it.
    buffer.pin();
    for (let left = profile.bytes; left > 0; left -= read.length) {
      buffer.append(read.subarray(0, Math.min(left, read.length)));
    }
    buffers.push(buffer);
  }
  return buffers;
}

const MiB = 1024 * 1024;
console.log(`# ${sessions} disconnected sessions, --replay-buffer ${capacity}`);
for (const profile of PROFILES) {
  const base = memory();
  const buffers = fill(profile);
  const after = memory();
  const held = buffers.reduce((sum, b) => sum + b.size, 0);
  const retained = buffers.reduce((sum, b) => sum + b.retainedBytes, 0);
  console.log(
    `${profile.name}: output held ${(held / MiB).toFixed(1)} MiB, blocks ${(retained / MiB).toFixed(1)} MiB ` +
      `(${(retained / sessions / 1024).toFixed(1)} KiB a session), RSS +${((after.rss - base.rss) / MiB).toFixed(1)} MiB, ` +
      `array buffers +${((after.arrayBuffers - base.arrayBuffers) / MiB).toFixed(1)} MiB`,
  );
  buffers.length = 0;
}
