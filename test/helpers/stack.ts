/**
 * What most agent tests stand on: a few real containers, the test cloud, and `termgate agent` serving
 * them by name with two workers. `useStack()` starts it before the file's tests and takes it down after
 * them, in one place, so each test file says only what is special about its agent.
 */
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { AgentProcess } from './agent-process.js';
import { removeContainers, startContainers, uniquePrefix } from './containers.js';
import { onTeardown } from './teardown.js';
import { TestCloud } from './test-cloud.js';

export interface StackOptions {
  /** A short word for the container names: `vplc-<name>-<random>-<n>`. */
  name: string;
  /** Containers the agent may reach (`<prefix>-*`). */
  containers: number;
  /** Docker labels for those containers, `key=value`. */
  labels?: string[];
  /** Agent flags beyond `--containers '<prefix>-*' --workers 2`; a function is called after `beforeAgent`. */
  agentArgs?: string[] | ((stack: Stack) => string[]);
  /** Runs once containers and cloud are up, before the agent starts (more containers, a cloud token). */
  beforeAgent?: (stack: Stack) => Promise<void>;
  /** Runs once the agent has registered with the cloud. */
  afterAgent?: (stack: Stack) => Promise<void>;
  /** Runs first at teardown, while the agent still serves (stop a bystander, report counts). */
  beforeTeardown?: (stack: Stack) => Promise<void> | void;
  /** How the agent is stopped at the end (SIGTERM: a drain). */
  stop?: 'SIGTERM' | 'SIGKILL';
  /**
   * Assert that the drain was clean: exit status 0, which the agent gives only when every session had
   * ended before the workers drained and every worker confirmed (README: exit status).
   */
  expectCleanDrain?: boolean;
}

export class Stack {
  readonly prefix: string;
  cloud!: TestCloud;
  agent!: AgentProcess;
  containers: string[] = [];
  readonly #extra: string[] = [];

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** Containers a test starts itself; they are removed with the stack's. */
  track(names: string[]): string[] {
    this.#extra.push(...names);
    return names;
  }

  async start(options: StackOptions): Promise<void> {
    this.containers = await startContainers(this.prefix, options.containers, options.labels);
    this.cloud = await TestCloud.start();
    await options.beforeAgent?.(this);
    this.agent = AgentProcess.start(this.cloud.url, [
      '--containers',
      `${this.prefix}-*`,
      '--workers',
      '2',
      ...(typeof options.agentArgs === 'function' ? options.agentArgs(this) : (options.agentArgs ?? [])),
    ]);
    await this.cloud.waitForAgent();
    await options.afterAgent?.(this);
  }

  async teardown(options: StackOptions): Promise<void> {
    try {
      await options.beforeTeardown?.(this);
      await this.#stopAgent(options);
    } finally {
      await this.cloud?.close();
      await removeContainers([...this.containers, ...this.#extra]);
    }
  }

  async #stopAgent(options: StackOptions): Promise<void> {
    if (!this.agent) return;
    const code = await this.agent.stop(options.stop ?? 'SIGTERM');
    if (!options.expectCleanDrain) return;
    assert.equal(code, 0, `the agent exits 0 after a clean drain: ${this.agent.log.slice(-2000)}`);
  }
}

/** Starts a stack before the file's tests and tears it down after them (the file's teardown, which ends it). */
export function useStack(options: StackOptions): Stack {
  const stack = new Stack(uniquePrefix(options.name));
  before(() => stack.start(options), { timeout: 120_000 });
  onTeardown(() => stack.teardown(options));
  return stack;
}
