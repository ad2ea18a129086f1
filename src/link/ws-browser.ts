/**
 * Links over the browser's WebSocket (the WHATWG API; also Node's global WebSocket). Portable: no
 * `node:` imports. A browser cannot pause a WebSocket, so the link bounds what it holds instead
 * (maxBufferedBytes) and fails with ERR_LINK_BACKPRESSURE past it.
 */
import { BackchannelError } from '../errors.js';
import type { NoiseCrypto } from '../noise/crypto.js';
import type { InitiatorOptions } from './link.js';
import { Link } from './link.js';
import type { ByteTransport, TransportHandlers } from './transport.js';

const DEFAULT_HIGH_WATER_MARK = 1 << 20;
const DRAIN_POLL_MS = 5;

export class BrowserWsTransport implements ByteTransport {
  readonly kind = 'websocket';
  readonly canPause = false;
  readonly #ws: WebSocket;
  readonly #highWaterMark: number;
  #polling = false;
  #handlers: TransportHandlers | null = null;

  constructor(ws: WebSocket, highWaterMark = DEFAULT_HIGH_WATER_MARK) {
    this.#ws = ws;
    this.#highWaterMark = highWaterMark;
    ws.binaryType = 'arraybuffer';
  }

  start(h: TransportHandlers): void {
    this.#handlers = h;
    let closed = false;
    const close = (error?: Error): void => {
      if (closed) return;
      closed = true;
      h.onClose(error);
    };
    this.#ws.onmessage = (ev: { data: unknown }) => {
      if (!(ev.data instanceof ArrayBuffer)) {
        this.#ws.close(4000);
        close(new BackchannelError('ERR_LINK_PROTOCOL', 'link: text WebSocket message'));
        return;
      }
      h.onData(new Uint8Array(ev.data));
    };
    this.#ws.onerror = () => undefined; // the close event follows
    this.#ws.onclose = (ev: { wasClean: boolean; code: number }) => close(ev.wasClean ? undefined : new BackchannelError('ERR_LINK_CLOSED', `link: WebSocket closed with code ${ev.code}`));
    if (this.#ws.readyState === WebSocket.CLOSED) queueMicrotask(() => close(new BackchannelError('ERR_LINK_CLOSED', 'link: WebSocket already closed')));
  }

  write(chunk: Uint8Array): boolean {
    if (this.#ws.readyState !== WebSocket.OPEN) return true;
    this.#ws.send(chunk);
    if (this.#ws.bufferedAmount < this.#highWaterMark) return true;
    this.#pollDrain();
    return false;
  }

  /** The browser has no drain event: watch bufferedAmount until half the mark is left. */
  #pollDrain(): void {
    if (this.#polling) return;
    this.#polling = true;
    const check = (): void => {
      if (this.#ws.readyState !== WebSocket.OPEN) {
        this.#polling = false;
        return;
      }
      if (this.#ws.bufferedAmount < this.#highWaterMark >>> 1) {
        this.#polling = false;
        this.#handlers?.onDrain();
        return;
      }
      setTimeout(check, DRAIN_POLL_MS);
    };
    setTimeout(check, DRAIN_POLL_MS);
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  pause(): void {
    // not possible in a browser; the link bounds its buffer instead
  }

  resume(): void {
    // see pause()
  }

  end(): void {
    // Data already queued with send() goes out before the close frame.
    this.#ws.close(1000);
  }

  destroy(): void {
    this.#ws.close(4000);
  }
}

export interface BrowserWsConnectOptions extends InitiatorOptions {
  /** ws:// or wss:// address of a link server. */
  url: string;
  /** The portable primitives in a browser (portableNoiseCrypto). */
  crypto: NoiseCrypto;
  highWaterMark?: number;
}

/** Connects with the platform's WebSocket and runs the handshake. Errors as connectTcp. */
export function connectBrowserWs(opts: BrowserWsConnectOptions): Promise<Link> {
  return new Promise<WebSocket>((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(opts.url);
    } catch (e) {
      reject(new BackchannelError('ERR_LINK_CONNECT', 'link: bad WebSocket URL', { cause: e }));
      return;
    }
    ws.binaryType = 'arraybuffer';
    const timer = setTimeout(() => {
      ws.close();
      reject(new BackchannelError('ERR_LINK_CONNECT', 'link: WebSocket connect timed out'));
    }, opts.handshakeTimeoutMs ?? 10_000);
    ws.onopen = () => {
      clearTimeout(timer);
      ws.onopen = null;
      ws.onerror = null;
      resolve(ws);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new BackchannelError('ERR_LINK_CONNECT', 'link: WebSocket connect failed'));
    };
  }).then((ws) => Link.initiate(new BrowserWsTransport(ws, opts.highWaterMark), opts.crypto, opts));
}
