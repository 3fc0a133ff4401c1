/**
 * Watches one session's selected ICE path once its channel is open: samples it at once and then every
 * few seconds (ICE may switch pairs, the round trip moves), writes the kind and round trip into the
 * session's stats for the scrape, and says when the kind is first known or changes. Two native getters
 * per sample, nothing per message.
 */
import { StatSlot } from '../common/protocol/session-stats.js';
import { PATH_KINDS } from '../common/protocol/worker-messages.js';
import type { SelectedPath } from './selected-path.js';

/** How often a live session's path is sampled. */
const SAMPLE_INTERVAL_MS = 5000;

export interface PathWatchOptions {
  sample: () => SelectedPath | undefined;
  /** The session's counters (session-stats.ts). */
  stats: Float64Array;
  /** The path's kind became known, or changed. */
  onPath: (path: SelectedPath) => void;
}

export class PathWatch {
  readonly #o: PathWatchOptions;
  #timer: NodeJS.Timeout | undefined;
  #kind: SelectedPath['kind'] | undefined;
  #closed = false;

  constructor(options: PathWatchOptions) {
    this.#o = options;
  }

  /** Samples now, then every few seconds until closed. */
  start(): void {
    if (this.#closed || this.#timer) return;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), SAMPLE_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Idempotent. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }

  #sample(): void {
    const path = this.#o.sample();
    if (!path) return;
    const { stats } = this.#o;
    stats[StatSlot.pathKind] = PATH_KINDS.indexOf(path.kind);
    if (path.rttMs !== undefined) stats[StatSlot.rttMs] = path.rttMs;
    if (path.kind === this.#kind) return;
    this.#kind = path.kind;
    this.#o.onPath(path);
  }
}
