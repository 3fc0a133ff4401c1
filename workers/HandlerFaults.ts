/**
 * The handler faults of one session: a handler for something the session received (a browser message, a
 * message from the main thread) that threw. Such a throw is a bug caught at its boundary: it is counted
 * (`termgate_handler_faults_total`), the first of the session is reported so the main thread logs it
 * once and not once per message, and the session goes on.
 */
import { toErrorData, type ErrorData } from '../common/errors.js';
import { StatSlot } from '../common/protocol/session-stats.js';

export class HandlerFaults {
  readonly #stats: Float64Array;
  readonly #reportFirst: (error: ErrorData) => void;

  /** `stats` are the session's counters (session-stats.ts); `reportFirst` gets the session's first fault. */
  constructor(stats: Float64Array, reportFirst: (error: ErrorData) => void) {
    this.#stats = stats;
    this.#reportFirst = reportFirst;
  }

  /** Counts a fault; the first of the session is also reported. */
  count(error: ErrorData): void {
    if ((this.#stats[StatSlot.handlerFaults]! += 1) === 1) this.#reportFirst(error);
  }

  /** Runs a handler for something the session received; a throw is counted, not fatal. */
  guard(handler: () => void): void {
    try {
      handler();
    } catch (err) {
      try {
        this.count(toErrorData(err));
      } catch {
        // Counting failed too; the message is dropped, the session goes on.
      }
    }
  }
}
