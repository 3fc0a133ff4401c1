/**
 * The main thread's handle on the ICE UDP front (`--ice-udp-port`, IceUdpFront), which runs in a thread
 * of its own. `start()` resolves once the public port is bound, or rejects with TG_ERR_ICE_PORT_UNAVAILABLE
 * saying why. A front thread that dies is started again (its routes are gone: ICE checks open new ones),
 * so one fault does not cut every future session off the port.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, TermgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { parseFrontReport, type FrontCommand, type FrontReport } from './front-messages.js';
import type { IceUdpFrontOptions } from './IceUdpFront.js';

const THREAD = new URL('./front-thread.js', import.meta.url);
const RESTART_DELAY_MS = 1000;
const CLOSE_TIMEOUT_MS = 5000;

/** Starts a front thread and waits for its first word: listening, or why not. */
async function startThread(options: IceUdpFrontOptions): Promise<Worker> {
  const worker = new Worker(THREAD, { workerData: options });
  const first = await Promise.race([
    once(worker, 'message').then(([raw]) => parseFrontReport(raw)),
    once(worker, 'error').then(([err]): FrontReport => {
      return { type: 'failed', code: 'THREAD', message: String(err) };
    }),
  ]);
  if (first?.type === 'listening') return worker;
  await worker.terminate();
  const where = `${options.bindAddress ?? '*'}:${options.port}`;
  const why = first?.type === 'failed' ? `${first.code}: ${first.message}` : 'no answer from its thread';
  throw new TermgateError(
    ErrorCodes.ICE_PORT_UNAVAILABLE,
    `--ice-udp-port: cannot listen on UDP ${where} (${why}); choose a free port`,
  );
}

export class IceFrontThread {
  readonly #options: IceUdpFrontOptions;
  readonly #logger: Logger;
  #worker: Worker;
  #running = true;
  #restart: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;

  private constructor(options: IceUdpFrontOptions, logger: Logger, worker: Worker) {
    this.#options = options;
    this.#logger = logger;
    this.#worker = worker;
    this.#watch(worker);
  }

  static async start(options: IceUdpFrontOptions, logger: Logger): Promise<IceFrontThread> {
    const worker = await startThread(options);
    logger.info(
      { port: options.port, workerPorts: options.workerPorts },
      'ICE UDP front: every session on one port',
    );
    return new IceFrontThread(options, logger, worker);
  }

  /** Closes the port and the thread. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    clearTimeout(this.#restart);
    if (!this.#running) return;
    const exited = once(this.#worker, 'exit');
    this.#worker.postMessage({ type: 'close' } satisfies FrontCommand);
    const timer = setTimeout(() => void this.#worker.terminate(), CLOSE_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  #watch(worker: Worker): void {
    worker.on('error', (err) => this.#logger.error({ err: String(err) }, 'ICE UDP front thread failed'));
    this.#running = true;
    worker.once('exit', (code) => {
      this.#running = false;
      if (this.#closed) return;
      this.#logger.error({ code }, 'ICE UDP front thread ended; starting it again');
      this.#restart = setTimeout(() => void this.#again(), RESTART_DELAY_MS);
    });
  }

  async #again(): Promise<void> {
    try {
      const worker = await startThread(this.#options);
      if (this.#closed) {
        await worker.terminate();
        return;
      }
      this.#worker = worker;
      this.#watch(worker);
    } catch (err) {
      this.#logger.error({ err: String(err) }, 'ICE UDP front could not start again; retrying');
      if (!this.#closed) this.#restart = setTimeout(() => void this.#again(), RESTART_DELAY_MS);
    }
  }
}
