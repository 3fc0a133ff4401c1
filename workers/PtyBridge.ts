/**
 * A shell in a container behind a `docker exec` PTY: bytes in, bytes out, resize, and an end that really
 * ends the shell. Flow control both ways: `pause()`/`resume()` stop reading output (TCP backpressure then
 * reaches the engine and the PTY), and `write()` refuses input once too much waits for the exec's stdin.
 * Output is read in few, large pieces while it streams, and at once after input (OutputFlow); after a
 * Ctrl-C, what the engine still holds from before it is flushed as the TTY flushes its own queue
 * (InterruptFlush).
 *
 * The exec goes to the container's full id (never its name, which may have been given to another
 * container since it was authorized), every engine call has a deadline, and the shell is tagged with its
 * session so it can be found in /proc even when the engine cannot say where it is.
 */
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { withDockerTimeout } from '../common/docker-timeout.js';
import { ErrorCodes, TermgateError, type ErrorData } from '../common/errors.js';
import type { ShellTags } from '../common/protocol/worker-messages.js';
import { SafeEmitter } from '../common/SafeEmitter.js';
import { DEFAULT_OUTPUT_FLOW, OutputFlow, type OutputSource } from './OutputFlow.js';
import { SocketReadPacer } from './SocketReadPacer.js';
import { exitReason, type PtyExitReason } from './container-liveness.js';
import {
  containerProcsFile,
  execTags,
  findTagged,
  listProcs,
  TAG_INSTANCE,
  TAG_SESSION,
} from '../common/process-tags.js';
import { endTree, locateExec, type ExecProcess } from '../common/process-tree.js';

export interface PtyOptions {
  /** The container's name, for messages. */
  container: string;
  /** The full id the name resolved to when it was authorized. */
  containerId: string;
  shell: string[];
  cols: number;
  rows: number;
  /** Input bytes allowed to wait for the exec's stdin before `write()` refuses more. */
  maxPendingInputBytes: number;
  dockerTimeoutMs: number;
  tags: ShellTags;
  /** After an interrupt key, drop the output the engine still holds from before it (`--flush-on-interrupt`). */
  flushOnInterrupt: boolean;
}

export interface PtyEvents {
  data: [chunk: Buffer];
  /**
   * The shell ended or the stream broke, and why: the shell exited, or its container stopped (asked of
   * the engine once the stream ended). `close()` is still owed by the owner.
   */
  exit: [reason: PtyExitReason];
  /** Output written before an interrupt key was dropped, as the TTY drops its own queue. */
  flushed: [bytes: number];
}

/** How a shell's end went; `error` is set when something of it may be left. */
export interface PtyCloseOutcome {
  error?: ErrorData;
}

export class PtyBridge extends SafeEmitter<PtyEvents> {
  readonly container: string;
  readonly #docker: Docker;
  readonly #exec: Docker.Exec;
  readonly #stream: Duplex;
  readonly #options: PtyOptions;
  /** When the exec was asked for: a container (re)started after it has stopped under this shell. */
  readonly #openedAtMs: number;
  readonly #process: Promise<ExecProcess>;
  /** Lists the container's processes (see process-tags.ts), read once the shell was found. */
  #procsFile: string | undefined;
  /** The stream ended on its own: the shell is gone. */
  #ended = false;
  #closing = false;
  #reading = false;
  readonly #flow: OutputFlow;
  readonly #pacer: SocketReadPacer;
  #closed: Promise<PtyCloseOutcome> | undefined;

