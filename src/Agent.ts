/**
 * The agent: owns the worker pool, the session registry, the router and the signaling link, and tears
 * them down in one order (see LIFECYCLE.md): stop accepting offers, end every session with a reason,
 * drain the workers (peers closed, addon cleaned up), then close signaling. Before it serves, it checks
 * that it can end the shells it will start and ends those an earlier, crashed run left.
 */
import Docker from 'dockerode';
import { agentInstance } from '../common/process-tags.js';
import type { AgentConfig } from './config/agent-config.js';
import { ErrorCodes, TermgateError } from '../common/errors.js';
import { ContainerAccess } from './containers/ContainerAccess.js';
import { IceFrontThread } from './ice-front/IceFrontThread.js';
import { DEFAULT_FRONT_LIMITS, workerAddressFor } from './ice-front/IceUdpFront.js';
import { ShellJanitor } from './containers/ShellJanitor.js';
import type { Logger } from '../common/logger.js';
import { AgentMetrics } from './metrics/AgentMetrics.js';
import { MetricsServer } from './metrics/MetricsServer.js';
import { createWorkerStats } from '../common/protocol/worker-stats.js';
import { createFrontRoutes } from '../common/protocol/front-routes.js';
import { RateLimiter } from '../common/RateLimiter.js';
import { IceServers } from './sessions/IceServers.js';
import { SessionRouter } from './sessions/SessionRouter.js';
import { WorkerPool, type DrainReport } from './pool/WorkerPool.js';
import { SafeEmitter } from '../common/SafeEmitter.js';
import { SessionRegistry } from './sessions/SessionRegistry.js';
import { SignalingClient } from './signaling/SignalingClient.js';

export interface AgentEvents {
  close: [];
}

export class Agent extends SafeEmitter<AgentEvents> {
  readonly config: AgentConfig;
  readonly logger: Logger;
  readonly pool: WorkerPool;
  readonly registry: SessionRegistry;
  readonly signaling: SignalingClient;
  readonly router: SessionRouter;
  readonly janitor: ShellJanitor;
  /** This run's tag in every shell's environment: PID and start time. */
  readonly instance = agentInstance();
  /** Undefined with `--metrics-listen off`. */
  readonly metrics: AgentMetrics | undefined;
  readonly #metricsServer: MetricsServer | undefined;
  /** With `--ice-udp-port`: which browser each front route stands for, written by the front, read by workers. */
  readonly #frontRoutes: SharedArrayBuffer | undefined;
  /** `--ice-udp-port`: the one public port, relaying to the workers' ports; started by `start()`. */
  #iceFront: IceFrontThread | undefined;
  #closed: Promise<DrainReport> | undefined;

