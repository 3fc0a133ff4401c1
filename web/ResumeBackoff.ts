/**
 * When the page tries a resume offer again after its connection dropped: 0.5 s, doubling to 8 s, until
 * the agent's grace (`--resume-grace`, 120 s by default) is surely over. The page cannot know the grace;
 * past `GIVE_UP_MS` after the drop an agent would refuse anyway.
 */
const FIRST_WAIT_MS = 500;
const MAX_WAIT_MS = 8000;
const GIVE_UP_MS = 150_000;

export class ResumeBackoff {
  #waitMs = FIRST_WAIT_MS;
  #droppedAt: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Schedules the next try; false (and nothing scheduled) once the grace is surely over. */
  schedule(tryResume: () => void): boolean {
    clearTimeout(this.#timer);
    this.#droppedAt ??= Date.now();
    if (Date.now() - this.#droppedAt > GIVE_UP_MS) return false;
    const waitMs = this.#waitMs;
    this.#waitMs = Math.min(this.#waitMs * 2, MAX_WAIT_MS);
    this.#timer = setTimeout(tryResume, waitMs);
    return true;
  }

  /** Connected again: the next drop starts from the first wait. */
  reset(): void {
    clearTimeout(this.#timer);
    this.#waitMs = FIRST_WAIT_MS;
    this.#droppedAt = undefined;
  }

  /** Stops trying; idempotent. */
  close(): void {
    this.reset();
  }
}
