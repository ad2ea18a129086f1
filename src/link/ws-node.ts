/** Links over WebSocket in Node (the `ws` package), server and client. */
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import { BackchannelError } from '../errors.js';
import { listenOn } from '../util/listen.js';
import { ConnectionGate, sourceOf } from '../util/gate.js';
import { createServer as createHttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { NoiseCrypto } from '../noise/crypto.js';
import { nodeNoiseCrypto } from '../noise/crypto-node.js';
import { DEFAULT_LINK_GATE, LinkAcceptor } from './acceptor.js';
import type { LinkServer, LinkServerOptions } from './acceptor.js';
import type { InitiatorOptions } from './link.js';
import { Link, MAX_FRAME_LENGTH } from './link.js';
import { DEFAULT_HIGH_WATER_MARK } from './tcp.js';
import type { ByteTransport, TransportHandlers } from './transport.js';

/** Time a connection has to send its upgrade request (the link's handshake timeout runs after). */
const UPGRADE_TIMEOUT_MS = 10_000;

/** One WebSocket message carries one frame: its length prefix and a Noise message. */
const MAX_WS_MESSAGE = MAX_FRAME_LENGTH + 2;

export class NodeWsTransport implements ByteTransport {
  readonly kind = 'websocket';
  readonly canPause = true;
  readonly #ws: WebSocket;
  readonly #highWaterMark: number;
  #choked = false;
  #handlers: TransportHandlers | null = null;

  constructor(ws: WebSocket, highWaterMark = DEFAULT_HIGH_WATER_MARK) {
    this.#ws = ws;
    this.#highWaterMark = highWaterMark;
  }

  start(h: TransportHandlers): void {
    this.#handlers = h;
    let failure: Error | undefined;
    this.#ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary || !Buffer.isBuffer(data)) {
        failure = new BackchannelError('ERR_LINK_PROTOCOL', 'link: text or fragmented WebSocket message');
        this.#ws.terminate();
        return;
      }
      h.onData(new Uint8Array(data.buffer, data.byteOffset, data.length));
    });
    this.#ws.on('error', (e) => {
      failure = e;
    });
    this.#ws.on('close', () => h.onClose(failure));
    if (this.#ws.readyState === WebSocket.CLOSED) queueMicrotask(() => h.onClose(failure ?? new BackchannelError('ERR_LINK_CLOSED', 'link: WebSocket already closed')));
  }

  write(chunk: Uint8Array): boolean {
    if (this.#ws.readyState !== WebSocket.OPEN) return true;
    this.#ws.send(chunk, { binary: true }, () => this.#sent());
    if (this.#ws.bufferedAmount >= this.#highWaterMark) this.#choked = true;
    return !this.#choked;
  }

  #sent(): void {
    if (this.#choked && this.#ws.bufferedAmount < this.#highWaterMark >>> 1) {
      this.#choked = false;
      this.#handlers?.onDrain();
    }
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  pause(): void {
    this.#ws.pause();
  }

  resume(): void {
    this.#ws.resume();
  }

  end(): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.close(1000);
    else this.#ws.terminate();
  }

  destroy(): void {
    this.#ws.terminate();
  }
}

export interface WsConnectOptions extends InitiatorOptions {
  /** ws:// or wss:// address of a link server. */
  url: string;
  crypto?: NoiseCrypto;
  highWaterMark?: number;
}

/** Connects over WebSocket from Node and runs the handshake. Errors as connectTcp. */
export function connectWs(opts: WsConnectOptions): Promise<Link> {
  return new Promise<WebSocket>((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(opts.url, { maxPayload: MAX_WS_MESSAGE, perMessageDeflate: false, handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000 });
    } catch (e) {
      reject(new BackchannelError('ERR_LINK_CONNECT', 'link: bad WebSocket URL', { cause: e }));
      return;
    }
    ws.once('open', () => {
      ws.removeAllListeners('error');
      resolve(ws);
    });
    ws.once('error', (e) => reject(new BackchannelError('ERR_LINK_CONNECT', 'link: WebSocket connect failed', { cause: e })));
  }).then((ws) => Link.initiate(new NodeWsTransport(ws, opts.highWaterMark), opts.crypto ?? nodeNoiseCrypto, opts));
}

export interface WsListenOptions extends LinkServerOptions {
  host?: string;
  port?: number;
  /** Only upgrade requests for this path are accepted. Default '/link'. */
  path?: string;
  crypto?: NoiseCrypto;
  highWaterMark?: number;
}

export interface WsLinkServer extends LinkServer {
  /** The ws:// address clients connect to. */
  readonly url: string;
}

/**
 * Listens for links over WebSocket.
 * @throws {BackchannelError} ERR_SERVER_LISTEN when the address cannot be bound.
 */
export async function listenWs(opts: WsListenOptions): Promise<WsLinkServer> {
  const acceptor = new LinkAcceptor(opts.crypto ?? nodeNoiseCrypto, opts);
  const path = opts.path ?? '/link';
  const listenHost = opts.host ?? '127.0.0.1';
  const listenPort = opts.port ?? 0;
  // Our own HTTP server under the WebSocket server, so that the gate sees every TCP connection
  // before a byte of the upgrade request is read; a request that is not an upgrade gets 426.
  const gate = new ConnectionGate(opts.gate ?? DEFAULT_LINK_GATE, () => performance.now());
  if (opts.onGateRefusal !== undefined) gate.onRefuse = opts.onGateRefusal;
  const http = createHttpServer({ connectionsCheckingInterval: 1000 }, (_req, res) => {
    res.writeHead(426, { connection: 'close', 'content-length': 0 }).end();
  });
  http.headersTimeout = UPGRADE_TIMEOUT_MS;
  http.requestTimeout = UPGRADE_TIMEOUT_MS;
  http.prependListener('connection', (socket: Socket) => {
    socket.on('error', () => undefined);
    gate.admit(socket);
  });
  const wss = new WebSocketServer({
    server: http,
    path,
    maxPayload: MAX_WS_MESSAGE,
    perMessageDeflate: false,
    clientTracking: false,
  });
  wss.on('connection', (ws, req) => {
    ws.on('error', () => undefined); // reported through the link
    acceptor.take(new NodeWsTransport(ws, opts.highWaterMark), sourceOf(req.socket.remoteAddress));
  });
  // The WebSocket server passes on its HTTP server's errors (listenOn reports a listen error).
  wss.on('error', () => undefined);
  await listenOn(http, listenHost, listenPort, 'link');
  http.on('error', () => undefined);
  const address = http.address();
  if (address === null || typeof address === 'string') throw new BackchannelError('ERR_SERVER', 'link: unexpected server address');
  const host = address.address;
  return Object.assign(
    acceptor.server(
      host,
      address.port,
      (stopped) => {
        wss.close();
        http.close(() => stopped());
        http.closeAllConnections();
      },
      gate.stats,
    ),
    { url: `ws://${host.includes(':') ? `[${host}]` : host}:${address.port}${path}` },
  );
}
