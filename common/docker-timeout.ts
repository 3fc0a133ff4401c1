/**
 * A deadline for every Docker engine call. A hung engine (stopped, overloaded, its socket wedged) must not
 * leave sessions waiting forever or make shutdown unbounded: each call gets an AbortSignal that cancels
 * the HTTP request, and the caller gets TG_ERR_DOCKER_TIMEOUT when the deadline passes, whether or not
 * the library honoured the signal.
 *
 * Not docker-modem's own `timeout` option: that is a socket idle timeout, which would also cut a hijacked
 * exec stream whose shell is merely quiet.
 */
import { inspect } from 'node:util';
import { ErrorCodes, TermgateError } from './errors.js';

/**
 * docker-modem formats every request's options for its debug log, with `util.inspect` (hidden fields,
 * unlimited depth) whether or not that log is on; an AbortSignal among them made this most of the cost
 * (about 17 of 20 µs a request, measured hot; in the agent's setup profile 2–3% of each thread's time).
 */
function cheaplyInspected(signal: AbortSignal): AbortSignal {
  Object.defineProperty(signal, inspect.custom, { value: inspectedSignal });
  return signal;
}

function inspectedSignal(this: AbortSignal): string {
  return `AbortSignal { aborted: ${this.aborted} }`;
}

export async function withDockerTimeout<T>(
  timeoutMs: number,
  what: string,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(
        new TermgateError(
          ErrorCodes.DOCKER_TIMEOUT,
          `the Docker engine did not answer ${what} within ${timeoutMs / 1000} s; is it overloaded or stopped?`,
        ),
      );
    }, timeoutMs);
  });
  const pending = call(cheaplyInspected(controller.signal));
  // A late rejection of the aborted call is expected and must not surface as unhandled.
  pending.catch(() => undefined);
  try {
    return await Promise.race([pending, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
