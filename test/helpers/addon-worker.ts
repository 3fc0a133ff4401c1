/**
 * Runs in a worker thread of its own for the addon-copy test: plants a trap at the name the addon copy
 * used to get (`termgate-ndc-<pid>-<threadId>.node` in the temp dir), records how the copy is made, loads
 * the addon the agent's way and proves it works by producing an offer.
 */
import { mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parentPort, threadId, workerData } from 'node:worker_threads';

const { trap } = workerData as { trap: 'symlink' | 'file' | 'directory' };
const tmp = os.tmpdir();
const oldName = path.join(tmp, `termgate-ndc-${process.pid}-${threadId}.node`);
if (trap === 'symlink') symlinkSync(path.join(tmp, 'victim'), oldName);
else if (trap === 'file') writeFileSync(oldName, 'planted');
else mkdirSync(oldName);

// Record every copy: where it went, with which flags, and the mode of its directory at that moment.
const copies: Array<{ dest: string; flags: number | undefined; dirMode: number }> = [];
const copyFileSync = fs.copyFileSync;
fs.copyFileSync = (src: fs.PathLike, dest: fs.PathLike, flags?: number) => {
  copies.push({ dest: String(dest), flags, dirMode: statSync(path.dirname(String(dest))).mode & 0o777 });
  copyFileSync(src, dest, flags);
};
syncBuiltinESMExports();

const { getAddon, cleanupAddon } = await import('../../workers/native-addon.js');
const addon = getAddon();
const pc = new addon.PeerConnection('addon-test', { iceServers: [] });
const dc = pc.createDataChannel('terminal');
const sdp = await new Promise<string>((resolve) => {
  const local = pc.localDescription();
  if (local) resolve(local.sdp);
  else pc.onLocalDescription((s) => resolve(s));
});
dc.close();
pc.close();
cleanupAddon();
parentPort!.postMessage({
  copies,
  offer: sdp.startsWith('v=0'),
  constants: { excl: fs.constants.COPYFILE_EXCL },
});
