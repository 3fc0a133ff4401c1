/**
 * The same work without termgate: a dockerode TTY exec driven directly, as the baseline that termgate's
 * numbers are reported against. Bounded by progress like the work it is compared with: it fails only
 * when no output has arrived for `stallMs`.
 */
import Docker from 'dockerode';
import type { Duplex } from 'node:stream';
import { untilProgress } from './progress.js';

export async function directTtyRun(container: string, command: string, endMarker: string, stallMs = 30_000) {
  const docker = new Docker({ socketPath: process.env.TERMGATE_DOCKER_SOCKET ?? '/var/run/docker.sock' });
  const exec = await docker.getContainer(container).exec({
    Cmd: ['/bin/sh'],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: true,
  });
  const stream: Duplex = await exec.start({ hijack: true, stdin: true, Tty: true });
  const chunks: Buffer[] = [];
  let bytes = 0;
  let tail = '';
  let lastDataAt = 0;
  let failure: Error | undefined;
  stream.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    bytes += chunk.length;
    tail = (tail + chunk.toString('latin1')).slice(-512);
    lastDataAt = performance.now();
  });
  stream.on('error', (err: Error) => (failure = err));
  try {
    const started = performance.now();
    stream.write(command);
    await untilProgress({
      what: 'the direct exec output',
      stallMs,
      progress: () => bytes,
      done: () => {
        if (failure) throw failure;
        return tail.includes(endMarker);
      },
    });
    // Timed to the last chunk, not to the poll that noticed the marker.
    return { seconds: (lastDataAt - started) / 1000, output: Buffer.concat(chunks) };
  } finally {
    stream.write('exit\n');
    stream.destroy();
  }
}
