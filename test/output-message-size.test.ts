/**
 * A browser names the largest message it takes (`a=max-message-size` in its SDP; 64 KiB when it names
 * none), and libdatachannel refuses to send a larger one. Output that JSON makes six times larger (a
 * binary file's control bytes, each escaped as `\u0001`) and msgpack frames of the agent's full chunk
 * both reach a browser that takes 64 KiB: every byte, in order. Bounded by progress, not by a deadline.
 * A browser that takes messages too small for any output gets no gap: its session ends with the reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrowserPeer } from './helpers/browser-peer.js';
import { untilNoShells, untilProgress } from './helpers/progress.js';
import { useStack } from './helpers/stack.js';

const BYTES = 400_000;
const START = '<<S1001>>\n';
const END = '<<E1002>>';
// Raw mode: the TTY passes the bytes through unchanged; the markers are computed, so the command's echo
// cannot match them.
const COMMAND = `stty raw -echo; echo "<<S$((1000+1))>>"; head -c ${BYTES} /dev/zero | tr '\\000' '\\001'; echo "<<E$((1000+2))>>"\n`;
const BROWSER_LIMIT = 64 * 1024;

const stack = useStack({ name: 'msgsize', containers: 1 });

describe("output within the browser's largest message", () => {
  for (const encoding of ['json', 'msgpack'] as const) {
    it(`${encoding}: ${BYTES} control bytes reach a browser that takes 64 KiB messages, all of them`, async () => {
      const browser = await BrowserPeer.open(stack.cloud, {
        device: stack.containers[0]!,
        encoding,
        maxMessageSize: BROWSER_LIMIT,
      });
      try {
        browser.type(COMMAND);
        await untilProgress({
          what: `${BYTES} control bytes in ${encoding}`,
          stallMs: 30_000,
          progress: () => browser.outputBytes,
          done: () => browser.tail().includes(END),
        });
        const all = browser.output();
        const body = all.subarray(all.indexOf(START) + START.length, all.lastIndexOf(END));
        assert.equal(body.length, BYTES, 'every byte arrived');
        assert.ok(
          body.every((b) => b === 1),
          'each is the byte the program wrote',
        );
        assert.ok(!browser.messages.some((m) => m.type === 'error'), 'no error reached the browser');
      } finally {
        browser.close();
      }
    });
  }

  it('a browser whose largest message no output fits: the session ends, saying why, and no shell is left', async () => {
    // 40 bytes: `ready` fits, no output message does (nor the error saying so; the cloud is told).
    const browser = await BrowserPeer.open(stack.cloud, {
      device: stack.containers[0]!,
      maxMessageSize: 40,
      noWait: true,
    });
    try {
      await browser.waitFor((m) => m.type === 'ready');
      browser.type('echo hello\n');
      const notice = await stack.cloud.waitForDisconnectNotice(browser.sessionId);
      assert.equal(notice.reason, 'peer-failed', 'the cloud hears why the session ended');
      await browser.until(() => browser.channelClosed, 'the agent to close the channel', 15_000);
      const closed = stack.agent
        .logLines()
        .find((l) => l.msg === 'session closed' && l.session === browser.sessionId);
      assert.equal(closed?.code, 'TG_ERR_OUTPUT_REFUSED', 'the agent logs the refusal as the reason');
    } finally {
      browser.close();
    }
  });

  it('leaves no shell behind', async () => {
    await untilNoShells(stack.containers);
  });
});
