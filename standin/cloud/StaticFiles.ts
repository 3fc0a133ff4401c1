/**
 * Serves the built browser page (web/dist) read-only: a fixed set of file types, no directory listing,
 * no path outside the root.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
};

export class StaticFiles {
  readonly #root: string;

  constructor(root: string) {
    this.#root = path.resolve(root);
  }

  get root(): string {
    return this.#root;
  }

  /** Answers a GET/HEAD for a file under the root; returns false if the path names no servable file. */
  async serve(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
    const rel = pathname === '/' ? 'index.html' : decodeURIComponent(pathname).replace(/^\/+/, '');
    const file = path.resolve(this.#root, rel);
    if (!file.startsWith(this.#root + path.sep)) return false;
    const type = TYPES[path.extname(file)];
    if (!type) return false;
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      if (rel === 'index.html') {
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`the page is not built: run \`npm run build:web\` (looked in ${this.#root})\n`);
        return true;
      }
      return false;
    }
    res.writeHead(200, {
      'content-type': type,
      'content-length': body.byteLength,
      'cache-control': 'no-cache',
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
}
