/**
 * Which containers a session may reach. Deny by default: a container is reachable only if its exact name
 * matches one of the configured globs (when any are set) and it carries the configured label (when one is
 * set). The same check guards a session's `device_id` and every later `connect_pty`.
 */
import type Docker from 'dockerode';
import picomatch from 'picomatch';
import { ErrorCodes, TermgateError } from '../../common/errors.js';
import type { DeviceInfo } from '../../common/protocol/signaling.js';
import { withDockerTimeout } from '../../common/docker-timeout.js';

export interface ContainerSelector {
  globs: string[];
  label: { key: string; value: string | undefined } | undefined;
}

/** A container the policy allowed: its name, and the full id the name resolved to at that moment. */
export interface AuthorizedContainer {
  name: string;
  /** Execs go to this id, never to the name: a container recreated under the name is a different one. */
  id: string;
}

export interface ContainerAccessOptions {
  /** How long one Docker call may take; default 10 s. */
  dockerTimeoutMs?: number;
}

/** Docker's own rule for container names; anything else never reaches the Docker API. */
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

export class ContainerAccess {
  readonly #docker: Docker;
  readonly #selector: ContainerSelector;
  readonly #matchers: Array<(name: string) => boolean>;
  readonly #timeoutMs: number;

  constructor(docker: Docker, selector: ContainerSelector, options: ContainerAccessOptions = {}) {
    this.#docker = docker;
    this.#selector = selector;
    this.#timeoutMs = options.dockerTimeoutMs ?? 10_000;
    // Globs match the whole name literally: no braces, no extglobs, dots are ordinary characters.
    this.#matchers = selector.globs.map((g) =>
      picomatch(g, { dot: true, nobrace: true, noextglob: true, nonegate: true }),
    );
  }

  /** True if the name passes the glob part of the policy (no Docker call). */
  nameAllowed(name: string): boolean {
    if (!CONTAINER_NAME.test(name)) return false;
    return this.#matchers.length === 0 || this.#matchers.some((match) => match(name));
  }

  /** Throws TG_ERR_CONTAINER_NOT_ALLOWED unless the name passes the glob part of the policy. */
  checkName(name: string): void {
    if (!this.nameAllowed(name)) throw notAllowed(name);
  }

  /** Resolves a requested container to its id, or throws a TermgateError saying why it may not be reached. */
  async authorize(name: string): Promise<AuthorizedContainer> {
    this.checkName(name);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await withDockerTimeout(this.#timeoutMs, `inspecting "${name}"`, (abortSignal) =>
        this.#docker.getContainer(name).inspect({ abortSignal }),
      );
    } catch (err) {
      throw inspectError(err, name);
    }
    // An id or id prefix also resolves in Docker; only the exact name the policy checked counts.
    if (info.Name !== `/${name}`) throw notAllowed(name);
    if (!this.#labelMatches(info.Config.Labels)) throw notAllowed(name);
    if (!info.State.Running) {
      throw new TermgateError(
        ErrorCodes.CONTAINER_NOT_RUNNING,
        `container "${name}" is not running (${info.State.Status})`,
      );
    }
    return { name, id: info.Id };
  }

  /** The host PID of a running container's first process, for the PID namespace check (0 if none). */
  async hostPid(id: string): Promise<number> {
    const info = await withDockerTimeout(this.#timeoutMs, 'inspecting a container', (abortSignal) =>
      this.#docker.getContainer(id).inspect({ abortSignal }),
    );
    return info.State.Running ? info.State.Pid : 0;
  }

  /** The containers this agent serves right now. */
  async listDevices(): Promise<DeviceInfo[]> {
    const { label } = this.#selector;
    const filters = label
      ? { label: [label.value === undefined ? label.key : `${label.key}=${label.value}`] }
      : undefined;
    let list: Docker.ContainerInfo[];
    try {
      list = await withDockerTimeout(this.#timeoutMs, 'listing containers', (abortSignal) =>
        this.#docker.listContainers({ all: true, filters, abortSignal }),
      );
    } catch (err) {
      throw inspectError(err, '*');
    }
    return list
      .map((c) => ({ name: (c.Names[0] ?? '').replace(/^\//, ''), state: c.State }))
      .filter((d) => this.nameAllowed(d.name))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  #labelMatches(labels: Record<string, string> | null | undefined): boolean {
    const { label } = this.#selector;
    if (!label) return true;
    const value = labels?.[label.key];
    return value !== undefined && (label.value === undefined || value === label.value);
  }
}

function notAllowed(name: string): TermgateError {
  const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
  return new TermgateError(
    ErrorCodes.CONTAINER_NOT_ALLOWED,
    `container ${shown} is not allowed by this agent's selector`,
  );
}

function inspectError(err: unknown, name: string): TermgateError {
  if (err instanceof TermgateError) return err;
  const status = (err as { statusCode?: number }).statusCode;
  if (status === 404)
    return new TermgateError(ErrorCodes.CONTAINER_NOT_FOUND, `container "${name}" does not exist`);
  const code = (err as { code?: string }).code ?? String(status ?? 'unknown');
  return new TermgateError(ErrorCodes.DOCKER_UNAVAILABLE, `the Docker engine did not answer (${code})`);
}
