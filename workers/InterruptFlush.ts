/**
 * What a terminal does with output queued behind a Ctrl-C, done for the part of the path the kernel
 * cannot reach. When the interrupt key raises SIGINT, the kernel's TTY discards the output still in the
 * PTY's queue (unless the program set NOFLSH) and then echoes the key as `^C` (ECHOCTL). Behind the PTY,
 * the engine's own pipeline (the containerd shim, its FIFO, dockerd, the exec's socket) holds up to ~1 MB
 * more whenever the browser is the slower end, and that is what keeps a flood on the screen after Ctrl-C.
 *
 * So after an interrupt key typed while output was backed up, the agent reads the exec's output as fast as
 * it comes and looks for that echo. Everything before it was written before the interrupt, and would have
 * been in the PTY's queue had that been larger: it is dropped, counted, and the output goes on from the
 * `^C`. When no echo comes (a raw-mode program, an editor, reads the key as a byte; ECHOCTL is off; the
 * key was not the interrupt character), nothing is dropped: what was read is handed on in order, once
 * `maxHeldBytes` were read without the echo or the output paused for a moment (OutputFlow decides when).
 *
 * Measured on this host (a dockerode reader that stops reading under `yes`, then sends Ctrl-C): 0.83 MB
 * and 1.18 MB arrived before the `^C`, then `\r\n` and the prompt.
 */

/** The TTY's echo of the interrupt key (ECHOCTL), written after it flushed the PTY's queue. */
const ECHOED_INTERRUPT = Buffer.from('^C');
const CARET = ECHOED_INTERRUPT[0]!;
const C = ECHOED_INTERRUPT[1]!;

/** What a read during the search came to. */
export type HuntStep =
  /** No echo yet: the read is held. */
  | { kind: 'holding' }
  /** The echo: `dropped` bytes before it go; `rest` (from the `^C` on) is output as usual. */
  | { kind: 'found'; dropped: number; rest: Buffer }
  /** `maxHeldBytes` read and no echo: every held read, in order, is output as usual. */
  | { kind: 'full'; held: Buffer[] };

export class InterruptFlush {
  readonly #maxHeldBytes: number;
  #held: Buffer[] = [];
  #heldBytes = 0;

  constructor(maxHeldBytes: number) {
    this.#maxHeldBytes = maxHeldBytes;
  }

  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** One read of the exec's output while the echo is looked for. */
  take(chunk: Buffer): HuntStep {
    // The echo may straddle two reads.
    const last = this.#held.at(-1);
    if (last !== undefined && last.at(-1) === CARET && chunk[0] === C) {
      return {
        kind: 'found',
        dropped: this.#heldBytes - 1,
        rest: Buffer.concat([ECHOED_INTERRUPT, chunk.subarray(1)]),
      };
    }
    const at = chunk.indexOf(ECHOED_INTERRUPT);
    if (at >= 0) return { kind: 'found', dropped: this.#heldBytes + at, rest: chunk.subarray(at) };
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes < this.#maxHeldBytes) return { kind: 'holding' };
    return { kind: 'full', held: this.release() };
  }

  /** Gives up the search: the held reads, in order, to be output as usual. */
  release(): Buffer[] {
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    return held;
  }
}
