/** Plain UDP sockets on loopback for the tests of the agent's own UDP relays (the ICE front, the TURN proxy). */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';

const sockets = new Set<Socket>();

/** A UDP socket on 127.0.0.1, closed by `closeUdpSockets()`. */
export async function udp(): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  sockets.add(socket);
  return socket;
}

export function closeUdpSockets(): void {
  for (const socket of sockets) socket.close();
  sockets.clear();
}

/** The next datagram `socket` receives, or undefined after `ms`. */
export async function nextDatagram(
  socket: Socket,
  ms = 500,
): Promise<{ packet: Buffer; from: RemoteInfo } | undefined> {
  const signal = AbortSignal.timeout(ms);
  try {
    const [packet, from] = (await once(socket, 'message', { signal })) as [Buffer, RemoteInfo];
    return { packet, from };
  } catch {
    return undefined;
  }
}
