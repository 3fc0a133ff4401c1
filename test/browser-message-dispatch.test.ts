/** dispatchBrowserMessage (workers/browser-message-dispatch.ts): where each browser message goes, in order. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SessionMessage } from '../common/protocol/terminal-messages.js';
import { dispatchBrowserMessage, type BrowserMessageTargets } from '../workers/browser-message-dispatch.js';

/** Targets that write down what they were asked, in order. */
function recordingTargets(): { calls: string[]; targets: BrowserMessageTargets } {
  const calls: string[] = [];
  const targets: BrowserMessageTargets = {
    pty: {
      write: (data) => void calls.push(`write ${String(data)}`),
      resize: (cols, rows) => void calls.push(`resize ${cols}x${rows}`),
      connect: (container, size) => {
        calls.push(`connect ${container} ${size.cols}x${size.rows}`);
        return Promise.resolve();
      },
    },
    pong: () => void calls.push('pong'),
    close: () => void calls.push('close'),
  };
  return { calls, targets };
}

describe('dispatchBrowserMessage', () => {
  it('sends each message to its target, in the order they came', () => {
    const { calls, targets } = recordingTargets();
    const messages: SessionMessage[] = [
      { type: 'input', data: 'ls\r' },
      { type: 'resize', cols: 120, rows: 40 },
      { type: 'input', data: 'stty size\r' },
      { type: 'ping' },
      { type: 'connect_pty', container: 'plc-2', cols: 100, rows: 30 },
      { type: 'connect_pty', container: 'plc-3' },
      { type: 'close' },
    ];
    for (const message of messages) dispatchBrowserMessage(message, targets);
    assert.deepEqual(calls, [
      'write ls\r',
      'resize 120x40',
      'write stty size\r',
      'pong',
      'connect plc-2 100x30',
      'connect plc-3 undefinedxundefined',
      'close',
    ]);
  });

  it('passes binary input on as it came', () => {
    const written: Array<string | Uint8Array> = [];
    const { targets } = recordingTargets();
    targets.pty.write = (data) => void written.push(data);
    const bytes = new Uint8Array([0x1b, 0x5b, 0x41]);
    dispatchBrowserMessage({ type: 'input', data: bytes }, targets);
    assert.equal(written[0], bytes);
  });

  it('lets a throw from a target reach the caller, whose guard counts it', () => {
    const { targets } = recordingTargets();
    targets.pong = () => {
      throw new Error('bug in pong');
    };
    assert.throws(() => dispatchBrowserMessage({ type: 'ping' }, targets), /bug in pong/);
  });
});
