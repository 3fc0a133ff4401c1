/**
 * Routes signaling to sessions and sessions to signaling. An offer becomes a session in the registry and
 * a task in the pool; its answer, ICE candidates, PTY requests and end come back through its SessionHandle
 * and go out to the cloud here. Container access is decided here, on the main thread, for the offer's
 * `device_id` and for every `connect_pty`, so one policy and one per-container count cover both.
 *
 * A session stays inside what the cloud authorized: `connect_pty` may reach the offer's `device_id` and
 * the containers of its `devices` field, or, with `--allow-container-switch`, any container the selector
 * allows; every switch is told to the cloud (`agent:session-device`). A name is resolved to the
 * container's full id at each authorization, and the shell goes to that id.
 */
import type { ContainerAccess } from '../containers/ContainerAccess.js';
import type { ShellJanitor } from '../containers/ShellJanitor.js';
import { ErrorCodes, TermgateError, toErrorData } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import {
  answerError,
  answerSuccess,
  BROWSER_GONE,
  type AnswerMessage,
  type DeviceInfo,
  type DisconnectMessage,
  type IceMessage,
  type OfferMessage,
} from '../../common/protocol/signaling.js';
import type { SessionPath, SessionSettings } from '../../common/protocol/worker-messages.js';
import type { RateLimiter } from '../../common/RateLimiter.js';
import { SafeEmitter } from '../../common/SafeEmitter.js';
import type { WorkerPool } from '../pool/WorkerPool.js';
import type { SignalingClient } from '../signaling/SignalingClient.js';
import {
  PTY_REQUEST_BURST,
  PTY_REQUESTS_PER_SECOND,
  type PtyRequest,
  type SessionHandle,
} from './SessionHandle.js';
import type { IceServers } from './IceServers.js';
import type { SessionRegistry, SlotReservation } from './SessionRegistry.js';

export interface SessionRouterOptions {
  registry: SessionRegistry;
  pool: WorkerPool;
  access: ContainerAccess;
  signaling: SignalingClient;
  offerLimiter: RateLimiter;
  settings: SessionSettings;
  /** Each session's ICE servers: the offer's, or the agent's with derived TURN credentials. */
  iceServers: IceServers;
  logger: Logger;
  janitor: ShellJanitor;
  /** `--agent-id` and this run's instance tag, written into every shell's environment. */
  agentId: string;
  instance: string;
  /** connect_pty may switch to any container the selector allows, not only the granted ones. */
  allowContainerSwitch: boolean;
  /** How long a worker may take to answer an offer. */
  answerTimeoutMs?: number;
}

export interface SessionRouterEvents {
  /** An offer was answered (`code` undefined) or refused. */
  offer: [code: string | undefined];
  answered: [seconds: number];
  'pty-connected': [seconds: number];
  /** A session's selected ICE path became known or changed kind. */
  path: [path: SessionPath];
  /** A connect_pty into another container: switched, or refused (`code` says why). */
  switch: [code: string | undefined];
  /** The main thread's handler of a session's port threw (worker-side faults are in the session stats). */
  'handler-fault': [code: string];
}

export class SessionRouter extends SafeEmitter<SessionRouterEvents> {
  readonly #o: Required<SessionRouterOptions>;
  #draining = false;

  constructor(options: SessionRouterOptions) {
    super();
    this.#o = { answerTimeoutMs: 15_000, ...options };
  }

  /** Refuses new offers from now on (shutdown). */
  stopAccepting(): void {
    this.#draining = true;
  }

  async offer(offer: OfferMessage): Promise<AnswerMessage> {
    const ids = { session_id: offer.session_id, correlation_id: offer.correlation_id };
    try {
      const sdp = await this.#answer(offer);
      this.safeEmit('offer', undefined);
      return answerSuccess(ids, sdp);
    } catch (err) {
      const error = toErrorData(err);
      this.safeEmit('offer', error.code);
      this.#o.logger.info({ session: offer.session_id, code: error.code }, 'offer refused');
      return answerError(ids, error);
    }
  }

