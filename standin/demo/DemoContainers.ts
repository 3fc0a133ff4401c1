/**
 * The demo's vPLC containers: `vplc-demo-<run>-1..N` from the local busybox image (`--init --network
 * none`), labelled with this run's id. The demo never serves a container it did not create (on a real
 * host the other `vplc-*` containers are the PLCs), and on close it removes exactly the ones it created,
 * by the ids it recorded.
 */
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { OWNER_LABEL, ownershipLabels, RUN_LABEL } from '../ownership.js';

export interface DemoContainersOptions {
  docker: Dockerode;
  logger: Logger;
  /** This run's id: the value of the `io.termgate.run` label of every container created. */
  runId: string;
  /** Image to run. Default vplc-test:latest (built by scripts/docker-up.sh). */
  image?: string;
  /** How many to create. Default 3. */
  count?: number;
  /** Names are `<prefix>1..N`. Default `vplc-demo-<first 6 characters of the run id>-`. */
  namePrefix?: string;
}

const NAME_PREFIX = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,200}$/;

export class DemoContainers {
  readonly #docker: Dockerode;
  readonly #log: Logger;
  readonly #runId: string;
  readonly #image: string;
  readonly #count: number;
  readonly #prefix: string;
  /** Name and id of each container this object created, in creation order. */
  readonly #created: Array<{ name: string; id: string }> = [];
  /** Names of created containers whose removal failed. */
  readonly #notRemoved: string[] = [];
  #closing: Promise<void> | undefined;

  constructor(options: DemoContainersOptions) {
    this.#docker = options.docker;
    this.#log = options.logger;
    this.#runId = options.runId;
    this.#image = options.image ?? 'vplc-test:latest';
    this.#count = options.count ?? 3;
    this.#prefix = options.namePrefix ?? `vplc-demo-${this.#runId.slice(0, 6)}-`;
    if (!/^[a-z0-9]{6,64}$/.test(this.#runId)) {
      throw new TypeError(`options.runId must be 6..64 lowercase letters or digits, got ${this.#runId}`);
    }
    if (!NAME_PREFIX.test(this.#prefix)) {
      throw new TypeError(`options.namePrefix must be a valid container name start, got ${this.#prefix}`);
    }
    if (!Number.isInteger(this.#count) || this.#count < 1 || this.#count > 50) {
      throw new TypeError(`options.count must be an integer in 1..50, got ${String(options.count)}`);
    }
  }

  /** The label (`key=value`) every container of this run carries: what the demo's agent serves. */
  get label(): string {
    return `${RUN_LABEL}=${this.#runId}`;
  }

  /** Names of the containers this object created. */
  get created(): readonly string[] {
    return this.#created.map((c) => c.name);
  }

  /** After `close()`: the containers it could not remove (the log says why). */
  get notRemoved(): readonly string[] {
    return this.#notRemoved;
  }

  /** Creates and starts this run's containers; returns their names. */
  async create(): Promise<string[]> {
    if (this.#closing) throw new Error('DemoContainers is closed');
    try {
      await this.#docker.getImage(this.#image).inspect();
    } catch {
      throw new Error(`image ${this.#image} is missing: run \`bash scripts/docker-up.sh\` first`);
    }
    await this.#reportLeftovers();
    for (let i = 1; i <= this.#count; i++) {
      const name = `${this.#prefix}${i}`;
      let container: Dockerode.Container;
      try {
        container = await this.#docker.createContainer({
          name,
          Image: this.#image,
          Cmd: ['/bin/sleep', '1000000'],
          Labels: ownershipLabels(this.#runId, 'demo'),
          HostConfig: { Init: true, NetworkMode: 'none' },
        });
      } catch (err) {
        // A name already taken is someone else's container: never ours to replace.
        throw new Error(`could not create demo container ${name}: ${(err as Error).message}`);
      }
      this.#created.push({ name, id: container.id });
      await container.start();
    }
    this.#log.info({ containers: this.created, label: this.label }, 'created demo vPLC containers');
    return [...this.created];
  }

  /** Removes the containers this object created, by id. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(
        this.#created.map(async ({ name, id }) => {
          try {
            await this.#docker.getContainer(id).remove({ force: true });
          } catch (err) {
            // Already gone is what close() wants; anything else is reported.
            if ((err as { statusCode?: number }).statusCode === 404) return;
            this.#notRemoved.push(name);
            this.#log.warn({ container: name, err: String(err) }, 'could not remove demo container');
          }
        }),
      );
      if (this.#created.length) this.#log.info({ containers: this.created }, 'removed demo vPLC containers');
    })();
    return this.#closing;
  }

  /** Says so when an earlier demo did not clean up (it was killed); those are not this run's to remove. */
  async #reportLeftovers(): Promise<void> {
    const earlier = await this.#docker.listContainers({
      all: true,
      filters: { label: [`${OWNER_LABEL}=demo`] },
    });
    if (earlier.length === 0) return;
    const names = earlier.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ''));
    this.#log.warn(
      { containers: names },
      'containers of an earlier demo run are left (it did not stop cleanly); this run leaves them alone',
    );
  }
}
