/**
 * The bench's cloud: a Socket.IO server on 127.0.0.1 that accepts the agent under test, sends it offers
 * with an ack (as the design document's cloud does) and relays ICE both ways by session id. It times
 * each offer: emitted → answer acked. `GET /` is a blank page: an origin for a real browser's peers.
 */
import { once } from 'node:events';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import type { AnswerMessage, OutboundIceMessage } from '../common/protocol/signaling.js';
import { nowMs } from './load/Terminal.js';

export interface OfferTiming {
  offerAt: number;
  answerAt: number;
}

export class BenchCloud {
  readonly #http: HttpServer;
  readonly #io: Server;
  readonly #ice = new Map<string, (ice: OutboundIceMessage) => void>();
  #agent: Socket | undefined;
  #correlation = 0;

  private constructor() {
    this.#http = createServer((req, res) => {
      const blank = req.method === 'GET' && req.url === '/';
      res.writeHead(blank ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
      res.end(blank ? '<!doctype html><title>termgate bench</title>' : '');
    });
    this.#io = new Server(this.#http, { maxHttpBufferSize: 4 * 1024 * 1024 });
    this.#io.on('connection', (socket) => {
      this.#agent = socket;
      socket.on('webrtc:ice', (ice: OutboundIceMessage) => this.#ice.get(ice.session_id)?.(ice));
    });
  }

  static async start(): Promise<BenchCloud> {
    const cloud = new BenchCloud();
    cloud.#http.listen(0, '127.0.0.1');
    await once(cloud.#http, 'listening');
    return cloud;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#http.address() as AddressInfo).port}`;
  }

  async waitForAgent(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#agent?.connected) {
      if (Date.now() > deadline) throw new Error('the agent did not connect to the bench cloud');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Sends `webrtc:offer` and returns the answer SDP with its timing, or throws the refusal. */
  async offer(
    sessionId: string,
    device: string,
    sdp: string,
    timeoutMs = 60_000,
  ): Promise<{ sdp: string } & OfferTiming> {
    const agent = this.#agent;
    if (!agent?.connected) throw new Error('no agent connected');
    const offerAt = nowMs();
    const answer = (await agent.timeout(timeoutMs).emitWithAck('webrtc:offer', {
      correlation_id: ++this.#correlation,
      session_id: sessionId,
      device_id: device,
      sdp,
      sdp_type: 'offer',
    })) as AnswerMessage;
    const answerAt = nowMs();
    if (answer.status !== 'success') throw new Error(`offer refused: ${answer.code} ${answer.message}`);
    return { sdp: answer.sdp, offerAt, answerAt };
  }

  sendIce(sessionId: string, candidate: string, mid: string): void {
    this.#agent?.emit('webrtc:ice', { session_id: sessionId, candidate, sdp_mid: mid, sdp_mline_index: 0 });
  }

  onIce(sessionId: string, listener: (ice: OutboundIceMessage) => void): void {
    this.#ice.set(sessionId, listener);
  }

  offIce(sessionId: string): void {
    this.#ice.delete(sessionId);
  }

  async close(): Promise<void> {
    await this.#io.close().catch(() => undefined);
    this.#http.closeAllConnections();
  }
}
