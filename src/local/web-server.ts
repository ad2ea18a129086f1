/**
 * A static file server on 127.0.0.1 for the browser client (`backchannel web`, `npm start`, the
 * browser tests): the files of one folder (dist/web) and a few documents made in memory (the
 * network's connection details as /network.json). GET and HEAD only; a path outside the folder,
 * a dot file or anything missing is 404. Guarded like the other HTTP servers (util/http-guard.ts).
 * Node only.
 */
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { extname, join, normalize, relative, resolve, sep } from 'node:path';
import { DEFAULT_HTTP_GATE, TIMEOUT_CHECK_INTERVAL_MS, guardHttpServer } from '../util/http-guard.js';

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

/** Files above this size are not served (the bundle is far smaller). */
const MAX_FILE = 16 * 1024 * 1024;

export interface WebServerOptions {
  /** The folder served at /. */
  readonly root: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Documents served from memory at these paths (e.g. '/network.json'); they take precedence over files. */
  readonly documents?: Readonly<Record<string, { readonly type: string; readonly body: string | Uint8Array }>>;
}

export interface WebServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1. */
export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const root = resolve(opts.root);
  const docs = opts.documents ?? {};
  const server: Server = createServer({ connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS }, (req, res) => {
    const headers = {
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // The page loads its own scripts and worker, and connects to the gateways' WebSockets.
      'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; worker-src 'self'; img-src 'self' data:; style-src 'self'",
      'referrer-policy': 'no-referrer',
    };
    const answer = (status: number, type: string, body: string | Uint8Array): void => {
      res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      answer(405, 'text/plain', 'method not allowed\n');
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      answer(400, 'text/plain', 'bad path\n');
      return;
    }
    const doc = docs[path];
    if (doc !== undefined) {
      answer(200, doc.type, doc.body);
      return;
    }
    if (path.endsWith('/')) path += 'index.html';
    const file = normalize(join(root, path));
    if (!file.startsWith(root + sep) || relative(root, file).split(sep).some((part) => part.startsWith('.'))) {
      answer(404, 'text/plain', 'not found\n');
      return;
    }
    void (async () => {
      try {
        const s = await stat(file);
        if (!s.isFile() || s.size > MAX_FILE) throw new Error('not a file');
        answer(200, TYPES[extname(file)] ?? 'application/octet-stream', await readFile(file));
      } catch {
        answer(404, 'text/plain', 'not found\n');
      }
    })();
  });
  guardHttpServer(server, DEFAULT_HTTP_GATE);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
