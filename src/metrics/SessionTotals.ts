/**
 * The data-path counters of all sessions, as prom-client counters want them: the final values of ended
 * sessions plus the live sessions' shared counters, read at scrape time, and each exported series
 * advanced by the difference since the last scrape.
 */
import type { Counter } from 'prom-client';
import type { SessionStats } from '../../common/protocol/session-stats.js';
import { PATH_KINDS } from '../../common/protocol/worker-messages.js';
import type { SessionHandle } from '../sessions/SessionHandle.js';
import type { SessionRegistry } from '../sessions/SessionRegistry.js';

/** The counters that add up over sessions, and the terminal bytes of sessions on a relayed path. */
export type Totals = Omit<SessionStats, 'lastActivityMs' | 'pathKind' | 'rttMs'> & { relayedBytes: number };

const RELAY = PATH_KINDS.indexOf('relay');

/** One session's share of the totals. */
function totalsOf(stats: SessionStats): Totals {
  const { lastActivityMs: _at, pathKind, rttMs: _rtt, ...counters } = stats;
  const relayedBytes = pathKind === RELAY ? stats.bytesFromBrowser + stats.bytesToBrowser : 0;
  return { ...counters, relayedBytes };
}

function zeroTotals(): Totals {
  return {
    bytesFromBrowser: 0,
    bytesToBrowser: 0,
    messagesFromBrowser: 0,
    messagesToBrowser: 0,
    protocolErrors: 0,
    backpressurePauses: 0,
    handlerFaults: 0,
    repliesDropped: 0,
    cleanupFailures: 0,
    ptyErrors: 0,
    outputFlushed: 0,
    relayedBytes: 0,
  };
}

function add(into: Totals, stats: Totals): void {
  for (const key of Object.keys(into) as Array<keyof Totals>) into[key] += stats[key];
}

export class SessionTotals {
  readonly #registry: SessionRegistry;
  /** Final counters of sessions that have ended; live ones are read from their buffers at scrape time. */
  readonly #ended = zeroTotals();
  /** What each scrape-time counter has already been advanced to, by series key. */
  readonly #exported = new Map<string, number>();

  constructor(registry: SessionRegistry) {
    this.#registry = registry;
  }

  /** Keeps a session's final counts once it has left the registry. */
  ended(session: SessionHandle): void {
    add(this.#ended, totalsOf(session.getStats()));
  }

  /** Ended sessions' totals plus the live sessions' counters, as of now. */
  now(): Totals {
    const t = { ...this.#ended };
    for (const session of this.#registry.sessions()) add(t, totalsOf(session.getStats()));
    return t;
  }

  /** Advances a scrape-time counter to `total` (prom-client counters only go up by increments); `key` names the series. */
  advance<L extends string>(
    counter: Counter<L>,
    key: string,
    labels: Partial<Record<L, string>>,
    total: number,
  ): void {
    const delta = total - (this.#exported.get(key) ?? 0);
    if (delta < 0) return; // cannot happen: ended sessions keep their final counts
    this.#exported.set(key, total);
    counter.inc(labels, delta);
  }
}
