/**
 * This worker's share of `--ice-udp-port` (common/protocol/ice-port-slots.ts): the one UDP port all its
 * peers listen on. Claimed when the worker loads, or at its next session if every slot was held then (a
 * replaced thread's port is freed once the pool sees the thread gone); freed after the worker has closed
 * its peers and cleaned the addon up, when the socket is closed.
 */
import { threadId, workerData } from 'node:worker_threads';
import { ErrorCodes, TermgateError } from '../common/errors.js';
import { claimIcePort, releaseIcePort } from '../common/protocol/ice-port-slots.js';
import type { PoolWorkerData, SessionSettings } from '../common/protocol/worker-messages.js';
import { workerLog } from './pool-line.js';

const slots = (workerData as Partial<PoolWorkerData> | null | undefined)?.icePorts;
let port: number | undefined;
claim();

function claim(): void {
  if (!slots || port !== undefined) return;
  port = claimIcePort(slots, threadId);
  if (port !== undefined) workerLog.info({ port }, 'ICE UDP mux: this worker listens on its port');
}

/** The session's settings with this worker's port as the whole port range, when the mux is on. */
export function withWorkerIcePort(settings: SessionSettings): SessionSettings {
  if (!settings.iceUdpMux) return settings;
  claim();
  if (port === undefined) {
    throw new TermgateError(
      ErrorCodes.ICE_PORT_UNAVAILABLE,
      'every --ice-udp-port slot is held; a replaced worker thread has not released its port yet, try again',
    );
  }
  return { ...settings, portRangeBegin: port, portRangeEnd: port };
}

/** Frees this worker's port; only once its peers are closed and the addon cleaned up. Idempotent. */
export function releaseWorkerIcePort(): void {
  if (slots && port !== undefined) releaseIcePort(slots, threadId);
  port = undefined;
}
