// Bundles the browser page (web/) into web/dist with esbuild: no CDN, everything served by the cloud stand-in.
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}web/dist`;

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: ['web/main.ts'],
  outdir: 'web/dist',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome111', 'firefox115', 'safari16.4'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
await copyFile(`${root}web/index.html`, `${out}/index.html`);
process.stdout.write('build-web: web/dist ready\n');
