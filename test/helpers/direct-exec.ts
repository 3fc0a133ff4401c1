/**
 * The same work without termgate: a dockerode TTY exec driven directly, as the baseline that termgate's
 * numbers are reported against.
 */
import Docker from 'dockerode';
import type { Duplex } from 'node:stream';

export async function directTtyRun(
  container: string,
  command: string,
  endMarker: string,
  timeoutMs = 120_000,
) {
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
  let tail = '';
  try {
    const started = performance.now();
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('direct exec timed out')), timeoutMs);
      stream.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        tail = (tail + chunk.toString('latin1')).slice(-512);
        if (tail.includes(endMarker)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    stream.write(command);
    await done;
    return { seconds: (performance.now() - started) / 1000, output: Buffer.concat(chunks) };
  } finally {
    stream.write('exit\n');
    stream.destroy();
  }
}
