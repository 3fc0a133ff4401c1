/**
 * A terminal as the bench drives it, whatever carries the bytes: a termgate session over WebRTC
 * (`BenchPeer`) or a direct dockerode TTY exec (`DirectExec`, the baseline). The work itself (the
 * commands typed, the markers waited for, what is timed) lives here once, so both sides do exactly
 * the same thing and the ratio compares only the transport.
 */
import { performance } from 'node:perf_hooks';
import { RangeDigest } from './RangeDigest.js';
import { workloadSpec, type BulkWorkload } from './workloads.js';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes of one host. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

const TAIL_BYTES = 256;
/** Room for the longest marker searched across a chunk boundary. */
const EDGE_BYTES = 32;

/** Where a marker was first seen in a terminal's output: its absolute byte offset, and when. */
interface MarkWatch {
  marker: Buffer;
  at: number | undefined;
  atMs: number | undefined;
}

/**
 * Output bytes received by every terminal of this process: what a load process reports as its progress
 * to the bench parent.
 */
export const outputActivity = { bytes: 0 };

export abstract class Terminal {
  #tail = '';
  #bytes = 0;
  #waiter: (() => void) | undefined;
  #lastByte = -1;
  /** When the last output arrived (`performance.now()`). */
  #lastOutputAt = 0;
  /** The last bytes received, to find a marker split across two chunks. */
  #edge = Buffer.alloc(0);
  #marks: MarkWatch[] = [];
  /** The body of a bulk transfer being hashed, between its start and end marks. */
  #digest: { digest: RangeDigest; start: MarkWatch; end: MarkWatch } | undefined;

  /** Sends keystrokes to the shell. */
  protected abstract write(text: string): void;

  /** Ends the shell and the transport. Idempotent. */
  abstract close(): Promise<void>;

  /** Feeds output received from the shell. */
  protected push(chunk: Buffer): void {
    const offset = this.#bytes;
    this.#bytes += chunk.length;
    outputActivity.bytes += chunk.length;
    this.#lastByte = chunk[chunk.length - 1] ?? this.#lastByte;
    this.#lastOutputAt = performance.now();
    for (const mark of this.#marks) if (mark.at === undefined) this.#find(mark, chunk, offset);
    const d = this.#digest;
    if (d) {
      const from = d.start.at === undefined ? undefined : d.start.at + d.start.marker.length;
      d.digest.push(chunk, offset, from, d.end.at);
    }
    if (this.#marks.length > 0) {
      this.#edge = Buffer.concat([this.#edge, chunk.subarray(Math.max(0, chunk.length - EDGE_BYTES))]);
      this.#edge = this.#edge.subarray(Math.max(0, this.#edge.length - EDGE_BYTES));
    }
    // The tail only matters for markers; skip the string work while a bulk transfer streams.
    this.#tail = (
      this.#tail + chunk.subarray(Math.max(0, chunk.length - TAIL_BYTES)).toString('latin1')
    ).slice(-TAIL_BYTES);
    this.#waiter?.();
  }

  /** Native searches only: a bulk transfer must not pay a string conversion per chunk. */
  #find(mark: MarkWatch, chunk: Buffer, offset: number): void {
    const head = chunk.subarray(0, mark.marker.length - 1);
    const across = Buffer.concat([this.#edge, head]).indexOf(mark.marker);
    const inside = across >= 0 ? -1 : chunk.indexOf(mark.marker);
    if (across >= 0) mark.at = offset - this.#edge.length + across;
    else if (inside >= 0) mark.at = offset + inside;
    if (mark.at !== undefined) mark.atMs = nowMs();
  }

  /** Starts looking for `marker` in the output from now on. */
  #watch(marker: string): MarkWatch {
    const mark: MarkWatch = { marker: Buffer.from(marker, 'latin1'), at: undefined, atMs: undefined };
    this.#edge = Buffer.alloc(0);
    this.#marks.push(mark);
    return mark;
  }

  get outputBytes(): number {
    return this.#bytes;
  }

