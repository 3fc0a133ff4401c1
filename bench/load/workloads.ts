/**
 * What the throughput scenario makes a shell print, and exactly what a terminal must receive for it.
 *
 * Terminals mostly print lines, through a cooked TTY whose output processing (ONLCR) turns each `\n`
 * into `\r\n`: `yes <16 chars> | head -c N` (17-byte lines), `seq` (a write per short line) and `cat` of
 * a large text file. `blocks` is the kind case beside them: 64 KiB writes to a raw PTY. The expected
 * bytes are generated here from the same rules, so a transfer is checked by its length and sha256, not
 * against the other side.
 */
import { createHash } from 'node:crypto';

export type BulkWorkload = 'yes' | 'seq' | 'cat' | 'blocks';

export const LINE_WORKLOADS = ['yes', 'seq', 'cat'] as const satisfies readonly BulkWorkload[];

/** The 16 characters `yes` repeats. */
const YES_LINE = '0123456789abcdef';

export interface WorkloadSpec {
  /** `cooked`: what terminals print (ONLCR); `raw`: no output processing, no echo. */
  tty: 'cooked' | 'raw';
  /** Run once before the timed command (not timed): e.g. writing the file `cat` prints. */
  prepare: string | undefined;
  /** The timed pipeline, run under `sh -c` (see Terminal.bulk). */
  command: string;
  /** How the row names it. */
  label: string;
}

/** `seq 1 count` prints at least `bytes` bytes (before the TTY adds its `\r`s). */
export function seqCount(bytes: number): number {
  let count = 0;
  let printed = 0;
  for (let digits = 1; ; digits++) {
    const first = 10 ** (digits - 1);
    const inRange = 9 * first;
    const need = Math.ceil((bytes - printed) / (digits + 1));
    if (need <= inRange) return count + need;
    count += inRange;
    printed += inRange * (digits + 1);
  }
}

/** The command lines of `workload` sized to `bytes`; `cat` prints the file at `file`. */
export function workloadSpec(workload: BulkWorkload, bytes: number, file: string): WorkloadSpec {
  switch (workload) {
    case 'yes':
      return {
        tty: 'cooked',
        prepare: undefined,
        command: `yes ${YES_LINE} | head -c ${bytes}`,
        label: 'yes 0123456789abcdef | head -c',
      };
    case 'seq':
      return { tty: 'cooked', prepare: undefined, command: `seq 1 ${seqCount(bytes)}`, label: 'seq' };
    case 'cat':
      // Written under another name and renamed, so a reader never sees a half-written file.
      return {
        tty: 'cooked',
        prepare: `seq 1 ${seqCount(bytes)} > ${file}.part && mv ${file}.part ${file}`,
        command: `cat ${file}`,
        label: 'cat of a text file',
      };
    case 'blocks':
      return {
        tty: 'raw',
        prepare: undefined,
        command: `yes | head -c ${bytes} | dd bs=65536 iflag=fullblock 2>/dev/null`,
        label: 'dd bs=64k (raw PTY)',
      };
    default:
      workload satisfies never;
      throw new Error(`unknown workload ${String(workload)}`);
  }
}

const GENERATED_CHUNK = 1 << 20;

/** `text` repeated and cut to exactly `bytes`, in pieces of about a MiB. */
function* repeated(text: string, bytes: number): Generator<Buffer> {
  const unit = Buffer.from(text);
  const block = Buffer.alloc(Math.max(unit.length, GENERATED_CHUNK - (GENERATED_CHUNK % unit.length)));
  for (let i = 0; i < block.length; i += unit.length) unit.copy(block, i);
  for (let left = bytes; left > 0; left -= block.length)
    yield block.subarray(0, Math.min(left, block.length));
}

/** `seq 1 count`, each line ended by `eol`. */
function* seqLines(count: number, eol: string): Generator<Buffer> {
  const perChunk = 50_000;
  for (let from = 1; from <= count; from += perChunk) {
    const to = Math.min(count, from + perChunk - 1);
    let text = '';
    for (let n = from; n <= to; n++) text += `${n}${eol}`;
    yield Buffer.from(text, 'latin1');
  }
}

/** Exactly the bytes a terminal receives for `workload`, between the start and end markers. */
export function* expectedOutput(workload: BulkWorkload, bytes: number): Generator<Buffer> {
  switch (workload) {
    case 'yes': {
      // head cuts the raw stream; each whole 17-byte line gains a `\r`, the cut line keeps its head.
      const line = `${YES_LINE}\n`;
      const whole = Math.floor(bytes / line.length);
      yield* repeated(`${YES_LINE}\r\n`, whole * (line.length + 1));
      const rest = bytes % line.length;
      if (rest > 0) yield Buffer.from(line.slice(0, rest));
      return;
    }
    case 'seq':
    case 'cat':
      yield* seqLines(seqCount(bytes), '\r\n');
      return;
    case 'blocks':
      yield* repeated('y\n', bytes);
      return;
    default:
      workload satisfies never;
  }
}

export interface OutputDigest {
  bytes: number;
  sha256: string;
}

const digests = new Map<string, OutputDigest>();

/** Length and sha256 of `expectedOutput`, computed once per workload and size. */
export function expectedDigest(workload: BulkWorkload, bytes: number): OutputDigest {
  const key = `${workload}:${bytes}`;
  let digest = digests.get(key);
  if (!digest) {
    const hash = createHash('sha256');
    let length = 0;
    for (const piece of expectedOutput(workload, bytes)) {
      hash.update(piece);
      length += piece.length;
    }
    digest = { bytes: length, sha256: hash.digest('hex') };
    digests.set(key, digest);
  }
  return digest;
}
