/**
 * Which browser socket and which agent socket own each session id. The cloud routes ICE and disconnects
 * with it; a session id belongs to the browser that offered it first.
 */
import type { Socket } from 'socket.io';
import type { IceMessage } from '../protocol/signaling-messages.js';

export interface CloudSession {
  readonly sessionId: string;
  readonly deviceId: string;
  readonly correlationId: number;
  readonly browser: Socket;
  /** Undefined while the cloud is still looking for the agent that serves the device. */
  agent: Socket | undefined;
  /** Browser ICE that arrived before the agent was known; flushed in order once it is. */
  pendingIce: IceMessage[];
}

export class SessionTable {
  readonly #sessions = new Map<string, CloudSession>();

  get size(): number {
    return this.#sessions.size;
  }

  get(sessionId: string): CloudSession | undefined {
    return this.#sessions.get(sessionId);
  }

  add(session: CloudSession): void {
    this.#sessions.set(session.sessionId, session);
  }

  /** Removes the session if it is still the same object (a late callback must not remove its successor). */
  remove(session: CloudSession): boolean {
    if (this.#sessions.get(session.sessionId) !== session) return false;
    this.#sessions.delete(session.sessionId);
    return true;
  }

  /** Removes and returns every session whose browser or agent is `socket`. */
  removeBySocket(socket: Socket): CloudSession[] {
    const removed: CloudSession[] = [];
    for (const session of this.#sessions.values()) {
      if (session.browser === socket || session.agent === socket) removed.push(session);
    }
    for (const session of removed) this.#sessions.delete(session.sessionId);
    return removed;
  }
}
