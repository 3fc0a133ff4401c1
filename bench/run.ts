/** The scenarios by name, with their default and quick sizes: what the CLI and the tests call. */
import type { CommonOptions } from './harness.js';
import type { BenchReport } from './report.js';
import { browserDefaults, browserQuick, runBrowser } from './scenarios/browser.js';
import { capacityDefaults, capacityQuick, runCapacity } from './scenarios/capacity.js';
import { interruptDefaults, interruptQuick, runInterrupt } from './scenarios/interrupt.js';
import { echoDefaults, echoQuick, runEcho } from './scenarios/echo.js';
import { runSetup, setupDefaults, setupQuick } from './scenarios/setup.js';
import { runSoak, soakDefaults, soakQuick } from './scenarios/soak.js';
import { runThroughput, throughputDefaults, throughputQuick } from './scenarios/throughput.js';

export const SCENARIOS = ['setup', 'echo', 'throughput', 'capacity', 'soak', 'browser', 'interrupt'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Scenario sizes; any left out takes the scenario's default (or quick) value. */
export interface ScenarioSizes {
  sessions?: number;
  sequential?: number;
  concurrency?: number;
  containers?: number;
  keystrokes?: number;
  idle?: number;
  bytes?: number;
  parallel?: number;
  parallelBytes?: number;
  rounds?: number;
  blockBytes?: number;
  steps?: number[];
  window?: number;
  duration?: number;
  floods?: number;
  floodBytes?: number;
}

/** Runs one scenario with the flags given; omitted sizes take the scenario's defaults (or quick sizes). */
export async function runScenario(
  scenario: Scenario,
  common: CommonOptions,
  f: ScenarioSizes = {},
): Promise<BenchReport> {
  const pick = <T extends object>(full: T, quick: T): T => (common.quick ? quick : full);
  switch (scenario) {
    case 'setup': {
      const d = pick(setupDefaults, setupQuick);
      return runSetup({
        ...common,
        sessions: f.sessions ?? d.sessions,
        concurrency: f.concurrency ?? d.concurrency,
        containers: f.containers ?? d.containers,
        sequential: f.sequential ?? d.sequential,
      });
    }
    case 'echo': {
      const d = pick(echoDefaults, echoQuick);
      return runEcho({
        ...common,
        keystrokes: f.keystrokes ?? d.keystrokes,
        idle: f.idle ?? d.idle,
        containers: f.containers ?? d.containers,
      });
    }
    case 'throughput': {
      const d = pick(throughputDefaults, throughputQuick);
      return runThroughput({
        ...common,
        bytes: f.bytes ?? d.bytes,
        parallel: f.parallel ?? d.parallel,
        parallelBytes: f.parallelBytes ?? d.parallelBytes,
        blockBytes: f.blockBytes ?? d.blockBytes,
        rounds: f.rounds ?? d.rounds,
      });
    }
    case 'capacity': {
      const d = pick(capacityDefaults, capacityQuick);
      return runCapacity({
        ...common,
        steps: f.steps ?? d.steps,
        containers: f.containers ?? d.containers,
        concurrency: f.concurrency ?? d.concurrency,
        windowSeconds: f.window ?? d.windowSeconds,
      });
    }
    case 'soak': {
      const d = pick(soakDefaults, soakQuick);
      return runSoak({
        ...common,
        durationSeconds: f.duration ?? d.durationSeconds,
        concurrency: f.concurrency ?? d.concurrency,
        containers: f.containers ?? d.containers,
      });
    }
    case 'browser': {
      const d = pick(browserDefaults, browserQuick);
      return runBrowser({
        ...common,
        sessions: f.sessions ?? d.sessions,
        containers: f.containers ?? d.containers,
      });
    }
    case 'interrupt': {
      const d = pick(interruptDefaults, interruptQuick);
      return runInterrupt({
        ...common,
        floods: f.floods ?? d.floods,
        floodBytes: f.floodBytes ?? d.floodBytes,
      });
    }
    default:
      scenario satisfies never;
      throw new Error(`unknown scenario ${String(scenario)}`);
  }
}
