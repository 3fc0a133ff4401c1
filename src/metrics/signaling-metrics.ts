/**
 * Metrics of the signaling link to the cloud: whether it is up, its reconnections, its losses by reason,
 * and the payloads from the cloud the agent refused, by topic and code (ICE has no ack to answer on, so
 * this is where a refused candidate shows).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SignalingClient } from '../signaling/SignalingClient.js';

/** socket.io-client's disconnect reasons; anything else is counted as 'other' to keep the label closed. */
const DISCONNECT_REASONS = new Set([
  'io server disconnect',
  'io client disconnect',
  'ping timeout',
  'transport close',
  'transport error',
  'parse error',
]);

/** Registers the link's metrics; returns what detaches them from the client. */
export function addSignalingLinkMetrics(registers: Registry[], signaling: SignalingClient): () => void {
  const connected = new Gauge({
    name: 'termgate_signaling_connected',
    help: '1 while the Socket.IO link to the cloud is connected, else 0.',
    registers,
    collect: () => {
      connected.set(signaling.connected ? 1 : 0);
    },
  });
  const reconnects = new Counter({
    name: 'termgate_signaling_reconnects_total',
    help: 'Successful reconnections of the signaling link.',
    registers,
  });
  const disconnects = new Counter({
    name: 'termgate_signaling_disconnects_total',
    help: "Losses of the signaling link, by socket.io's disconnect reason.",
    labelNames: ['reason'],
    registers,
  });
  for (const reason of [...DISCONNECT_REASONS, 'other']) disconnects.inc({ reason }, 0);
  const refused = new Counter({
    name: 'termgate_signaling_payloads_refused_total',
    help: 'Payloads from the cloud the agent refused (invalid, or for an unknown session), by topic and error code.',
    labelNames: ['topic', 'code'],
    registers,
  });
  const onReconnect = () => reconnects.inc();
  const onDisconnect = (reason: string) =>
    disconnects.inc({ reason: DISCONNECT_REASONS.has(reason) ? reason : 'other' });
  const onRefused = (topic: string, code: string) => refused.inc({ topic, code });
  signaling.on('reconnect', onReconnect).on('disconnect', onDisconnect).on('bad-payload', onRefused);
  return () =>
    signaling.off('reconnect', onReconnect).off('disconnect', onDisconnect).off('bad-payload', onRefused);
}
