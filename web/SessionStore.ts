/**
 * What a reloaded tab needs to resume its session: kept in sessionStorage (this tab only, gone when it
 * closes), never in the URL and never logged. `offset` is the last output offset the terminal had
 * shown: a reloaded page's new screen starts there, so it shows what was printed after it (while the
 * tab was gone), not what was on the old screen.
 */
import type { Encoding } from './TerminalSession.js';

export interface StoredSession {
  sessionId: string;
  deviceId: string;
  encoding: Encoding;
  token: string;
  offset: number;
}

const KEY = 'termgate.session';

export function loadSession(): StoredSession | undefined {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return undefined;
    const s = JSON.parse(raw) as Partial<StoredSession>;
    const valid =
      typeof s.sessionId === 'string' &&
      typeof s.deviceId === 'string' &&
      (s.encoding === 'json' || s.encoding === 'msgpack') &&
      typeof s.token === 'string' &&
      Number.isSafeInteger(s.offset) &&
      (s.offset ?? -1) >= 0;
    return valid ? (s as StoredSession) : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(session: StoredSession | undefined): void {
  try {
    if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled: a reload starts a new session.
  }
}
