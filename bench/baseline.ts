/**
 * The baseline: the same terminal work done over a direct dockerode TTY exec, with no WebRTC, no worker
 * and no agent in between. It opens the exec exactly as the agent's PtyBridge does (create, start
 * hijacked, resize) and ends it the same way (the exec's process tree killed from the host, because
 * closing a TTY exec's stream leaves the shell running: moby#9098).
 */
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { execIdentity, killTree } from '../common/process-tree.js';
import { nowMs, Terminal } from './load/Terminal.js';

export interface DirectExecTimings {
  /** `POST /containers/{id}/exec` answered. */
  createdAt: number;
  /** Started, attached, resized: the point where the agent sends `pty_connected`. */
  readyAt: number;
}

export class DirectExec extends Terminal {
  readonly #exec: Docker.Exec;
  readonly #stream: Duplex;
  #closed: Promise<void> | undefined;

  private constructor(exec: Docker.Exec, stream: Duplex) {
    super();
    this.#exec = exec;
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => this.push(chunk));
    stream.on('error', () => undefined);
  }

  /** Opens `/bin/sh` on a PTY in `container`; `startMs` is when the caller began (the `nowMs()` clock). */
  static async open(
    docker: Docker,
    container: string,
  ): Promise<{ terminal: DirectExec; timings: DirectExecTimings }> {
    const exec = await docker.getContainer(container).exec({
      Cmd: ['/bin/sh'],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
      Env: ['TERM=xterm-256color'],
    });
    const createdAt = nowMs();
    const stream = await exec.start({ hijack: true, stdin: true, Tty: true });
    const terminal = new DirectExec(exec, stream);
    await exec.resize({ w: 80, h: 24 }).catch(() => undefined);
    return { terminal, timings: { createdAt, readyAt: nowMs() } };
  }

  protected write(text: string): void {
    if (!this.#stream.destroyed) this.#stream.write(text);
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const identity = await execIdentity(this.#exec);
    if (identity) killTree(identity);
    this.#stream.destroy();
  }
}