  /**
   * Resolves when `check` holds, re-checked on every chunk of output. Bounded by progress: it fails when
   * no output at all has arrived for `stallMs`, however long the whole takes.
   */
  protected until(check: () => boolean, what: string, stallMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let seen = this.#bytes;
      const timer = setInterval(
        () => {
          if (this.#bytes !== seen) {
            seen = this.#bytes;
            return;
          }
          clearInterval(timer);
          this.#waiter = undefined;
          reject(new Error(`no output for ${stallMs} ms while waiting for ${what}`));
        },
        Math.max(stallMs, 1),
      );
      this.#waiter = () => {
        if (!check()) return;
        clearInterval(timer);
        this.#waiter = undefined;
        resolve();
      };
    });
  }

  /** Types a command line and waits for `marker` in the output. The marker is typed split by '' so the
   * echoed command line never contains it; only the command's output does. */
  async run(command: string, marker: string, stallMs = 30_000): Promise<void> {
    this.#tail = '';
    this.write(`${command}; echo ${typed(marker)}\n`);
    await this.until(() => this.#tail.includes(marker), JSON.stringify(marker), stallMs);
  }

  /** Replaces the shell with `cat` on a raw, non-echoing PTY: each byte typed comes back once. */
  async enterEchoMode(stallMs = 30_000): Promise<void> {
    await this.run('stty raw -echo', 'RAWREADY', stallMs);
    this.write('exec cat\n');
    // `cat` is running once a typed byte comes back.
    await this.keystroke(stallMs);
  }

  /** One keystroke round trip, in milliseconds: a byte typed, the same byte back. */
  async keystroke(stallMs = 10_000): Promise<number> {
    const seq = this.#bytes;
    const char = String.fromCharCode(97 + (seq % 26));
    const code = char.charCodeAt(0);
    const start = performance.now();
    this.write(char);
    await this.until(() => this.#bytes > seq && this.#lastByte === code, 'a keystroke echo', stallMs);
    return performance.now() - start;
  }

  /**
   * Ctrl-C under a flood: `yes` (under `sh -c`, see `bulk`) streams until `floodBytes` arrived, then
   * Ctrl-C; the end of the flood is found by quiet (no output for `quietMs`). Returns the time from the
   * keystroke to the last output byte, then checks the prompt is back (a command answers).
   */
  async interrupt(floodBytes: number, quietMs = 400, stallMs = 30_000): Promise<number> {
    await this.run('stty sane', 'FLOODREADY', stallMs);
    const start = this.#bytes;
    this.write("sh -c 'yes 0123456789abcdef'\n");
    await this.until(() => this.#bytes - start >= floodBytes, 'the flood', stallMs);
    const sentAt = performance.now();
    this.write('\x03');
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (performance.now() - this.#lastOutputAt <= quietMs) return;
        clearInterval(timer);
        resolve();
      }, 20);
    });
    const stopMs = this.#lastOutputAt - sentAt;
    await this.run('true', 'PROMPTBACK', stallMs);
    return stopMs;
  }

  /**
   * One bulk transfer (see workloads.ts): prepares the TTY (raw, or cooked as terminals print), runs the
   * preparation if any, then the pipeline between a start and an end marker. Returns when the end marker
   * arrived, with the exact count and sha256 of the bytes between the markers (the pipeline's output,
   * nothing else: the command line's echo comes before the start marker). Bounded by progress: fails
   * when no output arrives for `stallMs`.
   */
  async bulk(
    bytes: number,
    workload: BulkWorkload,
    stallMs = 60_000,
  ): Promise<{ startMs: number; endMs: number; bytes: number; sha256: string }> {
    const spec = workloadSpec(workload, bytes, `/tmp/termgate-bench-${workload}-${bytes}.txt`);
    await this.run(spec.tty === 'raw' ? 'stty raw -echo' : 'stty sane', 'BULKREADY', stallMs);
    if (spec.prepare) await this.run(spec.prepare, 'PREPARED', stallMs);
    const eol = spec.tty === 'raw' ? '\n' : '\r\n';
    const start = this.#watch(`BULKSTART${eol}`);
    const end = this.#watch(`BULKDONE${eol}`);
    const digest = new RangeDigest(2 * EDGE_BYTES);
    this.#digest = { digest, start, end };
    try {
      const startMs = nowMs();
      // Wrapped in `sh -c`: typed straight into the interactive busybox ash of the test image, `yes`
      // runs as an in-shell applet that writes a few bytes per syscall and caps the pipeline below
      // 1 MB/s, which would measure the producer instead of the transport.
      this.write(`echo ${typed('BULKSTART')}; sh -c '${spec.command}'; echo ${typed('BULKDONE')}\n`);
      await this.until(() => end.at !== undefined, '"BULKDONE"', stallMs);
      if (start.at === undefined || start.at > end.at!) throw new Error('the start marker is missing');
      const body = end.at! - (start.at + start.marker.length);
      if (digest.digest === undefined) throw new Error('the body was not hashed to its end');
      await this.run('stty sane', 'SANE', stallMs);
      return { startMs, endMs: end.atMs!, bytes: body, sha256: digest.digest };
    } finally {
      this.#digest = undefined;
      this.#marks = this.#marks.filter((m) => m !== start && m !== end);
    }
  }
}

/** A marker as typed: split by '' so that only the command's output, never an echo, contains it. */
function typed(marker: string): string {
  return `${marker.slice(0, 1)}''${marker.slice(1)}`;
}
