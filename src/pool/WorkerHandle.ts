/**
 * The main thread's handle on one worker thread of the pool: the thread's line (a Channel over the
 * worker BroadcastChannels, addressed by its thread id), on which the worker's log lines arrive and the
 * drain is asked for. A handle exists once the worker has loaded its session module and said so.
 */
import { Channel, type ChannelEndpoint } from '../../common/Channel.js';
import type { Logger } from '../../common/logger.js';
import type { PoolToWorker, WorkerToPool } from '../../common/protocol/worker-messages.js';

export interface DrainOutcome {
  threadId: number;
  /** Peers the worker still held and closed; undefined if it did not confirm in time. */
  peersClosed: number | undefined;
}

export class WorkerHandle {
  readonly threadId: number;
  readonly #channel: Channel<PoolToWorker, WorkerToPool>;

  /** `endpoint` is the thread's end of the pool's line demultiplexer (see WorkerPool). */
  constructor(threadId: number, endpoint: ChannelEndpoint, logger: Logger) {
    this.threadId = threadId;
    const log = logger.child({ worker: threadId });
    this.#channel = new Channel(endpoint, {
      onListenerError: (method, err) =>
        log.error({ method, err: String(err) }, 'worker message handler failed'),
    });
    this.#channel.on('log', ({ level, msg, fields }) => log[level](fields, msg));
  }

  /** Asks the worker to close its peers and clean its addon up; resolves either way within `timeoutMs`. */
  async drain(timeoutMs: number): Promise<DrainOutcome> {
    try {
      const { peersClosed } = await this.#channel.request('drain', {}, { timeoutMs });
      return { threadId: this.threadId, peersClosed };
    } catch {
      return { threadId: this.threadId, peersClosed: undefined };
    }
  }

  /** Forgets the thread (it ended). Idempotent. */
  close(): void {
    this.#channel.close();
  }
}
