/**
 * A typed EventEmitter with `safeEmit`: a listener that throws is reported on
 * `SafeEmitter.onListenerError` instead of unwinding into the emitter, which inside a node-datachannel
 * callback would abort the whole process. (mediasoup's EnhancedEventEmitter does the same.)
 */
import { EventEmitter } from 'node:events';

type EventMap<T> = Record<keyof T, unknown[]>;

export class SafeEmitter<T extends EventMap<T>> extends EventEmitter<T> {
  /** Where listener failures go; the agent points it at its logger. */
  static onListenerError: (event: string, err: unknown) => void = (event, err) => {
    process.emitWarning(`listener for "${event}" threw: ${String(err)}`);
  };

  safeEmit<K extends keyof T & string>(event: K, ...args: T[K]): boolean {
    const listeners = this.rawListeners(event as never) as unknown as Array<(...a: unknown[]) => void>;
    for (const listener of listeners) {
      try {
        listener.apply(this, args);
      } catch (err) {
        SafeEmitter.onListenerError(event, err);
      }
    }
    return listeners.length > 0;
  }
}
