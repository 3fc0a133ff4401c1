/**
 * The agent: owns the worker pool, the session registry, the router and the signaling link, and tears
 * them down in one order (see LIFECYCLE.md): stop accepting offers, end every session with a reason,
 * drain the workers (peers closed, addon cleaned up), then close signaling.
 */
import Docker from 'dockerode';
import type { AgentConfig } from './config.js';
import { ContainerAccess } from './containers/ContainerAccess.js';
import type { Logger } from './logger.js';
import { AgentMetrics } from './metrics/AgentMetrics.js';
import { MetricsServer } from './metrics/MetricsServer.js';
import { createWorkerStats } from './protocol/worker-stats.js';
import { RateLimiter } from './routing/RateLimiter.js';
import { SessionRouter } from './routing/SessionRouter.js';
import { WorkerPool } from './routing/WorkerPool.js';
import { SafeEmitter } from './SafeEmitter.js';
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
  /** Undefined with `--metrics-listen off`. */
  readonly metrics: AgentMetrics | undefined;
  readonly #metricsServer: MetricsServer | undefined;
  #closed: Promise<void> | undefined;

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
    this.pool = new WorkerPool({
      workers: config.workers,
      sessionsPerWorker: config.sessionsPerWorker,
      logger,
      workerStats,
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
    this.router = new SessionRouter({
      registry: this.registry,
      pool: this.pool,
      access: new ContainerAccess(docker, { globs: config.containerGlobs, label: config.containerLabel }),
      signaling: this.signaling,
      offerLimiter: new RateLimiter(config.offersPerSecond),
      settings: config.session,
      logger: logger.child({ module: 'router' }),
    });
    // --- metrics (issue 4) ---
    if (config.metricsListen && workerStats) {
      const metrics = new AgentMetrics({
        registry: this.registry,
        router: this.router,
        pool: this.pool,
        signaling: this.signaling,
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

  start(): void {
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
      },
      'agent started',
    );
  }

  /** Drains and stops everything. Idempotent. */
  close(timeoutMs = 15_000): Promise<void> {
    this.#closed ??= this.#close(timeoutMs);
    return this.#closed;
  }

  async #close(timeoutMs: number): Promise<void> {
    const sessions = this.registry.size;
    this.logger.info({ sessions }, 'draining');
    this.router.stopAccepting();
    await this.registry.closeAll('shutdown', timeoutMs);
    this.registry.close();
    await this.pool.close(timeoutMs);
    this.signaling.close();
    await this.#metricsServer?.close();
    this.metrics?.close();
    this.logger.info({ sessions }, 'agent stopped');
    this.safeEmit('close');
  }
}
