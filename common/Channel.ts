/**
 * Requests, replies and notifications over one message endpoint: a session's MessagePort between the
 * main thread and its worker, a worker's line to the pool, a child process's IPC pipe. The channel owns
 * the request ids and the pending requests (the shape of mediasoup's Channel): a request is answered
 * once, with its result or an error, or fails on its limit or when the channel closes. Errors cross as
 * `{code, message}` and are rebuilt as TermgateErrors on arrival, since an Error loses its class and
 * fields through structured clone.
 *
 * The messages each side may send are a type (`ChannelMessages`): a side's channel is
 * `Channel<WhatISend, WhatIReceive>`, so a request for a method the other side does not serve, or with
 * the wrong params, does not compile.
 */
import type { MessagePort, TransferListItem } from 'node:worker_threads';
import { ErrorCodes, TermgateError, toErrorData, type ErrorData } from './errors.js';

/** What one side sends: requests (method → params and result) and notifications (method → params). */
export interface ChannelMessages {
  requests: object;
  notifications: object;
}

/** Messages whose types the two sides do not share (the bench's load processes). */
export interface UntypedMessages {
  requests: Record<string, { params: unknown; result: unknown }>;
  notifications: Record<string, unknown>;
}

type RequestMethod<M extends ChannelMessages> = keyof M['requests'] & string;
type NotificationMethod<M extends ChannelMessages> = keyof M['notifications'] & string;
export type RequestParams<M extends ChannelMessages, K extends RequestMethod<M>> = M['requests'][K] extends {
  params: infer P;
}
  ? P
  : never;
export type RequestResult<M extends ChannelMessages, K extends RequestMethod<M>> = M['requests'][K] extends {
  result: infer R;
}
  ? R
  : never;
type NotificationParams<M extends ChannelMessages, K extends NotificationMethod<M>> = M['notifications'][K];

/** What travels over the endpoint. */
export type ChannelWire =
  | { kind: 'request'; id: number; method: string; params: unknown }
  | { kind: 'response'; id: number; result: unknown }
  | { kind: 'response'; id: number; error: ErrorData }
  | { kind: 'notification'; method: string; params: unknown };

/** Something a channel can post on and receive from. */
export interface ChannelEndpoint {
  post(message: ChannelWire, transfer?: readonly TransferListItem[]): void;
  /** Starts delivering messages and the end of the endpoint; returns what stops it. */
  listen(receive: (message: unknown) => void, ended: (reason: string) => void): () => void;
}

/**
 * How long a request may take: `timeoutMs` in all, or `stallMs` without hearing anything at all from
 * the other side (for long work that reports progress). `timeoutError` replaces the default error.
 */
export interface RequestLimit {
  timeoutMs?: number;
  stallMs?: number;
  timeoutError?: ErrorData;
}

export interface ChannelOptions {
  /** Limit of a request that names none; default 30 s. */
  defaultTimeoutMs?: number;
  /** A notification listener threw; the message is dropped, the channel goes on. */
  onListenerError?: (method: string, err: unknown) => void;
}

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (err: TermgateError) => void;
}

export class Channel<
  Out extends ChannelMessages = UntypedMessages,
  In extends ChannelMessages = UntypedMessages,
