/**
 * node-datachannel for this worker thread.
 *
 * The addon keeps per-process static state, so two threads sharing one loaded copy crash the process
 * (HandleScope fatal error once peers connect). Each worker therefore dlopens its own copy of the native
 * file, under a path unique to the thread: a different path is a different dlopen instance.
 *
 * The agent runs as root and loads this file as code, so the copy must be one nobody else can have
 * planted or swapped: it goes into a fresh directory from `mkdtemp` (mode 0700, a name no one can guess
 * in advance), is created exclusively (COPYFILE_EXCL: an existing file or symlink there is an error,
 * never followed), and the directory is removed right after loading; the mapping stays valid.
 */
import { constants, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';
import type NodeDataChannel from 'node-datachannel';

export type Addon = Pick<typeof NodeDataChannel, 'PeerConnection' | 'cleanup' | 'initLogger'>;
export type PeerConnection = InstanceType<Addon['PeerConnection']>;
export type DataChannel = ReturnType<PeerConnection['createDataChannel']>;

const require = createRequire(import.meta.url);

function nativePackageName(): string {
  const libc = process.platform === 'linux' ? (isGlibc() ? '-gnu' : '-musl') : '';
  const suffix = process.platform === 'win32' ? '-msvc' : libc;
  return `@node-datachannel/${process.platform}-${process.arch}${suffix}`;
}

function isGlibc(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return Boolean(report?.header?.glibcVersionRuntime);
}

/** Resolves the prebuilt native file the way node-datachannel itself finds it. */
function nativeFilePath(): string {
  const fromPackage = createRequire(require.resolve('node-datachannel'));
  return fromPackage.resolve(nativePackageName());
}

function loadPrivateCopy(): Addon {
  const source = nativeFilePath();
  if (isMainThread) return require(source) as Addon;
  const dir = mkdtempSync(path.join(os.tmpdir(), `termgate-ndc-${threadId}-`));
  try {
    const copy = path.join(dir, 'node_datachannel.node');
    copyFileSync(source, copy, constants.COPYFILE_EXCL);
    return require(copy) as Addon;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let addon: Addon | undefined;

/** This thread's own instance of the addon, loaded on first use. */
export function getAddon(): Addon {
  addon ??= loadPrivateCopy();
  return addon;
}

/** Releases the addon's native threads; only once no peer is left. A no-op if it was never loaded. */
export function cleanupAddon(): void {
  addon?.cleanup();
}
