/**
 * How a session tells a stopped container from an exited shell (workers/container-liveness.ts), and how
 * it waits out a container that is starting (workers/shell-opener.ts), on plain values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, TermgateError } from '../common/errors.js';
import { wentDown, type ContainerState } from '../workers/container-liveness.js';
import { whileStarting } from '../workers/shell-opener.js';

const OPENED_AT = Date.parse('2026-01-01T12:00:00Z');
/** A container running since before the shell opened, whose first process is this live process. */
const running: ContainerState = {
  Running: true,
  Restarting: false,
  StartedAt: '2026-01-01T11:00:00.123456789Z',
  FinishedAt: '0001-01-01T00:00:00Z',
  Pid: process.pid,
};

describe('a shell ended: its container stopped, or only the shell exited', () => {
  it('the container runs as before: the shell exited', () => {
    assert.equal(wentDown(running, OPENED_AT), false);
  });

  it('the container is not running, or restarting: it stopped', () => {
    assert.equal(wentDown({ ...running, Running: false, Pid: 0 }, OPENED_AT), true);
    assert.equal(wentDown({ ...running, Restarting: true }, OPENED_AT), true);
  });

  it('the container runs again but started or finished since the shell opened: it restarted', () => {
    assert.equal(wentDown({ ...running, StartedAt: '2026-01-01T12:00:01.5Z' }, OPENED_AT), true);
    assert.equal(wentDown({ ...running, FinishedAt: '2026-01-01T12:00:00.900000001Z' }, OPENED_AT), true);
  });

  it('the engine still says running but its first process is gone: it stopped', () => {
    // PIDs above the kernel's pid_max (4194304 at most) never exist.
    assert.equal(wentDown({ ...running, Pid: 5_000_000 }, OPENED_AT), true);
  });
});

describe('opening a shell in a container that is starting', () => {
  const notRunning = () => new TermgateError(ErrorCodes.CONTAINER_NOT_RUNNING, 'not running');

  it('tries again while the engine says "not running", then opens', async () => {
    let tries = 0;
    const opened = await whileStarting(
      () => (++tries < 3 ? Promise.reject(notRunning()) : Promise.resolve('shell')),
      [1, 1, 1],
    );
    assert.equal(opened, 'shell');
    assert.equal(tries, 3);
  });

  it('gives up after the last wait, and at once on any other error', async () => {
    let tries = 0;
    await assert.rejects(
      whileStarting(() => {
        tries++;
        return Promise.reject(notRunning());
      }, [1, 1]),
      { code: ErrorCodes.CONTAINER_NOT_RUNNING },
    );
    assert.equal(tries, 3);
    tries = 0;
    await assert.rejects(
      whileStarting(() => {
        tries++;
        return Promise.reject(new TermgateError(ErrorCodes.CONTAINER_NOT_FOUND, 'gone'));
      }, [1, 1]),
      { code: ErrorCodes.CONTAINER_NOT_FOUND },
    );
    assert.equal(tries, 1);
  });
});
