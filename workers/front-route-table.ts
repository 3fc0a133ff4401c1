/**
 * This worker's view of the ICE UDP front's routes table (common/protocol/front-routes.ts): behind the
 * front, a session's remote end is one of the front's route sockets, and the table says which browser
 * address it stands for. Absent without `--ice-udp-port`.
 */
import { workerData } from 'node:worker_threads';
import { readFrontRoute, type RoutedAddress } from '../common/protocol/front-routes.js';
import type { PoolWorkerData } from '../common/protocol/worker-messages.js';

const table = (workerData as Partial<PoolWorkerData> | null | undefined)?.frontRoutes;

/** The browser address the front's route socket at `end.port` stands for, if the table knows it. */
export function browserBehindFront(end: { port: number }): RoutedAddress | undefined {
  return table === undefined ? undefined : readFrontRoute(table, end.port);
}
