/**
 * The demo's vPLC containers: if no `vplc-*` container is running, creates `vplc-demo-1..N` from the local
 * busybox image (`--init --network none`, labelled `termgate.demo=1`) and removes exactly those on close.
 */
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';

export const DEMO_LABEL = 'termgate.demo';

export interface DemoContainersOptions {
  docker: Dockerode;
  logger: Logger;
  /** Image to run. Default vplc-test:latest (built by scripts/docker-up.sh). */
  image?: string;
  /** How many to create when none exist. Default 3. */
  count?: number;
  /** Create the demo containers even if vPLC containers run. Default false. */
  alwaysCreate?: boolean;
  /** Names are `<prefix>1..N`. Default `vplc-demo-`. */
  namePrefix?: string;
}

export class DemoContainers {
  readonly #docker: Dockerode;
  readonly #log: Logger;
  readonly #image: string;
  readonly #count: number;
  readonly #alwaysCreate: boolean;
  readonly #prefix: string;
  readonly #created: string[] = [];
  #closing: Promise<void> | undefined;

  constructor(options: DemoContainersOptions) {
    this.#docker = options.docker;
    this.#log = options.logger;
    this.#image = options.image ?? 'vplc-test:latest';
    this.#count = options.count ?? 3;
    this.#alwaysCreate = options.alwaysCreate ?? false;
    this.#prefix = options.namePrefix ?? 'vplc-demo-';
    if (!/^vplc-[a-zA-Z0-9_.-]*$/.test(this.#prefix)) {
      throw new TypeError(
        `options.namePrefix must start with "vplc-" and be a valid name, got ${this.#prefix}`,
      );
    }
    if (!Number.isInteger(this.#count) || this.#count < 1 || this.#count > 50) {
      throw new TypeError(`options.count must be an integer in 1..50, got ${String(options.count)}`);
    }
  }

  /** Names of the containers this object created. */
  get created(): readonly string[] {
    return this.#created;
  }

  /** Returns the names of the running vPLC containers, creating the demo ones if there are none. */
  async ensure(): Promise<string[]> {
    if (this.#closing) throw new Error('DemoContainers is closed');
    const all = await this.#docker.listContainers({ all: true });
    const name = (c: Dockerode.ContainerInfo) => (c.Names[0] ?? '').replace(/^\//, '');
    const running = all.filter((c) => c.State === 'running' && name(c).startsWith('vplc-')).map(name);
    if (running.length > 0 && !this.#alwaysCreate) {
      this.#log.info({ containers: running }, 'using the running vPLC containers');
      return running.sort();
    }
    try {
      await this.#docker.getImage(this.#image).inspect();
    } catch {
      throw new Error(`image ${this.#image} is missing: run \`bash scripts/docker-up.sh\` first`);
    }
    // A container of ours left by an earlier demo that did not stop cleanly is replaced; any other
    // container with the name is not ours to touch.
    for (let i = 1; i <= this.#count; i++) {
      const taken = all.find((c) => name(c) === `${this.#prefix}${i}`);
      if (!taken) continue;
      if (taken.Labels[DEMO_LABEL] !== '1')
        throw new Error(`a container named ${name(taken)} exists and is not a demo one`);
      await this.#docker.getContainer(taken.Id).remove({ force: true });
    }
    for (let i = 1; i <= this.#count; i++) {
      const containerName = `${this.#prefix}${i}`;
      const container = await this.#docker.createContainer({
        name: containerName,
        Image: this.#image,
        Cmd: ['/bin/sleep', '1000000'],
        Labels: { [DEMO_LABEL]: '1' },
        HostConfig: { Init: true, NetworkMode: 'none' },
      });
      this.#created.push(containerName);
      await container.start();
    }
    this.#log.info({ containers: this.#created }, 'created demo vPLC containers');
    return [...this.#created];
  }

  /** Removes the containers this object created. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(
        this.#created.map(async (n) => {
          try {
            await this.#docker.getContainer(n).remove({ force: true });
          } catch (err) {
            this.#log.warn({ container: n, err: String(err) }, 'could not remove demo container');
          }
        }),
      );
      if (this.#created.length) this.#log.info({ containers: this.#created }, 'removed demo vPLC containers');
    })();
    return this.#closing;
  }
}
