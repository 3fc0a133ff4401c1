/**
 * The ICE servers of one session, as its peer connection takes them. The cloud's, when its offer carries
 * `ice_servers` (for that session only, instead of the agent's), else the agent's `--ice-server` list.
 * A TURN server without credentials gets time-limited ones derived from `--turn-secret` for the session
 * (the TURN REST convention that coturn checks with `--use-auth-secret`): username
 * `<expiry unix time>:<session id>`, password base64(HMAC-SHA1(secret, username)). The secret stays in
 * the main thread; a worker only ever sees a session's derived credential.
 *
 * TURN servers go to libdatachannel as structures, never as `turn:user:pass@host` strings: a REST
 * username holds a colon, which that form cannot carry.
 */
import { createHmac } from 'node:crypto';
import { parseIceUrl, type IceUrl } from '../../common/ice-url.js';
import type { OfferIceServer } from '../../common/protocol/signaling.js';
import type { PeerIceServer } from '../../common/protocol/worker-messages.js';

export interface TurnCredentialOptions {
  /** The shared secret of the TURN server (coturn `static-auth-secret`); none: no derived credentials. */
  secret: string | undefined;
  /** How long a derived credential is valid: the allocation's refreshes use it for the whole session. */
  credentialTtlMs: number;
}

export interface IceServersOptions {
  /** `--ice-server`, already validated. */
  urls: string[];
  turn: TurnCredentialOptions;
  /** Default Date.now. */
  now?: () => number;
}

interface Credential {
  username: string;
  password: string;
}

export class IceServers {
  readonly #o: IceServersOptions;

  constructor(options: IceServersOptions) {
    this.#o = options;
  }

  /** The servers of session `sessionId`, from its offer's `ice_servers` if it has some. */
  forSession(sessionId: string, offered?: OfferIceServer[]): PeerIceServer[] {
    if (offered && offered.length > 0) return offered.flatMap((server) => this.#fromOffer(sessionId, server));
    return this.#o.urls.map((url) => this.#entry(url, undefined, sessionId));
  }

  /** A time-limited credential for `sessionId` (TURN REST), or undefined without a secret. */
  restCredential(sessionId: string): Credential | undefined {
    const { secret, credentialTtlMs } = this.#o.turn;
    if (secret === undefined) return undefined;
    const expiry = Math.floor(((this.#o.now ?? Date.now)() + credentialTtlMs) / 1000);
    const username = `${expiry}:${sessionId}`;
    return { username, password: createHmac('sha1', secret).update(username).digest('base64') };
  }

  #fromOffer(sessionId: string, server: OfferIceServer): PeerIceServer[] {
    const urls = typeof server.urls === 'string' ? [server.urls] : server.urls;
    const given =
      server.username !== undefined && server.credential !== undefined
        ? { username: server.username, password: server.credential }
        : undefined;
    return urls.map((url) => this.#entry(url, given, sessionId));
  }

  #entry(url: string, given: Credential | undefined, sessionId: string): PeerIceServer {
    const parsed = parseIceUrl(url);
    // Validated at the edge; a URL in libdatachannel's own `user:pass@` form is passed as it is.
    if (!parsed || parsed.scheme === 'stun' || parsed.userinfo !== undefined) return url;
    const credential = given ?? this.restCredential(sessionId);
    return {
      hostname: parsed.host,
      port: parsed.port,
      ...(credential ? { username: credential.username, password: credential.password } : {}),
      relayType: relayType(parsed),
    };
  }
}

function relayType(url: IceUrl): 'TurnUdp' | 'TurnTcp' | 'TurnTls' {
  if (url.scheme === 'turns') return 'TurnTls';
  return url.transport === 'tcp' ? 'TurnTcp' : 'TurnUdp';
}
