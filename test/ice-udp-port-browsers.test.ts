/**
 * `--ice-udp-port` with the real browsers (issue 14, point 1): Chromium and Firefox open a terminal
 * through an agent whose two workers sit behind its one UDP port. Each page's selected candidate pair
 * ends at that port (read from the page's own getStats()), and the terminal answers. The browsers'
 * candidates never reach the workers' ICE; they learn each browser from its checks, through the front,
 * as peer-reflexive, and yet the agent's path metrics say `host`: the front tells the workers which
 * browser address each route stands for (common/protocol/front-routes.ts).
 *
 * Runs inside a private network namespace (the file re-executes itself under `unshare -n`), with the
 * dead-end route Firefox needs for a candidate (see e2e-firefox.test.ts), whose address the agent is
 * bound to; in the namespace the port is free.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { BrowserStack } from './helpers/browser-stack.js';
import { launchChromium, type ChromiumSession } from './helpers/chromium.js';
import { launchFirefox, type FirefoxSession } from './helpers/firefox.js';
import { DEAD_END_ADDRESS, deadEndDestinations, IN_NETNS, rerunInNetns } from './helpers/netns.js';
import { scrapeUntil } from './helpers/metrics.js';
import { closeLeavesNoShell, run, waitConnected, type TerminalPage } from './helpers/terminal-page.js';
import { startMeteredStack } from './helpers/turn-session.js';
import { recordPeerConnections } from './helpers/page-peers.js';

const SELF = fileURLToPath(import.meta.url);
const PORT = 50_000;
/** The agent's metrics base URL. */
let metrics = '';

/** The agent's end of the page's selected candidate pair, `address:port`. */
function agentEnd(page: TerminalPage): Promise<string | undefined> {
  return page.evaluate(async () => {
    interface Entry {
      id: string;
      type: string;
      selectedCandidatePairId?: string;
      remoteCandidateId?: string;
      nominated?: boolean;
      state?: string;
      address?: string;
      port?: number;
    }
    type Peer = { getStats(): Promise<Map<string, Entry>> };
    const peers = (globalThis as unknown as { testPeers: Peer[] }).testPeers;
    const entries = new Map<string, Entry>();
    (await peers.at(-1)!.getStats()).forEach((e: Entry) => entries.set(e.id, e));
    const all = [...entries.values()];
    const selectedId = all.find(
      (e) => e.type === 'transport' && e.selectedCandidatePairId,
    )?.selectedCandidatePairId;
    const pair =
      (selectedId ? entries.get(selectedId) : undefined) ??
      all.find((e) => e.type === 'candidate-pair' && e.nominated && e.state === 'succeeded');
    const remote = entries.get(pair?.remoteCandidateId ?? '');
    return remote ? `${remote.address}:${remote.port}` : undefined;
  });
}

async function throughOnePort(
  page: TerminalPage & { close(): Promise<void> },
  stack: BrowserStack,
  tag: string,
): Promise<void> {
  await waitConnected(page);
  assert.equal(await agentEnd(page), `${DEAD_END_ADDRESS}:${PORT}`, "the agent's end of the selected pair");
  await scrapeUntil(metrics, (s) => {
    const byPath = ['host', 'prflx'].map((path) => s.sum('termgate_sessions_by_path', { path }));
    assert.deepEqual(byPath, [1, 0], 'sessions by path host/prflx: the browser as it is, not the route');
  });
  const token = `${tag}-${randomBytes(6).toString('hex')}`;
  await run(page, `echo ${token}`, new RegExp(`^${token}$`));
  await closeLeavesNoShell(page, stack);
}

if (!IN_NETNS) {
  rerunInNetns(SELF, 'Chromium and Firefox through one UDP port, in a network namespace', 300_000, {
    deadEndRoute: true,
  });
} else {
  void describe('browsers through one UDP port (inside the namespace)', { timeout: 240_000 }, () => {
    let stack: BrowserStack;
    let chromium: ChromiumSession | undefined;
    let firefox: FirefoxSession | undefined;

    before(async () => {
      // Firefox checks no loopback candidate from its other address, and the agent behind the port does
      // not check the browser's candidates (front-candidates.ts): so the agent offers that address.
      ({ stack, metrics } = await startMeteredStack({
        bindAddress: DEAD_END_ADDRESS,
        agentArgs: ['--ice-udp-port', String(PORT)],
      }));
    });

    after(async () => {
      await chromium?.close();
      await firefox?.close();
      await stack?.close();
    });

    void it('Chromium: the selected pair ends at the one port, and the terminal answers', async () => {
      chromium = await launchChromium({ origin: stack.url });
      const page = await chromium.context.newPage();
      await page.addInitScript(recordPeerConnections);
      await page.goto(stack.cloud.pageUrl(stack.container));
      await throughOnePort(page, stack, 'chromium');
    });

    void it('Firefox: the selected pair ends at the one port, and the terminal answers', async () => {
      firefox = await launchFirefox({ viewport: { width: 1000, height: 640 } });
      const page = await firefox.newPage();
      await page.evaluateOnNewDocument(recordPeerConnections);
      await page.goto(stack.cloud.pageUrl(stack.container));
      await throughOnePort(page, stack, 'firefox');
      assert.deepEqual(await deadEndDestinations(), [], 'nothing was tried beyond the namespace');
    });
  });
}
