/**
 * Socket.IO stand-ins for agents and browsers, for the cloud stand-in's own tests. They speak the
 * protocol on the wire exactly as the real agent and the page do; nothing here touches WebRTC.
 */
import { io, type Socket } from 'socket.io-client';
import type { DeviceInfo } from '../../common/protocol/signaling.js';

export interface ReceivedOffer {
  correlation_id: number;
  session_id: string;
  device_id: string;
  sdp: string;
  sdp_type: string;
  resume_token?: string;
  resume_offset?: number;
}

export type OfferReply = (offer: ReceivedOffer) => unknown;

export interface FakeAgent {
  socket: Socket;
  devices: DeviceInfo[];
  offers: ReceivedOffer[];
  ice: unknown[];
  disconnects: unknown[];
  /** How this agent acks offers; default: success with `answer-from-<agent_id>` as the SDP. */
  reply: OfferReply | undefined;
  close(): Promise<void>;
}

/** Waits until `predicate` is true, polling; rejects after `timeoutMs` naming `what`. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function closeSocket(socket: Socket): Promise<void> {
  if (!socket.connected) {
    socket.close();
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    socket.once('disconnect', () => resolve());
    socket.close();
  });
}

function connected(socket: Socket, timeoutMs = 5000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket did not connect')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Connects a fake agent serving `devices`; resolves once the handshake is accepted. */
export async function connectFakeAgent(
  url: string,
  agentId: string,
  devices: string[],
  token: string,
): Promise<FakeAgent> {
  const socket = io(url, {
    transports: ['websocket'],
    reconnection: false,
    auth: { token, role: 'agent', agent_id: agentId },
  });
  const agent: FakeAgent = {
    socket,
    devices: devices.map((name) => ({ name, state: 'running' })),
    offers: [],
    ice: [],
    disconnects: [],
    reply: undefined,
    close: () => closeSocket(socket),
  };
  socket.on('agent:devices', (_payload: unknown, ack: (reply: unknown) => void) =>
    ack({ devices: agent.devices }),
  );
  socket.on('webrtc:offer', (offer: ReceivedOffer, ack: (reply: unknown) => void) => {
    agent.offers.push(offer);
    const reply =
      agent.reply?.(offer) ??
      ({
        action: 'webrtc:offer',
        correlation_id: offer.correlation_id,
        status: 'success',
        session_id: offer.session_id,
        sdp: `answer-from-${agentId}`,
        sdp_type: 'answer',
      } as const);
    if (reply !== 'no-ack') ack(reply);
  });
  socket.on('webrtc:ice', (msg: unknown) => agent.ice.push(msg));
  socket.on('webrtc:disconnect', (msg: unknown) => agent.disconnects.push(msg));
  await connected(socket);
  return agent;
}

export interface FakeBrowser {
  socket: Socket;
  answers: Array<Record<string, unknown>>;
  ice: unknown[];
  disconnects: Array<{ session_id: string; reason?: string }>;
  /** Sends an offer; `resume` makes it a resume offer (issue 13). */
  offer(sessionId: string, deviceId: string, resume?: { token: string; offset: number }): void;
  close(): Promise<void>;
}

/** Connects a fake browser presenting the stand-in's browser token; resolves once it is accepted. */
export async function connectFakeBrowser(url: string, token: string): Promise<FakeBrowser> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, auth: { token } });
  const browser: FakeBrowser = {
    socket,
    answers: [],
    ice: [],
    disconnects: [],
    offer: (sessionId, deviceId, resume) =>
      socket.emit('webrtc:offer', {
        session_id: sessionId,
        device_id: deviceId,
        sdp: `v=0\r\no=- offer-${sessionId}\r\n`,
        sdp_type: 'offer',
        ...(resume && { resume_token: resume.token, resume_offset: resume.offset }),
      }),
    close: () => closeSocket(socket),
  };
  socket.on('webrtc:offer', (msg: Record<string, unknown>) => browser.answers.push(msg));
  socket.on('webrtc:ice', (msg: unknown) => browser.ice.push(msg));
  socket.on('webrtc:disconnect', (msg: { session_id: string; reason?: string }) =>
    browser.disconnects.push(msg),
  );
  await connected(socket);
  return browser;
}
