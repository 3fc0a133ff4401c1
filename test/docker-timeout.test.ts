/**
 * The deadline on one Docker call (common/docker-timeout.ts), alone: a call past it fails with
 * TG_ERR_DOCKER_TIMEOUT and its signal is aborted; and the signal is cheap to format, since docker-modem
 * formats every request's options (the signal among them) with `util.inspect` even with its log off.
 * The deadline against a real frozen engine: hardening-docker.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { ErrorCodes, TermgateError } from '../common/errors.js';
import { withDockerTimeout } from '../common/docker-timeout.js';

/** How docker-modem formats a request's options for its debug log (lib/modem.js, buildRequest). */
const asDockerModemLogs = (value: unknown) => inspect(value, { showHidden: true, depth: null });

describe('a Docker call with a deadline', () => {
  it('answers what the call answers, its signal formatted in one short line', async () => {
    const formatted = await withDockerTimeout(1000, 'listing', (signal) =>
      Promise.resolve(asDockerModemLogs({ path: '/containers/json', signal })),
    );
    assert.equal(formatted, "{ path: '/containers/json', signal: AbortSignal { aborted: false } }");
  });

  it('fails past the deadline with TG_ERR_DOCKER_TIMEOUT, naming the call, and aborts it', async () => {
    let given: AbortSignal | undefined;
    const never = (signal: AbortSignal) => {
      given = signal;
      return new Promise<never>(() => undefined);
    };
    await assert.rejects(withDockerTimeout(50, 'starting a shell in "plc-1"', never), (err) => {
      assert.ok(err instanceof TermgateError);
      assert.equal(err.code, ErrorCodes.DOCKER_TIMEOUT);
      assert.match(err.message, /did not answer starting a shell in "plc-1" within 0\.05 s/);
      return true;
    });
    assert.equal(given?.aborted, true);
    assert.equal(asDockerModemLogs(given), 'AbortSignal { aborted: true }');
  });
});
