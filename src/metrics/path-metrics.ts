/**
 * Metrics of the paths sessions take (issue 14): direct or through a TURN relay, and their round trip.
 * The kind of a session's selected ICE pair and its RTT are sampled by its worker (workers/PathWatch.ts)
 * into the session's stats; sessions by path and relayed bytes are read from there at scrape time, the
 * RTT histogram observes each session's path when it becomes known or changes kind. Labels: the path
 * kind only (host, srflx, prflx, relay, unknown).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { PATH_KINDS, type SessionPath } from '../../common/protocol/worker-messages.js';
import type { SessionRegistry } from '../sessions/SessionRegistry.js';
import type { SessionRouter } from '../sessions/SessionRouter.js';
import type { SessionTotals } from './SessionTotals.js';

export interface PathMetricsSources {
  registry: SessionRegistry;
  router: SessionRouter;
  totals: SessionTotals;
}

/** Registers the path metrics; returns what detaches them from the router. */
export function addPathMetrics(registers: Registry[], sources: PathMetricsSources): () => void {
  const { registry, router, totals } = sources;
  const byPath = new Gauge({
    name: 'termgate_sessions_by_path',
    help: 'Live sessions by their selected ICE path: host (direct), srflx/prflx (through a NAT), relay (TURN), unknown (not connected yet).',
    labelNames: ['path'],
    registers,
    collect: () => {
      const counts = PATH_KINDS.map(() => 0);
      for (const session of registry.sessions()) {
        const kind = session.getStats().pathKind;
        counts[kind in counts ? kind : 0]! += 1;
      }
      PATH_KINDS.forEach((path, i) => byPath.set({ path }, counts[i]!));
    },
  });
  const rtt = new Histogram({
    name: 'termgate_path_rtt_seconds',
    help: "Round trip (SCTP's estimate) of a session's path when it became known or changed kind, by path.",
    labelNames: ['path'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers,
  });
  const relayed: Counter = new Counter({
    name: 'termgate_relayed_bytes_total',
    help: 'Terminal bytes (both directions) of sessions whose selected path goes through a TURN relay.',
    registers,
    collect: () => {
      totals.advance(relayed, 'relayed_bytes', {}, totals.now().relayedBytes);
    },
  });
  const onPath = (path: SessionPath) => {
    if (path.rttMs !== undefined) rtt.observe({ path: path.kind }, path.rttMs / 1000);
  };
  router.on('path', onPath);
  return () => router.off('path', onPath);
}