  ice(message: IceMessage): void {
    const session = this.#o.registry.get(message.session_id);
    if (!session)
      throw new TermgateError(ErrorCodes.UNKNOWN_SESSION, `no session "${message.session_id}" on this agent`);
    session.addRemoteCandidate({
      candidate: message.candidate,
      sdpMid: message.sdp_mid ?? null,
      sdpMLineIndex: message.sdp_mline_index ?? null,
    });
  }

  disconnect(message: DisconnectMessage): void {
    const session = this.#o.registry.get(message.session_id);
    if (!session)
      throw new TermgateError(ErrorCodes.UNKNOWN_SESSION, `no session "${message.session_id}" on this agent`);
    // A browser that left the cloud without ending its session (a reload) may come back with a resume.
    if (message.reason === BROWSER_GONE) session.browserGone();
    else session.close('cloud-disconnect');
  }

  devices(): Promise<DeviceInfo[]> {
    return this.#o.access.listDevices();
  }

  async #answer(offer: OfferMessage): Promise<string> {
    if (this.#draining)
      throw new TermgateError(ErrorCodes.SHUTTING_DOWN, 'the agent is shutting down; retry on another agent');
    if (!this.#o.offerLimiter.tryTake()) {
      throw new TermgateError(
        ErrorCodes.RATE_LIMITED,
        'too many offers per second on this agent; retry shortly',
      );
    }
    if (offer.resume_token !== undefined) return this.#resume(offer, offer.resume_token);
    // Reserve first (synchronously) so a duplicate session_id cannot slip in while Docker is asked.
    const session = this.#o.registry.create(offer.session_id, offer.device_id, offer.devices);
    let containerId: string;
    try {
      ({ id: containerId } = await this.#o.access.authorize(offer.device_id));
      // A shell the agent could not end would outlive its session: make sure first (once).
      await this.#o.janitor.ensure(containerId);
      if (this.#draining) throw new TermgateError(ErrorCodes.SHUTTING_DOWN, 'the agent is shutting down');
    } catch (err) {
      session.markClosed({ reason: 'offer-failed', error: toErrorData(err) });
      throw err;
    }
    this.#wire(session);
    void this.#o.pool
      .runSession({
        sessionId: session.id,
        container: offer.device_id,
        containerId,
        shellTags: { session: session.id, agentId: this.#o.agentId, instance: this.#o.instance },
        port: session.workerPort,
        stats: session.statsBuffer,
        settings: {
          ...this.#o.settings,
          iceServers: this.#o.iceServers.forSession(session.id, offer.ice_servers),
        },
      })
      .then((result) => session.markClosed(result));
    try {
      const sdp = await session.answer(offer.sdp, this.#o.answerTimeoutMs);
      this.safeEmit('answered', (performance.now() - session.offeredAt) / 1000);
      return sdp;
    } catch (err) {
      session.close('offer-failed');
      throw err;
    }
  }

  /**
   * A resume offer (issue 13): the session keeps its slot, shell and container; its worker checks the
   * token and the offset and answers with a new peer. A refusal leaves the session as it was.
   */
  async #resume(offer: OfferMessage, token: string): Promise<string> {
    const session = this.#o.registry.get(offer.session_id);
    if (!session || session.closed) {
      throw new TermgateError(
        ErrorCodes.RESUME_REFUSED,
        `no session "${offer.session_id}" to resume on this agent: unknown, ended, or its grace is over`,
      );
    }
    const resume = { token, offset: offer.resume_offset ?? 0 };
    const sdp = await session.answer(offer.sdp, this.#o.answerTimeoutMs, resume);
    this.#o.logger.info({ session: session.id, offset: resume.offset }, 'session resumed');
    return sdp;
  }

  #wire(session: SessionHandle): void {
    const { signaling, logger } = this.#o;
    const log = logger.child({ session: session.id });
    session.on('local-candidate', ({ candidate, sdpMid, sdpMLineIndex }) =>
      signaling.sendIce({
        session_id: session.id,
        candidate,
        sdp_mid: sdpMid,
        sdp_mline_index: sdpMLineIndex,
      }),
    );
    session.on('state', (state) => log.debug({ state }, 'session state'));
    session.on('pty-request', (request) => void this.#decidePty(session, request));
    session.on('pty-opened', (container) => log.info({ container }, 'pty connected'));
    session.on('cleanup-failed', (error) =>
      log.error({ code: error.code, err: error.message }, 'a shell of this session may be left running'),
    );
    // Worker-side faults are counted in the session's stats; only the first of each session is logged.
    session.on('handler-fault', (error) =>
      log.error({ code: error.code, err: error.message }, 'session handler failed'),
    );
    session.on('port-fault', (error) => {
      log.error({ code: error.code, err: error.message }, 'worker message handler failed');
      this.safeEmit('handler-fault', error.code);
    });
    session.on('path', (path) => {
      log.debug({ path: path.kind, rttMs: path.rttMs }, 'session path');
      this.safeEmit('path', path);
    });
    session.once('pty-opened', () =>
      this.safeEmit('pty-connected', (performance.now() - session.offeredAt) / 1000),
    );
    session.once('close', (result) => {
      log.info({ reason: result.reason, code: result.error?.code }, 'session closed');
      // The cloud already knows when it asked for the end; otherwise tell it why the session ended.
      if (result.reason !== 'cloud-disconnect' && result.reason !== 'offer-failed') {
        signaling.sendDisconnect(session.id, result.reason);
      }
    });
  }

  /** connect_pty: granted within the selector, the cloud's grants and the per-container limit, or denied. */
  async #decidePty(session: SessionHandle, request: PtyRequest): Promise<void> {
    const { container } = request;
    if (session.closed) return;
    const previous = session.container;
    const switching = container !== previous;
    let reservation: SlotReservation | undefined;
    try {
      // Cheap refusals first: the selector's glob, then the cloud's grant; no slot, no engine call.
      this.#o.access.checkName(container);
      if (switching) this.#checkGrant(session, container);
      // What passes those costs the engine (shared with the host's vPLCs): at a slow rate only.
      if (!session.ptyRequests.tryTake()) {
        throw new TermgateError(
          ErrorCodes.RATE_LIMITED,
          `more than ${PTY_REQUEST_BURST} connect_pty in a row; at most ${PTY_REQUESTS_PER_SECOND} a second`,
        );
      }
      // The slot is taken before the engine is asked, and given back if the session ends meanwhile.
      reservation = this.#o.registry.reserveMove(session, container);
      const { id } = await this.#o.access.authorize(container);
      if (!reservation.commit()) return; // the session ended while Docker was asked
      request.grant({ container, containerId: id });
    } catch (err) {
      reservation?.release();
      const error = toErrorData(err);
      if (switching) this.safeEmit('switch', error.code);
      request.deny(error);
      return;
    }
    if (!switching) return;
    this.safeEmit('switch', undefined);
    this.#o.logger.info({ session: session.id, container, previous }, 'session switched container');
    this.#o.signaling.sendSessionDevice({
      session_id: session.id,
      device_id: container,
      previous_device_id: previous,
    });
  }

  /** The cloud's authorization for this session (the selector's glob was checked before). */
  #checkGrant(session: SessionHandle, container: string): void {
    if (this.#o.allowContainerSwitch || session.grants.has(container)) return;
    throw new TermgateError(
      ErrorCodes.CONTAINER_NOT_GRANTED,
      `this session may not switch to container ${JSON.stringify(container.slice(0, 64))}: the cloud did not grant it (offer "devices")`,
    );
  }
}
