/**
 * node-datachannel for this worker thread.
 *
 * The addon keeps per-process static state, so two threads sharing one loaded copy crash the process
 * (HandleScope fatal error once peers connect). Each worker therefore dlopens its own copy of the native
 * file, under a path unique to the thread: a different path is a different dlopen instance. The copy is
 * unlinked right after loading; the mapping stays valid.
 */
import { copyFileSync, unlinkSync } from 'node:fs';
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
  const copy = path.join(os.tmpdir(), `termgate-ndc-${process.pid}-${threadId}.node`);
  copyFileSync(source, copy);
  try {
    return require(copy) as Addon;
  } finally {
    unlinkSync(copy);
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
