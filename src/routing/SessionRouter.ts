/**
 * Routes signaling to sessions and sessions to signaling. An offer becomes a session in the registry and
 * a task in the pool; its answer, ICE candidates, PTY requests and end come back on the session's port and
 * go out to the cloud here. Container access is decided here, on the main thread, for the offer's
 * `device_id` and for every `connect_pty`, so one policy and one per-container count cover both.
 */
import type { ContainerAccess } from '../containers/ContainerAccess.js';
import { ErrorCodes, TermgateError, toErrorData } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  AnswerMessage,
  DeviceInfo,
  DisconnectMessage,
  IceMessage,
  OfferMessage,
  SessionId,
} from '../protocol/signaling-messages.js';
import { Topics } from '../protocol/signaling-messages.js';
import type { SessionResult, SessionSettings } from '../protocol/worker-messages.js';
import { SafeEmitter } from '../SafeEmitter.js';
import type { Session } from '../sessions/Session.js';
import type { SessionRegistry } from '../sessions/SessionRegistry.js';
import { midsByIndex } from '../signaling/sdp.js';
import type { SignalingClient } from '../signaling/SignalingClient.js';
import type { RateLimiter } from './RateLimiter.js';
import type { WorkerPool } from './WorkerPool.js';

export interface SessionRouterOptions {
  registry: SessionRegistry;
  pool: WorkerPool;
  access: ContainerAccess;
  signaling: SignalingClient;
  offerLimiter: RateLimiter;
  settings: SessionSettings;
  logger: Logger;
  /** How long a worker may take to answer an offer. */
  answerTimeoutMs?: number;
}

export interface SessionRouterEvents {
  /** An offer was answered (`code` undefined) or refused. */
  offer: [code: string | undefined];
  answered: [seconds: number];
  'pty-connected': [seconds: number];
}

export class SessionRouter extends SafeEmitter<SessionRouterEvents> {
  readonly #o: Required<SessionRouterOptions>;
  readonly #mids = new Map<SessionId, string[]>();
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
    const result = await this.#answer(offer).then(
      (sdp) => ({ sdp }),
      (err: unknown) => ({ error: toErrorData(err) }),
    );
    this.safeEmit('offer', 'error' in result ? result.error.code : undefined);
    if ('error' in result) {
      this.#o.logger.info({ session: offer.session_id, code: result.error.code }, 'offer refused');
      return {
        action: Topics.offer,
        correlation_id: offer.correlation_id,
        status: 'error',
        session_id: offer.session_id,
        message: result.error.message,
        code: result.error.code,
      };
    }
    return {
      action: Topics.offer,
      correlation_id: offer.correlation_id,
      status: 'success',
      session_id: offer.session_id,
      sdp: result.sdp,
      sdp_type: 'answer',
    };
  }

  ice(message: IceMessage): void {
    const session = this.#o.registry.get(message.session_id);
    if (!session)
      throw new TermgateError(ErrorCodes.UNKNOWN_SESSION, `no session "${message.session_id}" on this agent`);
    if (message.candidate === '') return; // end of candidates: nothing to do in libdatachannel
    const mids = this.#mids.get(session.id) ?? [];
    const mid = message.sdp_mid ?? mids[message.sdp_mline_index ?? 0] ?? mids[0] ?? '0';
    session.send({ type: 'remote-candidate', candidate: message.candidate, mid });
  }

  disconnect(message: DisconnectMessage): void {
    const session = this.#o.registry.get(message.session_id);
    if (!session)
      throw new TermgateError(ErrorCodes.UNKNOWN_SESSION, `no session "${message.session_id}" on this agent`);
    session.requestClose('cloud-disconnect');
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
    // Reserve first (synchronously) so a duplicate session_id cannot slip in while Docker is asked.
    const session = this.#o.registry.create(offer.session_id, offer.device_id);
    try {
      await this.#o.access.authorize(offer.device_id);
      if (this.#draining) throw new TermgateError(ErrorCodes.SHUTTING_DOWN, 'the agent is shutting down');
    } catch (err) {
      session.markClosed({ reason: 'offer-failed', error: toErrorData(err) });
      throw err;
    }
    this.#mids.set(session.id, midsByIndex(offer.sdp));
    this.#wire(session);
    const answer = this.#awaitAnswer(session);
    void this.#o.pool
      .runSession({
        sessionId: session.id,
        container: offer.device_id,
        offerSdp: offer.sdp,
        port: session.workerPort,
        stats: session.statsBuffer,
        settings: this.#o.settings,
      })
      .then((result) => session.markClosed(result));
    return answer;
  }

  #awaitAnswer(session: Session): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        session.requestClose('offer-failed');
        reject(
          new TermgateError(
            ErrorCodes.INTERNAL,
            'no answer from the worker in time; the agent may be overloaded',
          ),
        );
      }, this.#o.answerTimeoutMs);
      const settle = () => {
        clearTimeout(timer);
        session.off('answer', onAnswer).off('offer-failed', onFailed).off('close', onClose);
      };
      const onAnswer = (sdp: string) => {
        settle();
        this.safeEmit('answered', (performance.now() - session.offeredAt) / 1000);
        resolve(sdp);
      };
      const onFailed = (error: { code: string; message: string }) => {
        settle();
        reject(new TermgateError(error.code as never, error.message));
      };
      const onClose = (result: SessionResult) => {
        settle();
        const error = result.error ?? {
          code: ErrorCodes.INTERNAL,
          message: `session ended before answering (${result.reason})`,
        };
        reject(new TermgateError(error.code, error.message));
      };
      session.on('answer', onAnswer).on('offer-failed', onFailed).on('close', onClose);
    });
  }

  #wire(session: Session): void {
    const { signaling, logger } = this.#o;
    const log = logger.child({ session: session.id });
    session.on('local-candidate', (candidate, mid) => {
      const index = this.#mids.get(session.id)?.indexOf(mid) ?? -1;
      signaling.sendIce({
        session_id: session.id,
        candidate,
        sdp_mid: mid,
        sdp_mline_index: Math.max(0, index),
      });
    });
    session.on('state', (state) => log.debug({ state }, 'session state'));
    session.on('pty-request', (requestId, container) => void this.#grantPty(session, requestId, container));
    session.on('pty-opened', (container) => log.info({ container }, 'pty connected'));
    session.once('pty-opened', () =>
      this.safeEmit('pty-connected', (performance.now() - session.offeredAt) / 1000),
    );
    session.once('close', (result) => {
      this.#mids.delete(session.id);
      log.info({ reason: result.reason, code: result.error?.code }, 'session closed');
      // The cloud already knows when it asked for the end; otherwise tell it why the session ended.
      if (result.reason !== 'cloud-disconnect' && result.reason !== 'offer-failed') {
        signaling.sendDisconnect(session.id, result.reason);
      }
    });
  }

  async #grantPty(session: Session, requestId: number, container: string): Promise<void> {
    try {
      await this.#o.access.authorize(container);
      this.#o.registry.moveSession(session, container);
      session.send({ type: 'pty-grant', requestId, container });
    } catch (err) {
      session.send({ type: 'pty-deny', requestId, error: toErrorData(err) });
    }
  }
}
