/**
 * What every HTTP server here (the authority's API, the operations endpoint) does against slow,
 * silent and numerous peers: a connection gate in front (src/util/gate.ts), request and header
 * timeouts that fire on time (Node checks them every 30 s by default), idle sockets destroyed
 * (also one whose peer never reads its answer), and a malformed request answered 400 and then
 * closed for good (an `end()` alone half-closes, and a peer that never reads would keep the
 * socket). Node only.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ConnectionGate } from './gate.js';
import type { GateLimits, GateRefusal, GateStats } from './gate.js';

/** Bounds on a slow or idle client, from Node's defaults for a public server scaled down: requests here are small. */
export const REQUEST_TIMEOUT_MS = 10_000;
export const HEADERS_TIMEOUT_MS = 5_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A socket with nothing read or written for this long is destroyed (a peer that never reads its answer). */
export const IDLE_SOCKET_TIMEOUT_MS = 15_000;
/** How often Node checks the request and header timeouts (pass to createServer): they fire within this much of their time. */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/** A 400 answer to a malformed request is flushed, then the socket is destroyed after at most this long. */
export const BAD_REQUEST_LINGER_MS = 1_000;

/**
 * Admission of HTTP connections: 128 open per source, 1,024 in all, 100 new connections a second
 * per source with bursts of 200. Nodes and authorities keep their connections alive, so honest
 * peers use a few each.
 */
export const DEFAULT_HTTP_GATE: GateLimits = { maxPerSource: 128, maxTotal: 1024, ratePerSource: { perSecond: 100, burst: 200 } };

/**
 * Puts the gate and the timeouts on `server` (made with `connectionsCheckingInterval:
 * TIMEOUT_CHECK_INTERVAL_MS`); returns the gate's counts.
 */
export function guardHttpServer(server: Server, limits: GateLimits, onRefusal?: (reason: GateRefusal) => void): GateStats {
  const gate = new ConnectionGate(limits, () => performance.now());
  if (onRefusal !== undefined) gate.onRefuse = onRefusal;
  server.prependListener('connection', (socket: Socket) => {
    socket.on('error', () => undefined);
    gate.admit(socket);
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.timeout = IDLE_SOCKET_TIMEOUT_MS;
  server.on('timeout', (socket: Socket) => socket.destroy());
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A malformed request line or headers (400), or a request that took too long (408): answer
    // when the socket still takes it, then close.
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    setTimeout(() => socket.destroy(), BAD_REQUEST_LINGER_MS).unref();
  });
  return gate.stats;
}
