/**
 * Launches Debian's Chromium through playwright-core with the flags verified for loopback-only
 * WebRTC: loopback candidates allowed (with a media permission), mDNS host-name hiding off (written into
 * `Local State` of a fresh profile), no background traffic, no lookups but 127.0.0.1.
 * Run it inside a network namespace with only `lo` (see test/e2e-browser.test.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = process.env.TERMGATE_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
];

/** No lookups but 127.0.0.1, and `names` resolved to 127.0.0.1 (a DNS rebinding, as a page would get it). */
function hostResolverRules(names: readonly string[]): string {
  const rules = [...names.map((n) => `MAP ${n} 127.0.0.1`), 'MAP * ~NOTFOUND', 'EXCLUDE 127.0.0.1'];
  return `--host-resolver-rules=${rules.join(' , ')}`;
}

export interface ChromiumSession {
  context: BrowserContext;
  /** Closes the browser and removes its profile. Idempotent. */
  close(): Promise<void>;
}

export async function launchChromium(options: {
  origin: string;
  viewport?: { width: number; height: number };
  /** Host names that resolve to 127.0.0.1 in this browser (first rules win). */
  rebindToLoopback?: string[];
}): Promise<ChromiumSession> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'termgate-chromium-'));
  await writeFile(
    path.join(profile, 'Local State'),
    JSON.stringify({ browser: { enabled_labs_experiments: ['enable-webrtc-hide-local-ips-with-mdns@2'] } }),
  );
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, hostResolverRules(options.rebindToLoopback ?? [])],
    viewport: options.viewport ?? { width: 1000, height: 640 },
    timeout: 30_000,
  });
  await context.grantPermissions(['microphone'], { origin: options.origin });
  let closing: Promise<void> | undefined;
  return {
    context,
    close: () =>
      (closing ??= (async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      })()),
  };
}
