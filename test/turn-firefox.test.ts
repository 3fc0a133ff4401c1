/**
 * The TURN relay test in Firefox (issue 14): Firefox ESR with `iceTransportPolicy: 'relay'` and the agent
 * with `--ice-transport-policy relay` open a terminal through a real coturn, type, follow a resize and
 * move 20 MB byte-exact; coturn's log shows both allocations, the agent's metrics and the page's status
 * bar say relayed. Firefox reaches coturn over UDP, then over TCP (the agent always over UDP, all its ICE
 * library does): unlike Chromium, Firefox over TURN/TCP connects to this agent (docs/turn.md). The same session steps as the Chromium file (test/turn-relay.test.ts,
 * test/helpers/turn-session.ts), driven through Puppeteer.
 *
 * Runs inside a private network namespace with `lo` and the dead-end route Firefox needs to gather any
 * candidate at all (test/helpers/netns.ts): its host candidate there only serves to reach coturn on
 * 127.0.0.1, and nothing may have tried to reach an address through that route.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, afterEach, describe, it } from 'node:test';
import type { BrowserStack } from './helpers/browser-stack.js';
import { launchFirefox, type FirefoxSession } from './helpers/firefox.js';
import { Coturn } from './helpers/coturn.js';
import { scrapeUntil } from './helpers/metrics.js';
import { DEAD_END_ADDRESS, deadEndDestinations, IN_NETNS, rerunInNetns } from './helpers/netns.js';
import { closeLeavesNoShell } from './helpers/terminal-page.js';
import {
  assertPathMetrics,
  assertRelayedBulk,
  moveBulk,
  openTappedTerminalOnceMore,
  printMeasured,
  relayOnly,
  startMeteredStack,
  typeResizeAndMeasure,
  type PathMeasure,
} from './helpers/turn-session.js';

const SELF = fileURLToPath(import.meta.url);
const measured: PathMeasure[] = [];

if (!IN_NETNS) {
  rerunInNetns(
    SELF,
    'TURN relay in Firefox, in a network namespace with loopback and a dead-end route',
    600_000,
    {
      deadEndRoute: true,
    },
  );
} else {
  void describe('TURN relay in Firefox (inside the namespace)', { timeout: 540_000 }, () => {
    let turn: Coturn | undefined;
    let stack: BrowserStack | undefined;
    let browser: FirefoxSession | undefined;

    // A failed test must not leave its browser, agent, shell or TURN server behind.
    afterEach(async () => {
      await browser?.close();
      await stack?.close();
      await turn?.close();
      [browser, stack, turn] = [undefined, undefined, undefined];
    });
    after(() => printMeasured(measured));

    /** Firefox relay-only through coturn over `transport`, the agent relay-only over UDP: the whole session. */
    async function relayedSession(transport: 'udp' | 'tcp'): Promise<Coturn> {
      const label = `relay (Firefox, coturn, ${transport})`;
      turn = await Coturn.start({ auth: { kind: 'long-term', username: 'tg', password: 'relay-pw' } });
      const started = await startMeteredStack(relayOnly(turn, transport));
      stack = started.stack;
      browser = await launchFirefox({ viewport: { width: 1000, height: 640 } });
      const page = await openTappedTerminalOnceMore(() => browser!.newPage(), stack, turn);
      const shrink = () => page.setViewport({ width: 700, height: 400 });
      // Only the path: Firefox's pair RTT may read 0.0 ms on loopback.
      const shown = new RegExp(`^relayed \\(TURN/${transport}\\)`);
      measured.push(await typeResizeAndMeasure(page, shrink, label, shown));
      await scrapeUntil(started.metrics, (m) => assertPathMetrics(m, 'relay'));
      await moveBulk(page, label);
      await assertRelayedBulk(started.metrics, turn);
      await closeLeavesNoShell(page, stack);
      assert.deepEqual(await deadEndDestinations(), [], 'nothing was tried beyond the namespace');
      return turn;
    }

    void it('Firefox and the agent relay-only through coturn over UDP: type, resize, 20 MB byte-exact', async () => {
      const server = await relayedSession('udp');
      assert.deepEqual(server.tcpClients(), [], 'nobody reached coturn over TCP');
    });

    void it('Firefox reaches coturn over TCP (the agent over UDP): type, resize, 20 MB byte-exact', async () => {
      const server = await relayedSession('tcp');
      // Firefox's connections (one per try), from its host address on the namespace's route.
      assert.deepEqual(
        [...new Set(server.tcpClients().map((c) => c.split(':')[0]))],
        [DEAD_END_ADDRESS],
        server.log.slice(-3000),
      );
    });
  });
}
