/**
 * Requests and replies over a child process's IPC pipe, both ways: each side can `request()` a method the
 * other side `handle()`s, and send one-way `notify()` messages. Request ids and pending requests live here
 * (the shape of mediasoup's Channel), so the bench parent and its load processes share one small protocol.
 */
import type { ChildProcess } from 'node:child_process';

type Wire =
  | { kind: 'request'; id: number; method: string; params: unknown }
  | { kind: 'reply'; id: number; ok: true; result: unknown }
  | { kind: 'reply'; id: number; ok: false; error: string }
  | { kind: 'notify'; method: string; params: unknown };

type Handler = (params: never) => unknown;

/** The two ends: a forked child (seen from the parent) or `process` itself (seen from the child). */
export type IpcEndpoint = ChildProcess | NodeJS.Process;

export class IpcChannel {
  readonly #endpoint: IpcEndpoint;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #handlers = new Map<string, Handler>();
  readonly #listeners = new Map<string, (params: never) => void>();
  #nextId = 1;
  #closed = false;
  readonly #onMessage = (raw: unknown) => this.#receive(raw as Wire);
  readonly #onExit = () => this.close('the other process exited');

  constructor(endpoint: IpcEndpoint) {
    this.#endpoint = endpoint;
    endpoint.on('message', this.#onMessage);
    endpoint.on('disconnect', this.#onExit);
  }

  /** Answers `method` requests from the other side; a thrown error or rejection becomes its error. */
  handle<P, R>(method: string, handler: (params: P) => R | Promise<R>): void {
    this.#handlers.set(method, handler);
  }

  /** Receives one-way `method` messages from the other side. */
  on<P>(method: string, listener: (params: P) => void): void {
    this.#listeners.set(method, listener);
  }

  request<R>(method: string, params: unknown = {}, timeoutMs = 120_000): Promise<R> {
    if (this.#closed) return Promise.reject(new Error(`ipc closed; cannot request ${method}`));
    const id = this.#nextId++;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`ipc request ${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as R);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#send({ kind: 'request', id, method, params });
    });
  }

  notify(method: string, params: unknown): void {
    this.#send({ kind: 'notify', method, params });
  }

  /** Fails every pending request and stops listening. Idempotent. */
  close(reason = 'ipc closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#endpoint.off('message', this.#onMessage);
    this.#endpoint.off('disconnect', this.#onExit);
    for (const pending of this.#pending.values()) pending.reject(new Error(reason));
    this.#pending.clear();
  }

  #send(message: Wire): void {
    if (this.#closed || !this.#endpoint.connected || !this.#endpoint.send) return;
    this.#endpoint.send(message);
  }

  #receive(message: Wire): void {
    switch (message.kind) {
      case 'reply': {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (!pending) return;
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new Error(message.error));
        break;
      }
      case 'request':
        void this.#serve(message.id, message.method, message.params);
        break;
      case 'notify':
        this.#listeners.get(message.method)?.(message.params as never);
        break;
      default:
        message satisfies never;
    }
  }

  async #serve(id: number, method: string, params: unknown): Promise<void> {
    const handler = this.#handlers.get(method);
    try {
      if (!handler) throw new Error(`no handler for ipc method ${method}`);
      const result = await handler(params as never);
      this.#send({ kind: 'reply', id, ok: true, result });
    } catch (err) {
      this.#send({ kind: 'reply', id, ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
