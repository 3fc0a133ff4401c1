/**
 * A deadline for every Docker engine call. A hung engine (stopped, overloaded, its socket wedged) must not
 * leave sessions waiting forever or make shutdown unbounded: each call gets an AbortSignal that cancels
 * the HTTP request, and the caller gets TG_ERR_DOCKER_TIMEOUT when the deadline passes, whether or not
 * the library honoured the signal.
 *
 * Not docker-modem's own `timeout` option: that is a socket idle timeout, which would also cut a hijacked
 * exec stream whose shell is merely quiet.
 */
import { ErrorCodes, TermgateError } from './errors.js';

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
  const pending = call(controller.signal);
  // A late rejection of the aborted call is expected and must not surface as unhandled.
  pending.catch(() => undefined);
  try {
    return await Promise.race([pending, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
