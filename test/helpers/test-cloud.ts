/**
 * The cloud, played by a real Socket.IO server on 127.0.0.1, port 0. It accepts the agent, sends offers
 * with an ack exactly as the design document says, and relays the agent's ICE candidates to the test's
 * browser peers by session id.
 */
import { once } from 'node:events';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import type { AnswerMessage, OutboundIceMessage } from '../../common/protocol/signaling.js';

export interface AgentDisconnectNotice {
  session_id: string;
  reason?: string;
}

export class TestCloud {
  #http!: HttpServer;
  #io!: Server;
  #port = 0;
  readonly #iceListeners = new Map<string, (ice: OutboundIceMessage) => void>();
  readonly disconnects: AgentDisconnectNotice[] = [];
  readonly answersWithoutAck: AnswerMessage[] = [];
  agent: Socket | undefined;
  /** Why each agent connection ended: socket.io's reason, `client namespace disconnect` when the agent closed it. */
  readonly #agentLeft = new WeakMap<Socket, string>();
  #correlation = 0;
  /** Handshake auth of every agent connection attempt, to check the token. */
  readonly handshakes: Array<Record<string, unknown>> = [];
  /** If set, agent connections whose token differs are refused. */
  requiredToken: string | undefined;

  private constructor() {
    this.#setup();
  }

  #setup(): void {
    this.#http = createServer();
    this.#io = new Server(this.#http);
    this.#io.use((socket, next) => {
      const auth = socket.handshake.auth as Record<string, unknown>;
      this.handshakes.push(auth);
      if (this.requiredToken !== undefined && auth.token !== this.requiredToken)
        next(new Error('token refused'));
      else next();
    });
    this.#io.on('connection', (socket) => {
      this.agent = socket;
      socket.on('disconnect', (reason) => this.#agentLeft.set(socket, reason));
      socket.on('webrtc:ice', (ice: OutboundIceMessage) => this.#iceListeners.get(ice.session_id)?.(ice));
      socket.on('webrtc:disconnect', (notice: AgentDisconnectNotice) => this.disconnects.push(notice));
      socket.on('webrtc:answer', (answer: AnswerMessage) => this.answersWithoutAck.push(answer));
    });
  }

  static async start(): Promise<TestCloud> {
    const cloud = new TestCloud();
    cloud.#http.listen(0, '127.0.0.1');
    await once(cloud.#http, 'listening');
    cloud.#port = (cloud.#http.address() as AddressInfo).port;
    return cloud;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Drops the agent's socket from the server side ('io server disconnect': no client auto-reconnect). */
  dropAgent(): void {
    this.agent?.disconnect(true);
  }

  /** The cloud goes away: server closed, every connection cut. `restart()` brings it back on the same port. */
  async stop(): Promise<void> {
    await this.close();
    this.agent = undefined;
  }

  /** Listens again on the same port after `stop()`. */
  async restart(): Promise<void> {
    this.#setup();
    this.#http.listen(this.#port, '127.0.0.1');
    await once(this.#http, 'listening');
  }

  /** Resolves once an agent is connected. */
  async waitForAgent(timeoutMs = 20_000): Promise<Socket> {
    const deadline = Date.now() + timeoutMs;
    while (!this.agent?.connected) {
      if (Date.now() > deadline) throw new Error('the agent did not connect to the test cloud');
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.agent;
  }

  /**
   * Waits until the last agent connection has ended and returns why, as socket.io tells the server:
   * `client namespace disconnect` when the agent closed its link (the last step of its drain), `transport
   * close` when the connection just broke (the process died first).
   */
  async waitForAgentGone(timeoutMs = 10_000): Promise<string> {
    const socket = this.agent;
    if (!socket) throw new Error('no agent ever connected to the test cloud');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reason = this.#agentLeft.get(socket);
      if (reason !== undefined) return reason;
      if (Date.now() > deadline) throw new Error('the agent connection did not end');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Sends `webrtc:offer` with an ack and returns the agent's answer. Adds a correlation_id if absent. */
  offer(payload: Record<string, unknown>, timeoutMs = 20_000): Promise<AnswerMessage> {
    const agent = this.agent;
    if (!agent?.connected) return this.waitForAgent().then(() => this.offer(payload, timeoutMs));
    const withId =
      'correlation_id' in payload ? payload : { correlation_id: ++this.#correlation, ...payload };
    // Emitted synchronously, so a caller knows the offer is on the wire when this returns.
    return agent.timeout(timeoutMs).emitWithAck('webrtc:offer', withId) as Promise<AnswerMessage>;
  }

  /** Emits any payload on any topic to the agent (for bad-input tests). */
  async emitRaw(topic: string, payload: unknown): Promise<void> {
    (await this.waitForAgent()).emit(topic, payload);
  }

  async emitWithAck(topic: string, payload: unknown, timeoutMs = 10_000): Promise<unknown> {
    return (await this.waitForAgent()).timeout(timeoutMs).emitWithAck(topic, payload);
  }

  sendIce(ice: Record<string, unknown>): void {
    this.agent?.emit('webrtc:ice', ice);
  }

  /** Ends a session as the cloud does; `reason` (e.g. `browser-gone`) goes along when given. */
  disconnect(sessionId: string, reason?: string): void {
    this.agent?.emit('webrtc:disconnect', { session_id: sessionId, ...(reason !== undefined && { reason }) });
  }

  onIce(sessionId: string, listener: (ice: OutboundIceMessage) => void): void {
    this.#iceListeners.set(sessionId, listener);
  }

  offIce(sessionId: string): void {
    this.#iceListeners.delete(sessionId);
  }

  async waitForDisconnectNotice(sessionId: string, timeoutMs = 20_000): Promise<AgentDisconnectNotice> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const notice = this.disconnects.find((d) => d.session_id === sessionId);
      if (notice) return notice;
      if (Date.now() > deadline) throw new Error(`no webrtc:disconnect from the agent for ${sessionId}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async close(): Promise<void> {
    await this.#io.close().catch(() => undefined);
    this.#http.closeAllConnections();
  }
}
