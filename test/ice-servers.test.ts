/**
 * A session's ICE servers (src/sessions/IceServers.ts) and what decides them: the offer's additive
 * `ice_servers` (validated at the edge), `--ice-server`, time-limited TURN credentials derived from
 * `--turn-secret`, `--ice-transport-policy`; and how a selected candidate pair is read as a path
 * (workers/selected-path.ts). Unit tests of those modules: no peers, no network.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { offerSchema, parsePayload } from '../common/protocol/signaling.js';
import { ConfigError, resolveAgentConfig, type AgentFlags } from '../src/config/agent-config.js';
import { IceServers } from '../src/sessions/IceServers.js';
import { pathOf, SignaledCandidates } from '../workers/selected-path.js';

const NOW = 1_800_000_000_000;
const DAY_MS = 86_400_000;
const SECRET = 'coturn-static-auth-secret';

const servers = (urls: string[], secret: string | undefined) =>
  new IceServers({ urls, turn: { secret, credentialTtlMs: DAY_MS }, now: () => NOW });

const offer = (extra: Record<string, unknown>) => ({
  session_id: 's-1',
  device_id: 'vplc-1',
  sdp: 'v=0',
  sdp_type: 'offer',
  ...extra,
});

describe('ICE servers of a session', () => {
  it('derives a TURN REST credential per session: <expiry>:<session>, HMAC-SHA1 of it under the secret', () => {
    const [turn] = servers(['turn:127.0.0.1:3478?transport=udp'], SECRET).forSession('s-1');
    const username = `${(NOW + DAY_MS) / 1000}:s-1`;
    assert.deepEqual(turn, {
      hostname: '127.0.0.1',
      port: 3478,
      username,
      password: createHmac('sha1', SECRET).update(username).digest('base64'),
      relayType: 'TurnUdp',
    });
    const [other] = servers(['turn:127.0.0.1'], SECRET).forSession('s-2');
    assert.equal(typeof other === 'object' && other.username, `${(NOW + DAY_MS) / 1000}:s-2`);
  });

  it('passes STUN and credential-carrying URLs as they are, and maps transports to relay types', () => {
    const list = servers(
      [
        'stun:127.0.0.1:3478',
        'turn:u:p@127.0.0.1:3478',
        'turn:[::1]:3479?transport=tcp',
        'turns:turn.example',
      ],
      SECRET,
    ).forSession('s');
    assert.equal(list[0], 'stun:127.0.0.1:3478');
    assert.equal(list[1], 'turn:u:p@127.0.0.1:3478');
    assert.deepEqual(
      list.slice(2).map((s) => typeof s === 'object' && [s.hostname, s.port, s.relayType]),
      [
        ['::1', 3479, 'TurnTcp'],
        ['turn.example', 5349, 'TurnTls'],
      ],
    );
  });

  it('without a secret, a TURN server gets no credentials', () => {
    const [turn] = servers(['turn:127.0.0.1'], undefined).forSession('s');
    assert.deepEqual(turn, { hostname: '127.0.0.1', port: 3478, relayType: 'TurnUdp' });
  });

  it("uses the offer's ice_servers instead of the agent's, with their credentials or derived ones", () => {
    const ice = servers(['turn:agent.example'], SECRET);
    const list = ice.forSession('s-9', [
      {
        urls: ['turn:cloud.example:3478', 'turn:cloud.example:443?transport=tcp'],
        username: 'cu',
        credential: 'cp',
      },
      { urls: 'turn:other.example' },
    ]);
    assert.deepEqual(
      list.map((s) => typeof s === 'object' && [s.hostname, s.username]),
      [
        ['cloud.example', 'cu'],
        ['cloud.example', 'cu'],
        ['other.example', `${(NOW + DAY_MS) / 1000}:s-9`],
      ],
    );
    assert.deepEqual(ice.forSession('s-10', []), ice.forSession('s-10'), 'an empty list is no list');
  });
});

describe('the offer field ice_servers', () => {
  const schema = offerSchema(65536);
  const refused = (extra: Record<string, unknown>) => {
    try {
      parsePayload(schema, offer(extra), 'webrtc:offer');
      return undefined;
    } catch (err) {
      return err as Error & { code?: string };
    }
  };

  it('is optional and takes RTCIceServer-shaped entries', () => {
    assert.equal(refused({}), undefined, 'old offers still pass');
    const ok = { urls: ['turn:127.0.0.1:3478?transport=udp', 'stun:[::1]'], username: 'u', credential: 'p' };
    assert.equal(refused({ ice_servers: [ok, { urls: 'turns:turn.example:443' }] }), undefined);
  });

  it('refuses what is not a STUN/TURN URL, credentials in the URL, and too many entries, with a code', () => {
    for (const bad of [
      [{ urls: 'http://127.0.0.1' }],
      [{ urls: 'turn:u:p@127.0.0.1' }],
      [{ urls: 'turn:127.0.0.1 ; rm' }],
      [{ urls: [] }],
      [{ urls: `turn:${'a'.repeat(600)}` }],
      [{ urls: 'turn:127.0.0.1', credential: 'x'.repeat(600) }],
      Array.from({ length: 9 }, () => ({ urls: 'turn:127.0.0.1' })),
      'turn:127.0.0.1',
    ]) {
      const err = refused({ ice_servers: bad });
      assert.equal(err?.code, 'TG_ERR_INVALID_PAYLOAD', JSON.stringify(bad).slice(0, 80));
      assert.match(err.message, /ice_servers/);
    }
  });
});

describe('TURN flags', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'termgate-ice-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const base: AgentFlags = { cloudUrl: 'http://127.0.0.1:9', containers: 'vplc-*' };

  it('--ice-transport-policy is all or relay', () => {
    assert.equal(resolveAgentConfig(base).session.iceTransportPolicy, 'all');
    assert.equal(
      resolveAgentConfig({ ...base, iceTransportPolicy: 'relay' }).session.iceTransportPolicy,
      'relay',
    );
    assert.throws(
      () => resolveAgentConfig({ ...base, iceTransportPolicy: 'tcp' }),
      (err: ConfigError) => /--ice-transport-policy: expected one of all, relay/.test(err.message),
    );
  });

  it('reads the secret from its file, warns when others can read it, refuses it twice', () => {
    const file = path.join(dir, 'secret');
    writeFileSync(file, `${SECRET}\n`, { mode: 0o600 });
    const config = resolveAgentConfig({ ...base, turnSecretFile: file });
    assert.equal(config.turn.secret, SECRET);
    assert.equal(config.turn.credentialTtlMs, DAY_MS);
    assert.deepEqual(config.warnings, []);
    chmodSync(file, 0o644);
    assert.match(
      resolveAgentConfig({ ...base, turnSecretFile: file }).warnings.join(),
      /TURN secret file .* chmod 600/,
    );
    assert.throws(
      () => resolveAgentConfig({ ...base, turnSecretFile: file, turnSecret: 'x' }),
      /--turn-secret-file: give the TURN secret once/,
    );
  });

  it('warns about a secret on the command line without showing it, and about TURN over TCP', () => {
    const config = resolveAgentConfig({
      ...base,
      turnSecret: SECRET,
      turnSecretSource: 'cli',
      iceServer: ['turn:127.0.0.1:3478?transport=tcp'],
    });
    const warnings = config.warnings.join('\n');
    assert.match(warnings, /--turn-secret on the command line .* TERMGATE_TURN_SECRET or --turn-secret-file/);
    assert.match(warnings, /over UDP only \(libjuice\); this one is skipped/);
    assert.doesNotMatch(warnings, new RegExp(SECRET));
  });
});

describe('the path of a selected candidate pair', () => {
  const end = (type: string, port: number) => ({
    address: '127.0.0.1',
    port,
    type,
    transportType: 'UDP',
    candidate: '',
    mid: '0',
    priority: 1,
  });

  it("is as indirect as its more indirect end, with SCTP's RTT", () => {
    assert.deepEqual(pathOf({ local: end('host', 1), remote: end('host', 2) }, 3), {
      kind: 'host',
      rttMs: 3,
    });
    assert.equal(pathOf({ local: end('srflx', 1), remote: end('relay', 2) }, 0)?.kind, 'relay');
    assert.equal(pathOf({ local: end('host', 1), remote: end('prflx', 2) }, -1)?.rttMs, undefined);
    assert.equal(pathOf(null, 0), undefined);
  });

  it("counts a peer-reflexive end at a signaled relay candidate's address as a relay", () => {
    const relays = new SignaledCandidates();
    relays.note('a=candidate:2 1 UDP 1048319 127.0.0.1 49261 typ relay raddr 0.0.0.0 rport 0');
    relays.note('candidate:1 1 UDP 2114977791 127.0.0.1 5000 typ host');
    assert.equal(pathOf({ local: end('host', 5000), remote: end('prflx', 49261) }, 1, relays)?.kind, 'relay');
    assert.equal(pathOf({ local: end('host', 5000), remote: end('prflx', 49262) }, 1, relays)?.kind, 'prflx');
  });

  it('behind the ICE UDP front, takes the route back to the browser address and its signaled kind', () => {
    const signaled = new SignaledCandidates();
    signaled.note('candidate:1 1 udp 2122260223 10.99.0.2 40001 typ host generation 0');
    signaled.note('candidate:2 1 udp 1686052607 198.51.100.7 40002 typ srflx raddr 10.99.0.2 rport 40001');
    signaled.note('candidate:3 1 udp 41885439 203.0.113.9 40003 typ relay raddr 198.51.100.7 rport 40002');
    signaled.note('candidate:4 1 udp 2122262783 2001:db8:0:0::1 40004 typ host generation 0');
    const routes = new Map([
      [50001, { address: '10.99.0.2', port: 40001 }],
      [50002, { address: '198.51.100.7', port: 40002 }],
      [50003, { address: '203.0.113.9', port: 40003 }],
      [50004, { address: '2001:db8::1', port: 40004 }],
      [50005, { address: '192.0.2.50', port: 40005 }],
    ]);
    const behind = (e: { port: number }) => routes.get(e.port);
    const kindVia = (routePort: number) =>
      pathOf({ local: end('host', 50000), remote: end('prflx', routePort) }, 1, signaled, behind)?.kind;
    assert.deepEqual(
      [50001, 50002, 50003, 50004, 50005, 50999].map(kindVia),
      ['host', 'srflx', 'relay', 'host', 'prflx', 'prflx'],
      'host, srflx, relay, IPv6 written another way, an address nobody signaled, a port with no route',
    );
  });
});