  private constructor(
    docker: Docker,
    exec: Docker.Exec,
    stream: Duplex,
    options: PtyOptions,
    openedAtMs: number,
  ) {
    super();
    this.container = options.container;
    this.#docker = docker;
    this.#exec = exec;
    this.#openedAtMs = openedAtMs;
    this.#stream = stream;
    this.#options = options;
    this.#pacer = new SocketReadPacer(stream);
    const source: OutputSource = {
      read: () => stream.read() as Buffer | null,
      readableHighWaterMark: stream.readableHighWaterMark,
      pace: (streaming) => (this.#pacer.streaming = streaming),
    };
    const sink = {
      deliver: (chunk: Buffer) => this.safeEmit('data', chunk),
      flushed: (bytes: number) => this.safeEmit('flushed', bytes),
    };
    const flowOptions = options.flushOnInterrupt
      ? DEFAULT_OUTPUT_FLOW
      : { ...DEFAULT_OUTPUT_FLOW, interrupt: undefined };
    this.#flow = new OutputFlow(source, sink, flowOptions);
    stream.once('end', () => this.#onExit());
    stream.once('close', () => this.#onExit());
    stream.on('error', () => this.#onExit());
    const inspectable = {
      inspect: () =>
        withDockerTimeout(options.dockerTimeoutMs, 'inspecting the shell', (abortSignal) =>
          exec.inspect({ abortSignal }),
        ),
    };
    this.#process = locateExec(inspectable, () => this.#ended).then((found) => {
      if (found.kind === 'visible') this.#procsFile = containerProcsFile(found.identity.pid);
      return found;
    });
  }

  /** Starts the shell in the container, attached to a PTY of the given size. */
  static async open(docker: Docker, options: PtyOptions): Promise<PtyBridge> {
    const { dockerTimeoutMs: timeoutMs, container: name } = options;
    let exec: Docker.Exec | undefined;
    let stream: Duplex;
    const openedAtMs = Date.now();
    try {
      exec = await withDockerTimeout(timeoutMs, `creating a shell in "${name}"`, (abortSignal) =>
        docker.getContainer(options.containerId).exec({
          Cmd: options.shell,
          AttachStdin: true,
          AttachStdout: true,
          AttachStderr: true,
          Tty: true,
          // No COLUMNS/LINES: shells prefer them to the PTY's real size, so a resize would never show.
          Env: [
            'TERM=xterm-256color',
            ...execTags(options.tags.session, options.tags.agentId, options.tags.instance),
          ],
          abortSignal,
        }),
      );
      const created = exec;
      stream = await withDockerTimeout(timeoutMs, `starting a shell in "${name}"`, (abortSignal) =>
        created.start({ hijack: true, stdin: true, Tty: true, abortSignal }),
      );
    } catch (err) {
      // A start that timed out may still have started the shell: find it by its tags and end it.
      if (exec) void PtyBridge.endTagged(options.tags);
      throw dockerError(err, name);
    }
    const bridge = new PtyBridge(docker, exec, stream, options, openedAtMs);
    await bridge.resize(options.cols, options.rows).catch(() => undefined);
    return bridge;
  }

  /**
   * Ends every process tagged with the session (and run): those the engine could not place, and those
   * that left the shell's tree (a daemon, or children of a subshell that exited, adopted by the
   * container's init). Looks among the container's processes when `procsFile` lists them, else in /proc.
   */
  static async endTagged(tags: ShellTags, procsFile?: string): Promise<PtyCloseOutcome & { found: number }> {
    const tagged = findTagged(
      tags.agentId,
      (t) => t.get(TAG_SESSION) === tags.session && t.get(TAG_INSTANCE) === tags.instance,
      procsFile ? listProcs(procsFile) : undefined,
    );
    const outcomes = await Promise.all(tagged.map((p) => endTree(p.identity)));
    const outcome = outcomeOf(
      outcomes.every((o) => o.gone),
      outcomes.flatMap((o) => o.failures),
    );
    return { ...outcome, found: tagged.length };
  }

  /** False once the shell ended or `close()` began. */
  get alive(): boolean {
    return !this.#ended && !this.#closing;
  }

  /** Queues input for the shell; false when too much input already waits (the caller tells the browser). */
  write(data: string | Uint8Array): boolean {
    if (!this.alive) return false;
    if (this.#stream.writableLength > this.#options.maxPendingInputBytes) return false;
    this.#stream.write(data);
    this.#flow.inputWritten();
    if (holdsInterrupt(data)) this.#flow.interrupted();
    return true;
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.alive) return;
    try {
      await withDockerTimeout(this.#options.dockerTimeoutMs, 'resizing the terminal', (abortSignal) =>
        this.#exec.resize({ w: cols, h: rows, abortSignal }),
      );
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
    // Paused mode: OutputFlow decides when to take what is buffered (see there).
    this.#stream.on('readable', () => this.#flow.readable());
    this.#flow.start();
  }

  /** Stops reading output: the channel is congested. */
  pause(): void {
    this.#flow.congest();
  }

  /** Reads output again once the channel drained (not before `readOutput()`: nobody would read it). */
  resume(): void {
    this.#flow.relieve();
  }

  /** Ends the shell and everything it started, then the stream. Idempotent; resolves when done. */
  close(): Promise<PtyCloseOutcome> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<PtyCloseOutcome> {
    this.#closing = true;
    this.#flow.close();
    this.#pacer.close();
    let outcome: PtyCloseOutcome;
    try {
      outcome = await this.#endShell();
    } finally {
      this.#stream.destroy();
      this.removeAllListeners();
    }
    return outcome;
  }

  async #endShell(): Promise<PtyCloseOutcome> {
    // The engine is asked where the shell runs; if it cannot say in time, the tags can.
    let timer: NodeJS.Timeout | undefined;
    const located = await Promise.race([
      this.#process,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), this.#options.dockerTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (located?.kind === 'gone') return {};
    if (located?.kind === 'visible') {
      const tree = await endTree(located.identity);
      // What left the tree before it was frozen still carries the session's tags.
      const strays = await PtyBridge.endTagged(this.#options.tags, this.#procsFile);
      return outcomeOf(tree.gone && strays.error === undefined, [
        ...tree.failures,
        ...(strays.error ? [strays.error.message] : []),
      ]);
    }
    const { found, ...outcome } = await PtyBridge.endTagged(this.#options.tags);
    if (located?.kind === 'invisible' && found === 0) {
      return {
        error: {
          code: ErrorCodes.SHELL_CLEANUP_FAILED,
          message:
            `the shell's process (${located.pid} on the engine's host) is not visible to the agent: ` +
            'it must share the host PID namespace (--pid=host) to end shells',
        },
      };
    }
    return outcome;
  }

  #onExit(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#flow.ended();
    if (this.#closing) return;
    const { containerId, dockerTimeoutMs } = this.#options;
    void exitReason(this.#docker, containerId, this.#openedAtMs, dockerTimeoutMs).then((reason) => {
      if (!this.#closing) this.safeEmit('exit', reason);
    });
  }
}

/** The TTY's default interrupt character (VINTR), Ctrl-C. */
const INTERRUPT = 0x03;

function holdsInterrupt(data: string | Uint8Array): boolean {
  return typeof data === 'string' ? data.includes('\x03') : data.includes(INTERRUPT);
}

function outcomeOf(gone: boolean, failures: string[]): PtyCloseOutcome {
  if (gone && failures.length === 0) return {};
  return {
    error: {
      code: ErrorCodes.SHELL_CLEANUP_FAILED,
      message: gone
        ? `the shell ended, but signalling part of it failed (${failures.join('; ')})`
        : `the shell could not be ended: ${failures.join('; ') || 'its processes outlived every SIGKILL'}`,
    },
  };
}

function dockerError(err: unknown, container: string): TermgateError {
  if (err instanceof TermgateError) return err;
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
