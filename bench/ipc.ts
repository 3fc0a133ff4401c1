/**
 * Requests and replies over a child process's IPC pipe, both ways: each side can `request()` a method the
 * other side `handle()`s, and send one-way `notify()` messages. The bench parent and its load processes
 * share no message types, so this is the agent's `Channel` (common/Channel.ts) untyped, over the pipe.
 */
import type { ChildProcess } from 'node:child_process';
import { Channel, type ChannelEndpoint } from '../common/Channel.js';

/** The two ends: a forked child (seen from the parent) or `process` itself (seen from the child). */
export type IpcEndpoint = ChildProcess | NodeJS.Process;

/** Messages received over every channel of this process: how a bench run shows that it moves. */
export const ipcActivity = { messages: 0 };

/**
 * How long a request may take: a total in ms (for short requests), or `stallMs`, for long work: the
 * request fails only when nothing at all has come from the other process for that long (a load process
 * reports progress while it works), however long the whole takes.
 */
export type RequestLimit = number | { stallMs: number };

function pipeEndpoint(endpoint: IpcEndpoint): ChannelEndpoint {
  return {
    post(message) {
      if (endpoint.connected && endpoint.send) endpoint.send(message);
    },
    listen(receive, ended) {
      const onMessage = (message: unknown) => {
        ipcActivity.messages++;
        receive(message);
      };
      const onDisconnect = () => ended('the other process exited');
      endpoint.on('message', onMessage);
      endpoint.on('disconnect', onDisconnect);
      return () => {
        endpoint.off('message', onMessage);
        endpoint.off('disconnect', onDisconnect);
      };
    },
  };
}

export class IpcChannel {
  readonly #channel: Channel;

  constructor(endpoint: IpcEndpoint) {
    this.#channel = new Channel(pipeEndpoint(endpoint));
  }

  /** Answers `method` requests from the other side; a thrown error or rejection becomes its error. */
  handle<P, R>(method: string, handler: (params: P) => R | Promise<R>): void {
    this.#channel.handle(method, handler as (params: unknown) => unknown);
  }

  /** Receives one-way `method` messages from the other side. */
  on<P>(method: string, listener: (params: P) => void): void {
    this.#channel.on(method, listener as (params: unknown) => void);
  }

  request<R>(method: string, params: unknown = {}, limit: RequestLimit = 120_000): Promise<R> {
    const asked = this.#channel.request(
      method,
      params,
      typeof limit === 'number' ? { timeoutMs: limit } : { stallMs: limit.stallMs },
    );
    return asked as Promise<R>;
  }

  notify(method: string, params: unknown): void {
    this.#channel.notify(method, params);
  }

  /** Fails every pending request and stops listening. Idempotent. */
  close(reason = 'ipc closed'): void {
    this.#channel.close({ code: 'TG_ERR_INTERNAL', message: reason });
  }
}

/** How often a child process tells its parent that its work moves. */
const PROGRESS_EVERY_MS = 500;

/**
 * While a long request runs, the parent hears that the work moves: `done()` (bytes, connections: any
 * count that grows as the work does), whenever it changed. A request bounded by `stallMs` fails only
 * when this goes quiet (`RequestLimit`).
 */
export function reportProgress(ipc: IpcChannel, done: () => number): void {
  let reported = -1;
  setInterval(() => {
    const now = done();
    if (now === reported) return;
    reported = now;
    ipc.notify('progress', { done: now });
  }, PROGRESS_EVERY_MS).unref();
}
