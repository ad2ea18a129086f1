/**
 * The engine's side of a gateway link that runs on a worker thread (node-link-worker.ts): a
 * GatewayLink whose thread runs the send, loop and fetch clocks (link-clocks.ts) and sends the
 * frames this thread prepared for them, whatever this thread is doing meanwhile. One worker per
 * link: it ends when the link closes.
 * Node only.
 */
import { Worker } from 'node:worker_threads';
import { BackchannelError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { LinkRefusedError } from '../link/link.js';
import type { GatewayLink, LinkClockControl } from './client.js';
import type { ClockRates, TickKind } from './link-clocks.js';
import type { ConnectRequest, FromWorker, ToWorker } from './node-link-worker.js';

/**
 * Received frames waiting for the engine, at most. The gateway sends one frame per fetch, so the
 * engine reads far faster than they come; past this, the engine's thread has stopped reading and
 * the link is closed (the engine reconnects) rather than let the queue grow.
 */
export const MAX_RECEIVED_WAITING = 4096;

export type WorkerLinkOptions = Omit<ConnectRequest, 'type'>;

/**
 * Starts a worker, connects it to the gateway and resolves with the link once the handshake is
 * done. `staticKey` is copied to the worker and wiped there after the handshake.
 * @throws {BackchannelError} what the connection or the handshake threw (ERR_LINK_CONNECT, ...).
 */
export function connectInWorker(opts: WorkerLinkOptions): Promise<GatewayLink> {
  const worker = new Worker(new URL('./node-link-worker.js', import.meta.url));
  worker.unref();
  const link = new WorkerLink(worker);
  const send = (m: ToWorker): void => worker.postMessage(m);
  return new Promise<GatewayLink>((resolve, reject) => {
    link.onConnected = () => resolve(link);
    link.onFailed = (err) => reject(err);
    worker.once('error', (e) => link.fail(new BackchannelError('ERR_LINK_CONNECT', 'link: the link thread failed', { cause: e })));
    worker.once('exit', () => link.fail(new BackchannelError('ERR_LINK_CONNECT', 'link: the link thread ended')));
    // postMessage copies the key at once: the copy made for it is wiped straight after.
    const staticKey = Uint8Array.from(opts.staticKey);
    send({ type: 'connect', ...opts, staticKey, ...(opts.handshakePayload === undefined ? {} : { handshakePayload: Uint8Array.from(opts.handshakePayload) }) });
    staticKey.fill(0);
  });
}

class WorkerLink implements GatewayLink {
  readonly #worker: Worker;
  /** The link's thread runs the send, loop and fetch clocks (link-clocks.ts). */
  readonly clocks: LinkClockControl;
  readonly #received: Uint8Array[] = [];
  readonly #waiting: ((m: Uint8Array | null) => void)[] = [];
  #connected = false;
  #ended = false;
  readonly #exited: Promise<void>;
  onConnected: () => void = () => undefined;
  onFailed: (err: BackchannelError) => void = () => undefined;

  constructor(worker: Worker) {
    this.#worker = worker;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromWorker) => this.#onMessage(m));
    const post = (m: ToWorker): void => {
      if (!this.#ended) this.#worker.postMessage(m);
    };
    this.clocks = {
      setRates: (rates: ClockRates) => post({ type: 'rates', rates }),
      prepare: (kind: TickKind, frame: Uint8Array) => post({ type: 'prepare', kind, frame }),
      reserve: (frames: Uint8Array[], replace: boolean) => post({ type: 'reserve', frames, replace }),
      replaceFetch: (frame: Uint8Array) => post({ type: 'fetchFrame', frame }),
      onTick: null,
    };
  }

  #onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'connected':
        this.#connected = true;
        this.onConnected();
        break;
      case 'failed': {
        const code = (m.code ?? 'ERR_LINK_CONNECT') as ErrorCode;
        this.fail(m.refusal !== null ? new LinkRefusedError(m.refusal) : new BackchannelError(code, m.message));
        break;
      }
      case 'recv':
        if (this.#ended) break;
        if (this.#waiting.length > 0) this.#waiting.shift()!(m.frame);
        else if (this.#received.length < MAX_RECEIVED_WAITING) this.#received.push(m.frame);
        else void this.close();
        break;
      case 'tick':
        if (!this.#ended) this.clocks.onTick?.(m.kind, m.source, m.at, m.restarts);
        break;
      case 'closed':
        this.#end();
        break;
    }
  }

  /** The connection failed or the worker ended: before the handshake, the connect promise rejects. */
  fail(err: BackchannelError): void {
    if (!this.#connected) this.onFailed(err);
    this.#end();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const w of this.#waiting.splice(0)) w(null);
    void this.#worker.terminate();
  }

  #post(m: ToWorker): void {
    if (this.#ended) throw new BackchannelError('ERR_LINK_CLOSED', 'link: closed');
    this.#worker.postMessage(m);
  }

  trySend(message: Uint8Array): boolean {
    this.#post({ type: 'send', frame: message });
    return true;
  }

  send(message: Uint8Array): Promise<void> {
    try {
      this.#post({ type: 'send', frame: message });
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  sendAt(message: Uint8Array, atMs: number): void {
    this.#post({ type: 'sendAt', frame: message, at: atMs });
  }

  fetchAt(atMs: number): void {
    this.#post({ type: 'fetchAt', at: atMs });
  }

  setFetchSequence(sequence: number): void {
    if (!this.#ended) this.#worker.postMessage({ type: 'seq', sequence } satisfies ToWorker);
  }

  recv(): Promise<Uint8Array | null> {
    const m = this.#received.shift();
    if (m !== undefined) return Promise.resolve(m);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  async close(): Promise<void> {
    if (!this.#ended) {
      this.#worker.postMessage({ type: 'close' } satisfies ToWorker);
      // The worker closes the link and reports `closed`; should it hang, it is terminated.
      const t = setTimeout(() => this.#end(), 2000);
      t.unref();
      await this.#exited;
      clearTimeout(t);
    }
    this.#end();
  }
}
