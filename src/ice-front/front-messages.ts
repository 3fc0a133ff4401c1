/** What the main thread and the ICE UDP front's thread tell each other (front-thread.ts). */

/** Main thread → front. */
export type FrontCommand = { type: 'close' };

/** Front → main thread. */
export type FrontReport = { type: 'listening' } | { type: 'failed'; code: string; message: string };

export function parseFrontCommand(raw: unknown): FrontCommand | undefined {
  const type = (raw as { type?: unknown } | null)?.type;
  return type === 'close' ? { type } : undefined;
}

export function parseFrontReport(raw: unknown): FrontReport | undefined {
  const m = raw as Record<string, unknown> | null;
  if (m?.type === 'listening') return { type: 'listening' };
  if (m?.type === 'failed' && typeof m.code === 'string' && typeof m.message === 'string') {
    return { type: 'failed', code: m.code, message: m.message };
  }
  return undefined;
}
