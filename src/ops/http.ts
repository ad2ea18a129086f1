/**
 * The operations endpoint every server has: `GET /healthz` (200 when healthy, 503 when not, with
 * a small JSON body whose status is ok, degraded (with reasons) or unhealthy) and `GET /metrics` (Prometheus text). Meant for 127.0.0.1 or an operator
 * network; it serves nothing else and reads no request bodies.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import { BackchannelError } from '../errors.js';
import { listenOn } from '../util/listen.js';
import { TIMEOUT_CHECK_INTERVAL_MS, guardHttpServer } from '../util/http-guard.js';
import type { GateLimits } from '../util/gate.js';

/** The operations endpoint is for an operator's scraper: a few connections per source are plenty. */
const OPS_GATE: GateLimits = { maxPerSource: 32, maxTotal: 256, ratePerSource: { perSecond: 20, burst: 60 } };

export interface Health {
  readonly healthy: boolean;
  /**
   * Why a healthy server is under pressure now (a limit being hit); non-empty makes the status
   * "degraded" (still 200: it serves). No keys or addresses.
   */
  readonly degraded?: readonly string[];
  /** Short facts for an operator: role, epoch, counts. No keys or addresses. */
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
}

export interface OpsServerInit {
  host: string;
  port: number;
  registry: Registry;
  health(): Health;
}

export interface OpsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts the operations endpoint.
 * @throws {BackchannelError} ERR_SERVER_LISTEN when the address cannot be bound.
 */
export async function startOpsServer(init: OpsServerInit): Promise<OpsServer> {
  const server: Server = createServer({ connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (path === '/healthz') {
      let h: Health;
      try {
        h = init.health();
      } catch {
        h = { healthy: false };
      }
      const degraded = h.healthy && (h.degraded?.length ?? 0) > 0;
      res.writeHead(h.healthy ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: !h.healthy ? 'unhealthy' : degraded ? 'degraded' : 'ok', ...(degraded ? { reasons: h.degraded } : {}), ...h.detail }));
      return;
    }
    if (path === '/metrics') {
      init.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': init.registry.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500).end();
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
  });
  guardHttpServer(server, OPS_GATE);
  await listenOn(server, init.host, init.port, 'ops');
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new BackchannelError('ERR_SERVER', 'ops: unexpected server address');
  return {
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
