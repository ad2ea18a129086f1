/** Links over TCP (node:net). */
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { BackchannelError } from '../errors.js';
import { listenOn } from '../util/listen.js';
import type { NoiseCrypto } from '../noise/crypto.js';
import { nodeNoiseCrypto } from '../noise/crypto-node.js';
import type { LinkServer, LinkServerOptions } from './acceptor.js';
import { DEFAULT_LINK_GATE, LinkAcceptor } from './acceptor.js';
import { ConnectionGate, sourceOf } from '../util/gate.js';
import type { InitiatorOptions } from './link.js';
import { Link } from './link.js';
import type { ByteTransport, TransportHandlers } from './transport.js';

/** Bytes queued in a socket before a link waits (send) or refuses (trySend). */
export const DEFAULT_HIGH_WATER_MARK = 1 << 20;

export class TcpTransport implements ByteTransport {
  readonly kind = 'tcp';
  readonly canPause = true;
  readonly #socket: Socket;
  readonly #highWaterMark: number;
  #corked = false;
  readonly #uncork = (): void => {
    this.#corked = false;
    this.#socket.uncork();
  };

  constructor(socket: Socket, highWaterMark = DEFAULT_HIGH_WATER_MARK) {
    this.#socket = socket;
    this.#highWaterMark = highWaterMark;
    socket.setNoDelay(true);
  }

  start(h: TransportHandlers): void {
    let failure: Error | undefined;
    this.#socket.on('data', (b: Buffer) => h.onData(new Uint8Array(b.buffer, b.byteOffset, b.length)));
    this.#socket.on('drain', () => h.onDrain());
    this.#socket.on('error', (e) => {
      failure = e;
    });
    this.#socket.on('close', () => h.onClose(failure));
    if (this.#socket.destroyed) queueMicrotask(() => h.onClose(failure ?? new BackchannelError('ERR_LINK_CLOSED', 'link: TCP socket already closed')));
  }

  /**
   * Frames written in one turn of the event loop leave in one system call: the socket is corked
   * at the first write and uncorked once the current code has run (process.nextTick), so a burst
   * costs one writev instead of one write per frame, and a lone frame is not delayed.
   */
  write(chunk: Uint8Array): boolean {
    if (this.#socket.destroyed || this.#socket.writableEnded) return true;
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(this.#uncork);
    }
    this.#socket.write(chunk);
    // Node's own mark (16 KiB) is below ours, so 'drain' follows whenever this returns false.
    return this.#socket.writableLength < this.#highWaterMark;
  }

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  end(): void {
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

export interface TcpConnectOptions extends InitiatorOptions {
  host: string;
  port: number;
  /** Native primitives by default. */
  crypto?: NoiseCrypto;
  highWaterMark?: number;
  /** The local address to connect from (a benchmark's attacker on 127.0.0.2); the system's choice by default. */
  localAddress?: string;
}

/**
 * Connects and runs the handshake; resolves with an open link.
 * @throws {BackchannelError} ERR_LINK_CONNECT when the connection cannot be made, or the
 *   handshake's errors (ERR_LINK_HANDSHAKE, ERR_LINK_REJECTED, ERR_LINK_TIMEOUT, ...).
 */
export function connectTcp(opts: TcpConnectOptions): Promise<Link> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = createConnection({ host: opts.host, port: opts.port, ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new BackchannelError('ERR_LINK_CONNECT', 'link: TCP connect timed out'));
    }, opts.handshakeTimeoutMs ?? 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new BackchannelError('ERR_LINK_CONNECT', `link: TCP connect failed (${e.code ?? 'error'})`, { cause: e }));
    });
  }).then((socket) => Link.initiate(new TcpTransport(socket, opts.highWaterMark), opts.crypto ?? nodeNoiseCrypto, opts));
}

export interface TcpListenOptions extends LinkServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  crypto?: NoiseCrypto;
  highWaterMark?: number;
}

/**
 * Listens for links over TCP.
 * @throws {BackchannelError} ERR_SERVER_LISTEN when the address cannot be bound.
 */
export async function listenTcp(opts: TcpListenOptions): Promise<LinkServer> {
  const acceptor = new LinkAcceptor(opts.crypto ?? nodeNoiseCrypto, opts);
  const gate = new ConnectionGate(opts.gate ?? DEFAULT_LINK_GATE, () => performance.now());
  if (opts.onGateRefusal !== undefined) gate.onRefuse = opts.onGateRefusal;
  const server: Server = createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => undefined); // reported through the link
    if (!gate.admit(socket)) return;
    acceptor.take(new TcpTransport(socket, opts.highWaterMark), sourceOf(socket.remoteAddress));
  });
  await listenOn(server, opts.host ?? '127.0.0.1', opts.port ?? 0, 'link');
  server.on('error', () => undefined);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new BackchannelError('ERR_SERVER', 'link: unexpected server address');
  return acceptor.server(address.address, address.port, (stopped) => server.close(() => stopped()), gate.stats);
}
