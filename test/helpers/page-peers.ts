/**
 * An init script for the terminal page that keeps what its RTCPeerConnections do within the test's
 * reach: every connection the page makes, in `globalThis.testPeers` (to read its stats or close it under
 * the page), and every ICE candidate they gather, in `globalThis.gathered`. Self-contained, as an init
 * script must be: Playwright's `addInitScript` and Puppeteer's `evaluateOnNewDocument` take it as it is.
 */

/** What the script leaves on the page's global object. */
export interface RecordedPeers<Peer = unknown> {
  testPeers: Peer[];
  gathered: string[];
}

export function recordPeerConnections(): void {
  const scope = globalThis as unknown as RecordedPeers & {
    RTCPeerConnection: new (config?: unknown) => EventTarget;
  };
  const Native = scope.RTCPeerConnection;
  scope.testPeers = [];
  scope.gathered = [];
  scope.RTCPeerConnection = class extends Native {
    constructor(config?: unknown) {
      super(config);
      scope.testPeers.push(this);
      this.addEventListener('icecandidate', (e) => {
        const c = (e as unknown as { candidate: { candidate: string } | null }).candidate;
        if (c?.candidate) scope.gathered.push(c.candidate);
      });
    }
  };
}
