/**
 * The authority's HTTP plumbing (node:http): routing by a table the caller gives, bodies read
 * within a per-route limit (413 beyond, before reading on a declared length), JSON errors
 * `{"error": CODE}`, and no input that can crash the process: a handler that throws answers 500.
 * Slow, silent and numerous peers are bounded as on every HTTP server here (util/http-guard.ts).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../ops/log.js';
import { listenOn } from '../util/listen.js';
import type { GateLimits, GateRefusal, GateStats } from '../util/gate.js';
import { DEFAULT_HTTP_GATE, TIMEOUT_CHECK_INTERVAL_MS, guardHttpServer } from '../util/http-guard.js';



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
  /** Connection admission; DEFAULT_HTTP_GATE unless given. */
  readonly gate?: GateLimits;
  /** Told of each connection the gate refuses, for metrics. */
  readonly onGateRefusal?: (reason: GateRefusal) => void;
}

export interface ApiServer {
  readonly port: number;
  /** Connections admitted and refused at the gate. */
  readonly gate: GateStats;
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

  const server: Server = createServer({ connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS }, (req, res) => {
    onRequest(req, res).catch(() => {
      if (!res.headersSent) send(res, jsonError(500, 'ERR_SERVER'), true);
      else res.destroy();
    });
  });
  const gate = guardHttpServer(server, init.gate ?? DEFAULT_HTTP_GATE, init.onGateRefusal);

  await listenOn(server, init.host, init.port, 'authority');
  server.on('error', () => log.error('http server error'));
  const addr = server.address() as AddressInfo;
  const host = init.host.includes(':') ? `[${init.host}]` : init.host;
  return {
    port: addr.port,
    gate,
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
