/**
 * The browser scenario's process inside its private network namespace (bench/scenarios/browser.ts starts
 * it under `unshare -n`): runs the scenario when asked over IPC and reports its progress; if the bench
 * that started it goes away, tears its harness down and exits.
 */
import { closeAllHarnesses } from './harness.js';
import { IpcChannel } from './ipc.js';
import { runHere, type BrowserOptions } from './scenarios/browser.js';

const ipc = new IpcChannel(process);
ipc.handle<BrowserOptions, unknown>('run', (options) => runHere(options, () => ipc.notify('progress', {})));
process.once('disconnect', () => {
  void closeAllHarnesses().finally(() => process.exit(0));
});
ipc.notify('up', {});
