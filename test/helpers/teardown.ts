/**
 * The end of a test file that hosts node-datachannel peers. The addon keeps such a process alive until its
 * `cleanup()`, and `cleanup()` itself now and then crashes a test process after every test passed (the
 * README's known issues), so these files end their own process once their teardown has run.
 *
 * Ending the process from a hook must not hide anything. So the file has ONE `after` hook, registered
 * here: it runs every teardown step in order, each even when one before it failed (node:test skips the
 * later hooks of a failed one, which left the process hanging), checks the setup retry rate, and only
 * then ends the process, with exit code 1 if a step failed. A failed test has already set
 * `process.exitCode` (node:test does that as each failure is recorded), and no other hook can still be
 * running when the exit comes.
 */
import { after } from 'node:test';
import { checkSetupRetries } from './browser-peer.js';

type Step = () => unknown;

const steps: Step[] = [];
let registered = false;
/** Teardown is not bulk work: stopping agents and removing containers. Generous, and then a backstop. */
const TEARDOWN_TIMEOUT_MS = 180_000;
/** The time node:test needs to write the last results before the process ends. */
const REPORT_GRACE_MS = 1000;

/** Adds a step to the file's teardown; the first call registers the file's one `after` hook. */
export function onTeardown(step: Step): void {
  steps.push(step);
  if (registered) return;
  registered = true;
  after(runTeardown, { timeout: TEARDOWN_TIMEOUT_MS });
}

async function runTeardown(): Promise<void> {
  // If a step hangs, node:test fails the hook at its timeout but cannot end the process: this does.
  const backstop = setTimeout(() => endProcess(1), TEARDOWN_TIMEOUT_MS + REPORT_GRACE_MS);
  const errors: unknown[] = [];
  for (const step of [...steps, checkSetupRetries]) {
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  }
  clearTimeout(backstop);
  if (errors.length > 0) process.exitCode = 1;
  setTimeout(() => endProcess(), REPORT_GRACE_MS);
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} teardown steps failed`);
}

function endProcess(code?: number): void {
  if (code !== undefined) process.exitCode = code;
  process.exit();
}