  constructor(config: AgentConfig, logger: Logger) {
    super();
    this.config = config;
    this.logger = logger;
    SafeEmitter.onListenerError = (event, err) =>
      logger.error({ event, err: String(err) }, 'event listener threw');
    const docker = new Docker({ socketPath: config.session.dockerSocket });
    // Metrics: with `--metrics-listen off` the workers get no stats table and nothing samples anything.
    // Twice the rows of threads, so a worker Piscina replaces always finds a free row (worker-stats.ts).
    const workerStats = config.metricsListen ? createWorkerStats(config.workers * 2) : undefined;
    this.#frontRoutes = config.iceUdpPort === undefined ? undefined : createFrontRoutes();
    this.pool = new WorkerPool({
      workers: config.workers,
      sessionsPerWorker: config.sessionsPerWorker,
      logger,
      workerStats,
      workerIcePort: config.iceUdpPort === undefined ? undefined : config.iceUdpPort + 1,
      frontRoutes: this.#frontRoutes,
    });
    this.registry = new SessionRegistry({
      maxSessions: config.maxSessions,
      maxSessionsPerContainer: config.maxSessionsPerContainer,
      idleTimeoutMs: config.idleTimeoutMs,
      sweepIntervalMs: config.sweepIntervalMs,
    });
    this.signaling = new SignalingClient({
      url: config.cloudUrl,
      token: config.token,
      agentId: config.agentId,
      maxSdpBytes: config.maxSdpBytes,
      logger: logger.child({ module: 'signaling' }),
    });
    const access = new ContainerAccess(
      docker,
      { globs: config.containerGlobs, label: config.containerLabel },
      { dockerTimeoutMs: config.dockerTimeoutMs },
    );
    this.janitor = new ShellJanitor({
      access,
      agentId: config.agentId,
      instance: this.instance,
      logger: logger.child({ module: 'shells' }),
    });
    this.router = new SessionRouter({
      registry: this.registry,
      pool: this.pool,
      access,
      signaling: this.signaling,
      offerLimiter: new RateLimiter(config.offersPerSecond),
      settings: config.session,
      iceServers: new IceServers({ urls: config.iceServers, turn: config.turn }),
      logger: logger.child({ module: 'router' }),
      janitor: this.janitor,
      agentId: config.agentId,
      instance: this.instance,
      allowContainerSwitch: config.allowContainerSwitch,
    });
    if (config.metricsListen && workerStats) {
      const metrics = new AgentMetrics({
        registry: this.registry,
        router: this.router,
        pool: this.pool,
        signaling: this.signaling,
        janitor: this.janitor,
        workerStats,
        maxSessions: config.maxSessions,
      });
      this.metrics = metrics;
      this.#metricsServer = new MetricsServer({
        ...config.metricsListen,
        metrics,
        notReady: () => [
          ...(this.#closed ? ['shutting down'] : []),
          ...(this.signaling.connected ? [] : ['signaling not connected']),
          ...(metrics.workersReporting() < this.pool.size ? ['worker pool not started'] : []),
        ],
        logger: logger.child({ module: 'metrics' }),
      });
    }
    // --- end metrics ---
  }

  /**
   * Checks that shells can be ended (throws a TermgateError saying what to do if not), ends the shells an
   * earlier run left, then connects to the cloud.
   */
  async start(): Promise<void> {
    for (const warning of this.config.warnings) this.logger.warn(warning);
    if (process.platform === 'linux' && process.env.MALLOC_ARENA_MAX === undefined) {
      this.logger.warn(
        'MALLOC_ARENA_MAX is not set: memory fragments as sessions come and go; start termgate with bin/termgate (it sets 2)',
      );
    }
    const verified = await this.janitor.verifyAtStart().catch((err: unknown) => {
      // An engine that is not up yet must not keep the agent from starting; the first session checks.
      if (err instanceof TermgateError && err.code === ErrorCodes.SHELL_CLEANUP_FAILED) throw err;
      this.logger.warn({ err: String(err) }, 'could not check shell cleanup at start-up');
      return false;
    });
    if (!verified) {
      this.logger.warn(
        'shell cleanup not checked yet (no running container); it is checked before the first shell',
      );
    }
    await this.janitor.endOrphans();
    this.#iceFront = await this.#startIceFront();
    this.signaling.start(this.router);
    // A port already taken costs the metrics, not the gateway: log it and keep serving terminals.
    this.#metricsServer
      ?.listen()
      .catch((err: unknown) => this.logger.error({ err: String(err) }, 'metrics server failed to listen'));
    this.logger.info(
      {
        workers: this.config.workers,
        maxSessions: this.config.maxSessions,
        containers: this.config.containerGlobs,
        instance: this.instance,
        mallocArenaMax: process.env.MALLOC_ARENA_MAX,
      },
      'agent started',
    );
  }

  /** The ICE UDP front of `--ice-udp-port` (undefined without it), before any session can need it. */
  async #startIceFront(): Promise<IceFrontThread | undefined> {
    const port = this.config.iceUdpPort;
    if (port === undefined) return undefined;
    const { bindAddress } = this.config.session;
    return IceFrontThread.start(
      {
        ...DEFAULT_FRONT_LIMITS,
        bindAddress,
        port,
        workerAddress: workerAddressFor(bindAddress),
        workerPorts: Array.from({ length: this.config.workers }, (_, k) => port + 1 + k),
        routes: this.#frontRoutes,
      },
      this.logger.child({ module: 'ice-front' }),
    );
  }

  /** Drains and stops everything; resolves with what the workers' drain found. Idempotent. */
  close(timeoutMs = 15_000): Promise<DrainReport> {
    this.#closed ??= this.#close(timeoutMs);
    return this.#closed;
  }

  async #close(timeoutMs: number): Promise<DrainReport> {
    const sessions = this.registry.size;
    this.logger.info({ sessions }, 'draining');
    this.router.stopAccepting();
    await this.registry.closeAll('shutdown', timeoutMs);
    this.registry.close();
    const drain = await this.pool.close(timeoutMs);
    await this.#iceFront?.close();
    this.signaling.close();
    await this.#metricsServer?.close();
    this.metrics?.close();
    this.logger.info({ sessions }, 'agent stopped');
    this.safeEmit('close');
    return drain;
  }
}
