/**
 * The thread the ICE UDP front runs in (IceUdpFront): its packets are relayed here, off the main
 * thread, which keeps signaling and session routing. Told to close by its handle (IceFrontThread).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { IceUdpFront, type IceUdpFrontOptions } from './IceUdpFront.js';
import { parseFrontCommand, type FrontReport } from './front-messages.js';

const port = parentPort!;
const report = (message: FrontReport) => port.postMessage(message);

try {
  const front = await IceUdpFront.open(workerData as IceUdpFrontOptions);
  port.on('message', (raw: unknown) => {
    if (parseFrontCommand(raw)?.type !== 'close') return;
    front.close();
    port.close();
  });
  report({ type: 'listening' });
} catch (err) {
  const { code, message } = err as NodeJS.ErrnoException;
  report({ type: 'failed', code: code ?? 'UNKNOWN', message });
  port.close();
}
