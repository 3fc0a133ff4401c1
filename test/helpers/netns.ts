/**
 * Runs a test file again inside a private network namespace that has only `lo` (`unshare -n`, as
 * root): everything it starts can talk over loopback only, and nothing it listens on (even on
 * 0.0.0.0) can be reached from outside. The Docker engine's unix socket is still reachable.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { it } from 'node:test';

/** True in the copy of the file that runs inside the namespace. */
export const IN_NETNS = process.env.TERMGATE_IN_NETNS === '1';

/** Declares one outer test that re-runs `file` inside the namespace and passes if all its tests pass. */
export function rerunInNetns(file: string, title: string, timeoutMs: number): void {
  void it(title, { timeout: timeoutMs }, async () => {
    // NODE_TEST_CONTEXT would make the inner runner report to us in its wire format, or skip files.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const child = spawn(
      'unshare',
      [
        '-n',
        'sh',
        '-c',
        'ip link set lo up && exec "$0" --test --test-reporter=spec "$1"',
        process.execPath,
        file,
      ],
      { env: { ...env, TERMGATE_IN_NETNS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.pipe(process.stderr);
    child.stderr.pipe(process.stderr);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, 'the tests inside the namespace failed (output above)');
  });
}
