/**
 * Structured logs on stderr (pino). Modules take a child logger with their own fields (`session`,
 * `container`, `worker`). Terminal contents and tokens are never logged; `redact` is the safety net for
 * fields that might carry them by accident.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'termgate'): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: ['token', 'auth', '*.token', '*.auth', 'data', '*.data', 'sdp', '*.sdp'],
        censor: '[redacted]',
      },
      base: { pid: process.pid },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
