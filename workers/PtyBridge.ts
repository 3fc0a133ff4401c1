/**
 * A shell in a container behind a `docker exec` PTY: bytes in, bytes out, resize, and an end that really
 * ends the shell. Flow control both ways: `pause()`/`resume()` stop reading output (TCP backpressure then
 * reaches the engine and the PTY), and `write()` refuses input once too much waits for the exec's stdin.
 */
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { ErrorCodes, TermgateError } from '../src/errors.js';
import { SafeEmitter } from '../src/SafeEmitter.js';
import { execIdentity, killTree, type ProcessIdentity } from './process-tree.js';

export interface PtyOptions {
  container: string;
  shell: string[];
  cols: number;
  rows: number;
  /** Input bytes allowed to wait for the exec's stdin before `write()` refuses more. */
  maxPendingInputBytes: number;
}

export interface PtyEvents {
  data: [chunk: Buffer];
  /** The shell ended or the stream broke; `close()` is still owed by the owner. */
  exit: [reason: string];
}

export class PtyBridge extends SafeEmitter<PtyEvents> {
  readonly container: string;
  readonly #exec: Docker.Exec;
  readonly #stream: Duplex;
  readonly #maxPending: number;
  readonly #identity: Promise<ProcessIdentity | undefined>;
  /** The stream ended on its own: the shell is gone. */
  #ended = false;
  #closing = false;
  #reading = false;
  #closed: Promise<void> | undefined;

  private constructor(container: string, exec: Docker.Exec, stream: Duplex, maxPending: number) {
    super();
    this.container = container;
    this.#exec = exec;
    this.#stream = stream;
    this.#maxPending = maxPending;
    stream.once('end', () => this.#onExit('the shell exited'));
    stream.once('close', () => this.#onExit('the exec stream closed'));
    stream.on('error', (err) => this.#onExit(`the exec stream failed: ${err.message}`));
    this.#identity = execIdentity(exec, () => this.#ended);
  }

  /** Starts the shell in the container, attached to a PTY of the given size. */
  static async open(docker: Docker, options: PtyOptions): Promise<PtyBridge> {
    const container = docker.getContainer(options.container);
    let exec: Docker.Exec;
    let stream: Duplex;
    try {
      exec = await container.exec({
        Cmd: options.shell,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: true,
        // No COLUMNS/LINES: shells prefer them to the PTY's real size, so a resize would never show.
        Env: ['TERM=xterm-256color'],
      });
      stream = await exec.start({ hijack: true, stdin: true, Tty: true });
    } catch (err) {
      throw dockerError(err, options.container);
    }
    const bridge = new PtyBridge(options.container, exec, stream, options.maxPendingInputBytes);
    await bridge.resize(options.cols, options.rows).catch(() => undefined);
    return bridge;
  }

  /** False once the shell ended or `close()` began. */
  get alive(): boolean {
    return !this.#ended && !this.#closing;
  }

  /** Queues input for the shell; false when too much input already waits (the caller tells the browser). */
  write(data: string | Uint8Array): boolean {
    if (!this.alive) return false;
    if (this.#stream.writableLength > this.#maxPending) return false;
    this.#stream.write(data);
    return true;
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.alive) return;
    try {
      await this.#exec.resize({ w: cols, h: rows });
    } catch (err) {
      // A resize racing the shell's start or end is harmless; anything else is worth telling the browser.
      if (this.alive) throw dockerError(err, this.container);
    }
  }

  /**
   * Starts reading the shell's output. Until then the exec stream holds it (the engine and the kernel's
   * socket buffer keep the first prompt), so a PTY can be opened before anyone is there to read it.
   */
  readOutput(): void {
    if (this.#reading) return;
    this.#reading = true;
    this.#stream.on('data', (chunk: Buffer) => this.safeEmit('data', chunk));
  }

  pause(): void {
    this.#stream.pause();
  }

  resume(): void {
    // Before `readOutput()` a resume would start the flow with no reader and drop the first output.
    if (this.#reading) this.#stream.resume();
  }

  /** Ends the shell and everything it started, then the stream. Idempotent; resolves when done. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    const identity = await this.#identity;
    if (identity) killTree(identity);
    this.#stream.destroy();
    this.removeAllListeners();
  }

  #onExit(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#closing) this.safeEmit('exit', reason);
  }
}

function dockerError(err: unknown, container: string): TermgateError {
  const status = (err as { statusCode?: number }).statusCode;
  if (status === 404)
    return new TermgateError(ErrorCodes.CONTAINER_NOT_FOUND, `container "${container}" does not exist`);
  if (status === 409)
    return new TermgateError(ErrorCodes.CONTAINER_NOT_RUNNING, `container "${container}" is not running`);
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES') {
    return new TermgateError(ErrorCodes.DOCKER_UNAVAILABLE, `the Docker engine is not reachable (${code})`);
  }
  return new TermgateError(
    ErrorCodes.PTY_FAILED,
    `docker exec into "${container}" failed: ${(err as Error).message}`,
  );
}