> {
  readonly #endpoint: ChannelEndpoint;
  readonly #options: ChannelOptions;
  readonly #pending = new Map<number, Pending>();
  readonly #handlers = new Map<string, (params: never) => unknown>();
  readonly #listeners = new Map<string, (params: never) => void>();
  readonly #stopListening: () => void;
  #nextId = 1;
  #lastHeardMs = performance.now();
  #closed = false;

  constructor(endpoint: ChannelEndpoint, options: ChannelOptions = {}) {
    this.#endpoint = endpoint;
    this.#options = options;
    this.#stopListening = endpoint.listen(
      (message) => this.#receive(message),
      (reason) => this.close({ code: ErrorCodes.INTERNAL, message: reason }),
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Requests waiting for their reply. */
  get pendingRequests(): number {
    return this.#pending.size;
  }

  /** Asks the other side; resolves with its result, rejects with its error, the limit's, or the close's. */
  request<K extends RequestMethod<Out>>(
    method: K,
    params: RequestParams<Out, K>,
    limit: RequestLimit = {},
    transfer?: readonly TransferListItem[],
  ): Promise<RequestResult<Out, K>> {
    if (this.#closed) {
      return Promise.reject(
        new TermgateError(ErrorCodes.INTERNAL, `the channel is closed; cannot ask "${method}"`),
      );
    }
    const id = this.#nextId++;
    return new Promise<RequestResult<Out, K>>((resolve, reject) => {
      const stopWatch = this.#watch(id, method, limit);
      this.#pending.set(id, {
        method,
        resolve: (result) => {
          stopWatch();
          resolve(result as RequestResult<Out, K>);
        },
        reject: (err) => {
          stopWatch();
          reject(err);
        },
      });
      this.#post({ kind: 'request', id, method, params }, transfer);
    });
  }

  /** Tells the other side something that needs no reply. */
  notify<K extends NotificationMethod<Out>>(method: K, params: NotificationParams<Out, K>): void {
    this.#post({ kind: 'notification', method, params });
  }

  /** Serves `method` requests from the other side; what the handler throws or rejects with is the error. */
  handle<K extends RequestMethod<In>>(
    method: K,
    handler: (params: RequestParams<In, K>) => RequestResult<In, K> | Promise<RequestResult<In, K>>,
  ): this {
    this.#handlers.set(method, handler);
    return this;
  }

  /** Receives `method` notifications from the other side (one listener per method). */
  on<K extends NotificationMethod<In>>(
    method: K,
    listener: (params: NotificationParams<In, K>) => void,
  ): this {
    this.#listeners.set(method, listener);
    return this;
  }

  /** Fails every pending request with `error` and stops listening. Idempotent; the endpoint is its owner's. */
  close(error: ErrorData = { code: ErrorCodes.INTERNAL, message: 'the channel closed' }): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopListening();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(TermgateError.fromData(error));
  }

  /** Arms the request's limit; returns what disarms it. */
  #watch(id: number, method: string, limit: RequestLimit): () => void {
    const fail = (why: string) => {
      const pending = this.#pending.get(id);
      if (!pending) return;
      this.#pending.delete(id);
      const error = limit.timeoutError ?? {
        code: ErrorCodes.INTERNAL,
        message: `no reply to "${method}" ${why}`,
      };
      pending.reject(TermgateError.fromData(error));
    };
    if (limit.stallMs !== undefined) {
      const stallMs = limit.stallMs;
      const timer = setInterval(
        () => {
          if (performance.now() - this.#lastHeardMs > stallMs)
            fail(`and nothing else heard for ${stallMs} ms`);
        },
        Math.min(stallMs, 1000),
      );
      return () => clearInterval(timer);
    }
    const timeoutMs = limit.timeoutMs ?? this.#options.defaultTimeoutMs ?? 30_000;
    const timer = setTimeout(() => fail(`within ${timeoutMs} ms`), timeoutMs);
    return () => clearTimeout(timer);
  }

  #post(message: ChannelWire, transfer?: readonly TransferListItem[]): void {
    if (this.#closed) return;
    this.#endpoint.post(message, transfer);
  }

  #receive(raw: unknown): void {
    if (this.#closed) return;
    this.#lastHeardMs = performance.now();
    const message = raw as ChannelWire;
    switch (message.kind) {
      case 'response': {
        const pending = this.#pending.get(message.id);
        if (!pending) return; // answered after its limit: the caller has moved on
        this.#pending.delete(message.id);
        if ('error' in message) pending.reject(TermgateError.fromData(message.error));
        else pending.resolve(message.result);
        break;
      }
      case 'request':
        void this.#serve(message.id, message.method, message.params);
        break;
      case 'notification':
        this.#notified(message.method, message.params);
        break;
      default:
        message satisfies never;
    }
  }

  async #serve(id: number, method: string, params: unknown): Promise<void> {
    const handler = this.#handlers.get(method);
    try {
      if (!handler)
        throw new TermgateError(ErrorCodes.INTERNAL, `nothing serves "${method}" on this channel`);
      const result = await handler(params as never);
      this.#post({ kind: 'response', id, result });
    } catch (err) {
      this.#post({ kind: 'response', id, error: toErrorData(err) });
    }
  }

  #notified(method: string, params: unknown): void {
    const listener = this.#listeners.get(method);
    if (!listener) return;
    try {
      listener(params as never);
    } catch (err) {
      this.#options.onListenerError?.(method, err);
    }
  }
}

/** A MessagePort as a channel endpoint; the port stays its owner's to close. */
export function portEndpoint(port: MessagePort): ChannelEndpoint {
  return {
    post: (message, transfer) => port.postMessage(message, transfer),
    listen(receive, ended) {
      const onClose = () => ended('the port closed');
      port.on('message', receive);
      port.once('close', onClose);
      return () => {
        port.off('message', receive);
        port.off('close', onClose);
      };
    },
  };
}
