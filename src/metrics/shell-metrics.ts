/** Metrics of the shells the agent ends from the host: those an earlier, crashed run left behind. */
import { Counter, type Registry } from 'prom-client';
import type { ShellJanitor } from '../containers/ShellJanitor.js';

/** Registers the shell metrics, read from the janitor at scrape time. */
export function addShellMetrics(registers: Registry[], janitor: ShellJanitor): void {
  const counted = { ended: 0, failed: 0 };
  const orphans = new Counter({
    name: 'termgate_orphan_shells_total',
    help: 'Shells an earlier run of this agent id left behind, found at start-up, by result: ended or failed.',
    labelNames: ['result'],
    registers,
    collect: () => {
      for (const result of ['ended', 'failed'] as const) {
        const now = janitor.orphans[result];
        orphans.inc({ result }, Math.max(0, now - counted[result]));
        counted[result] = now;
      }
    },
  });
}
