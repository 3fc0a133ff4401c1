/**
 * A terminal as the bench drives it, whatever carries the bytes: a termgate session over WebRTC
 * (`BenchPeer`) or a direct dockerode TTY exec (`DirectExec`, the baseline). The work itself (the
 * commands typed, the markers waited for, what is timed) lives here once, so both sides do exactly
 * the same thing and the ratio compares only the transport.
 */
import { performance } from 'node:perf_hooks';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes of one host. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

const TAIL_BYTES = 256;

export type BulkWorkload = 'blocks' | 'lines';

export abstract class Terminal {
  #tail = '';
  #bytes = 0;
  #waiter: (() => void) | undefined;
  #lastByte = -1;

  /** Sends keystrokes to the shell. */
  protected abstract write(text: string): void;

  /** Ends the shell and the transport. Idempotent. */
  abstract close(): Promise<void>;

  /** Feeds output received from the shell. */
  protected push(chunk: Buffer): void {
    this.#bytes += chunk.length;
    this.#lastByte = chunk[chunk.length - 1] ?? this.#lastByte;
    // The tail only matters for markers; skip the string work while a bulk transfer streams.
    this.#tail = (
      this.#tail + chunk.subarray(Math.max(0, chunk.length - TAIL_BYTES)).toString('latin1')
    ).slice(-TAIL_BYTES);
    this.#waiter?.();
  }

  get outputBytes(): number {
    return this.#bytes;
  }

  /** Resolves when `check` holds, re-checked on every chunk of output. */
  protected until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiter = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.#waiter = undefined;
        resolve();
      };
    });
  }

  /** Types a command line and waits for `marker` in the output. The marker is typed split by '' so the
   * echoed command line never contains it; only the command's output does. */
  async run(command: string, marker: string, timeoutMs = 30_000): Promise<void> {
    this.#tail = '';
    const typed = `${marker.slice(0, 1)}''${marker.slice(1)}`;
    this.write(`${command}; echo ${typed}\n`);
    await this.until(() => this.#tail.includes(marker), JSON.stringify(marker), timeoutMs);
  }

  /** Replaces the shell with `cat` on a raw, non-echoing PTY: each byte typed comes back once. */
  async enterEchoMode(timeoutMs = 30_000): Promise<void> {
    await this.run('stty raw -echo', 'RAWREADY', timeoutMs);
    this.write('exec cat\n');
    // `cat` is running once a typed byte comes back.
    await this.keystroke(timeoutMs);
  }

  /** One keystroke round trip, in milliseconds: a byte typed, the same byte back. */
  async keystroke(timeoutMs = 10_000): Promise<number> {
    const seq = this.#bytes;
    const char = String.fromCharCode(97 + (seq % 26));
    const code = char.charCodeAt(0);
    const start = performance.now();
    this.write(char);
    await this.until(() => this.#bytes > seq && this.#lastByte === code, 'a keystroke echo', timeoutMs);
    return performance.now() - start;
  }

  /**
   * `bytes` of `yes` output through a raw PTY; returns when the end marker arrived. `blocks` writes it
   * to the PTY in 64 KiB writes (bulk output); `lines` as busybox `head -c` does, a few hundred bytes
   * per write (a chatty program: bound by messages per second rather than bytes).
   */
  async bulk(
    bytes: number,
    workload: BulkWorkload,
    timeoutMs = 600_000,
  ): Promise<{ startMs: number; endMs: number; bytes: number }> {
    await this.run('stty raw -echo', 'BULKREADY', 30_000);
    const before = this.#bytes;
    const startMs = nowMs();
    // Wrapped in `sh -c`: typed straight into the interactive busybox ash of the test image, `yes` runs
    // as an in-shell applet that writes a few bytes per syscall and caps the pipeline below 1 MB/s,
    // which would measure the producer instead of the transport.
    const pipeline =
      workload === 'blocks'
        ? `yes | head -c ${bytes} | dd bs=65536 iflag=fullblock 2>/dev/null`
        : `yes | head -c ${bytes}`;
    await this.run(`sh -c '${pipeline}'`, 'BULKDONE', timeoutMs);
    const endMs = nowMs();
    await this.run('stty sane', 'SANE', 30_000);
    return { startMs, endMs, bytes: this.#bytes - before };
  }
}
