/**
 * Which browser socket and which agent socket each session id is routed between. The stand-in relays ICE
 * and disconnects with it; a session id belongs to the browser that offered it first.
 */
import type { Socket } from 'socket.io';
import type {
  AgentToCloudEvents,
  BrowserToCloudEvents,
  CloudToAgentEvents,
  CloudToBrowserEvents,
  IceMessage,
  SessionId,
  Untrusted,
} from '../../common/protocol/signaling.js';

/** An agent's socket: what it sends is checked on arrival, what the stand-in sends it is typed. */
export type AgentSocket = Socket<Untrusted<AgentToCloudEvents>, CloudToAgentEvents>;
/** A browser's socket, likewise. */
export type BrowserSocket = Socket<Untrusted<BrowserToCloudEvents>, CloudToBrowserEvents>;

export interface SessionRoute {
  readonly sessionId: SessionId;
  readonly deviceId: string;
  readonly correlationId: number;
  readonly browser: BrowserSocket;
  /** Undefined while the stand-in is still looking for the agent that serves the device. */
  agent: AgentSocket | undefined;
  /** Browser ICE that arrived before the agent was known; flushed in order once it is. */
  pendingIce: IceMessage[];
}

export class SessionRoutes {
  readonly #routes = new Map<string, SessionRoute>();

  get size(): number {
    return this.#routes.size;
  }

  get(sessionId: string): SessionRoute | undefined {
    return this.#routes.get(sessionId);
  }

  add(route: SessionRoute): void {
    this.#routes.set(route.sessionId, route);
  }

  /** Removes the route if it is still the same object (a late callback must not remove its successor). */
  remove(route: SessionRoute): boolean {
    if (this.#routes.get(route.sessionId) !== route) return false;
    this.#routes.delete(route.sessionId);
    return true;
  }

  /** Removes and returns every route whose browser or agent is `socket`. */
  removeBySocket(socket: AgentSocket | BrowserSocket): SessionRoute[] {
    const removed: SessionRoute[] = [];
    for (const route of this.#routes.values()) {
      if (route.browser === socket || route.agent === socket) removed.push(route);
    }
    for (const route of removed) this.#routes.delete(route.sessionId);
    return removed;
  }
}
