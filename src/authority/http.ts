/**
 * The authority's HTTP plumbing (node:http): routing by a table the caller gives, bodies read
 * within a per-route limit (413 beyond, before reading on a declared length), JSON errors
 * `{"error": CODE}`, and no input that can crash the process: a handler that throws answers 500.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../ops/log.js';
import { listenOn } from '../util/listen.js';

/** Bounds on a slow or idle client, from Node's defaults for a public server scaled down: requests here are small. */
const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** A request with its whole body. */
export interface ApiRequest {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  readonly body: Uint8Array;
}

/** A response: bytes, or a value sent as JSON. */
export type ApiResponse =
  | { readonly status: number; readonly bytes: Uint8Array; readonly json?: undefined }
  | { readonly status: number; readonly json: unknown; readonly bytes?: undefined };

/** What the server does with a method and path before reading any body. */
export type RouteDecision = { readonly bodyLimit: number } | { readonly status: 404 | 405; readonly error: string };

export interface ApiServerInit {
  readonly host: string;
  readonly port: number;
  /** Decides from the method and path alone: the body limit of a known route, or an error status. */
  readonly route: (method: string, path: string) => RouteDecision;
  readonly handle: (req: ApiRequest) => Promise<ApiResponse> | ApiResponse;
  /** Told of each body refused for its size (413), for metrics. */
  readonly onTooLarge?: (path: string) => void;
  readonly log: Logger;
}

export interface ApiServer {
  readonly port: number;
  /** "http://host:port" (IPv6 hosts in brackets). */
  readonly url: string;
  close(): Promise<void>;
}

/** A JSON error response. */
export function jsonError(status: number, code: string): ApiResponse {
  return { status, json: { error: code } };
}

class TooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      total += chunk.length;
      if (total > limit) {
        failed = true;
        reject(new TooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(new Uint8Array(Buffer.concat(chunks, total)));
    });
    req.on('error', (err) => {
      if (!failed) {
        failed = true;
        reject(err);
      }
    });
  });
}

function send(res: ServerResponse, r: ApiResponse, close = false): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | number> = { 'cache-control': 'no-store' };
  if (close) headers.connection = 'close';
  let body: Uint8Array;
  if (r.bytes !== undefined) {
    body = r.bytes;
    headers['content-type'] = 'application/octet-stream';
  } else {
    body = new TextEncoder().encode(JSON.stringify(r.json));
    headers['content-type'] = 'application/json';
  }
  headers['content-length'] = body.length;
  res.writeHead(r.status, headers);
  res.end(body);
}

/**
 * Starts an HTTP server on `host:port` (0 chooses a port).
 * @throws {BackchannelError} ERR_SERVER_LISTEN when the address cannot be bound.
 */
export async function startApiServer(init: ApiServerInit): Promise<ApiServer> {
  const { log } = init;
  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const rawPath = req.url ?? '/';
    const q = rawPath.indexOf('?');
    const path = q < 0 ? rawPath : rawPath.slice(0, q);
    const decision = init.route(method, path);
    if ('status' in decision) {
      // Unread bodies on an error path: close the connection rather than drain them.
      send(res, jsonError(decision.status, decision.error), method !== 'GET' && method !== 'HEAD');
      return;
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > decision.bodyLimit) {
      init.onTooLarge?.(path);
      send(res, jsonError(413, 'ERR_TOO_LARGE'), true);
      return;
    }
    let body: Uint8Array;
    try {
      body = await readBody(req, decision.bodyLimit);
    } catch (err) {
      if (err instanceof TooLarge) {
        init.onTooLarge?.(path);
        send(res, jsonError(413, 'ERR_TOO_LARGE'), true);
      } else {
        res.destroy();
      }
      return;
    }
    let out: ApiResponse;
    try {
      out = await init.handle({ method, path, body });
    } catch {
      log.error('request handler failed', { path: path.split('/').slice(0, 3).join('/') });
      out = jsonError(500, 'ERR_SERVER');
    }
    send(res, out);
  };

  const server: Server = createServer((req, res) => {
    onRequest(req, res).catch(() => {
      if (!res.headersSent) send(res, jsonError(500, 'ERR_SERVER'), true);
      else res.destroy();
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.on('clientError', (_err, socket) => {
    // A malformed request line or headers: answer 400 when the socket still takes it.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  await listenOn(server, init.host, init.port, 'authority');
  server.on('error', () => log.error('http server error'));
  const addr = server.address() as AddressInfo;
  const host = init.host.includes(':') ? `[${init.host}]` : init.host;
  return {
    port: addr.port,
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
