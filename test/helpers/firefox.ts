/**
 * Launches Debian's Firefox ESR through puppeteer-core over WebDriver BiDi, with a fresh profile and the
 * preferences that keep it from reaching anything on its own (updates, telemetry, remote settings,
 * captive-portal and connectivity checks, safe browsing, DNS-over-HTTPS, prefetching).
 *
 * Firefox gathers no loopback ICE candidate, only the address of its default route: run it inside a
 * namespace with the dead-end route (test/helpers/netns.ts, `deadEndRoute`). By default it offers
 * that address as it is; `obfuscateHostAddresses` makes it offer an mDNS `.local` name instead, as it
 * does in the field for a page without camera or microphone permission.
 */
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const FIREFOX_PATH = process.env.TERMGATE_FIREFOX ?? '/usr/bin/firefox-esr';

/** Beyond puppeteer's own test preferences (which turn off updates, safe browsing and more). */
const QUIET_PREFS: Record<string, unknown> = {
  // Honoured only with MOZ_REMOTE_SETTINGS_DEVTOOLS=1 in the environment (see launchFirefox).
  'services.settings.server': 'data:,#remote-settings-off/v1',
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.trr.mode': 5,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.predictor.enabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.server': '',
  'browser.ping-centre.telemetry': false,
  'app.update.auto': false,
  'extensions.blocklist.enabled': false,
  'browser.safebrowsing.update.enabled': false,
  'browser.region.update.enabled': false,
  'browser.region.network.url': '',
  'geo.provider.network.url': '',
  'media.gmp-gmpopenh264.enabled': false,
  'media.gmp-widevinecdm.enabled': false,
  'security.OCSP.enabled': 0,
};

export interface FirefoxSession {
  browser: Browser;
  newPage(): Promise<Page>;
  /** Closes the browser; puppeteer removes the profile it made. Idempotent. */
  close(): Promise<void>;
}

export async function launchFirefox(options: {
  viewport?: { width: number; height: number };
  /** Offer mDNS `.local` names for host candidates, as Firefox does by default. Default: false. */
  obfuscateHostAddresses?: boolean;
}): Promise<FirefoxSession> {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX_PATH,
    headless: true,
    defaultViewport: options.viewport ?? { width: 1000, height: 640 },
    timeout: 60_000,
    // Without it, a release build ignores `services.settings.server` and fetches remote settings from
    // firefox.settings.services.mozilla.com a few seconds after start (seen as a DNS lookup here).
    env: { ...process.env, MOZ_REMOTE_SETTINGS_DEVTOOLS: '1' },
    extraPrefsFirefox: {
      ...QUIET_PREFS,
      // Pairs its candidate with the agent's 127.0.0.1 ones; without it ICE never connects (it still
      // gathers no loopback candidate of its own, hence the dead-end route).
      'media.peerconnection.ice.loopback': true,
      'media.peerconnection.ice.obfuscate_host_addresses': options.obfuscateHostAddresses ?? false,
    },
  });
  let closing: Promise<void> | undefined;
  return {
    browser,
    newPage: () => browser.newPage(),
    close: () => (closing ??= browser.close()),
  };
}
