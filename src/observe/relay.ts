/**
 * A recording relay: the global passive observer of DESIGN.md's threat model, put on one link.
 * It listens on 127.0.0.1, connects each accepted connection to a target, forwards bytes both
 * ways unchanged, and keeps, per connection and direction, the time and size of what passed, and
 * nothing of the content.
 *
 * On a TCP link every frame is a 2-byte big-endian length and that many bytes of Noise ciphertext
 * (docs/link.md), so with `framing: 'length-prefixed'` the relay cuts the byte stream at the
 * length prefixes and records frames (wire size, prefix included), as an observer who knows the
 * protocol would; the time of a frame is when its last byte passed. With `framing: 'chunks'` it
 * records what each read returned (WebSocket links, whose framing differs).
 *
 * Records are held in memory up to `maxRecords` over all connections; past that they are counted
 * as dropped. Any bytes are fine: the length parser cannot fail, and a socket error on either side
 * closes both.
 */
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { BackchannelError } from '../errors.js';

/** 5 million frames: a 10-minute local network run records about one million. */
export const DEFAULT_MAX_RECORDS = 5_000_000;
/** Connections relayed at once; more are refused on arrival. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/** How long a connect to the target may take before the accepted side is closed. */
export const TARGET_CONNECT_TIMEOUT_MS = 5_000;
/** Time a side is given to flush after the other closed. */
export const CLOSE_GRACE_MS = 1_000;
/** Bytes of a wire frame's length prefix (docs/link.md). */
export const LENGTH_PREFIX_BYTES = 2;

export type Framing = 'length-prefixed' | 'chunks';

/** Frames or chunks seen in one direction: parallel arrays of times (ms since the relay started) and wire sizes (bytes). */
export interface DirectionLog {
  readonly times: number[];
  readonly sizes: number[];
  /** Bytes of a frame not yet complete (length-prefixed framing). */
  pending: number;
}

export interface ConnectionLog {
  /** The relay's name (the node it fronts, e.g. "gateway-1"). */
  readonly relay: string;
  /** 0, 1, 2, ... in the order the relay accepted them. */
  readonly index: number;
  /** Who connected, when `identify` could tell; else null. */
  peer: string | null;
  readonly openedAt: number;
  closedAt: number | null;
  /** From the connecting side to the target (the link's initiator to its responder). */
  readonly forward: DirectionLog;
  /** From the target back to the connecting side. */
  readonly backward: DirectionLog;
}

export interface RelayInit {
  /** A label for the link, the node behind it (no address, no key). */
  readonly name: string;
  /** Where to listen (default 127.0.0.1, any port). */
  readonly host?: string;
  readonly port?: number;
  /** Where to forward to. */
  readonly target: { readonly host: string; readonly port: number };
  readonly framing?: Framing;
  readonly maxRecords?: number;
  readonly maxConnections?: number;
}

export interface RelayComponents {
  /** Milliseconds since the observation started (high resolution). */
  readonly now?: () => number;
  /**
   * Names the connecting side from its source port and the port it reached (the observer sees
   * source addresses; on one machine they differ only by port). May answer later; null when unknown.
   */
  readonly identify?: (remotePort: number, localPort: number) => string | null | Promise<string | null>;
}

export interface RelayStats {
  readonly connections: number;
  readonly refused: number;
  readonly records: number;
  readonly dropped: number;
}

export interface Relay {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Every connection so far, open or closed, in accept order. */
  connections(): readonly ConnectionLog[];
  stats(): RelayStats;
  /** Stops listening and closes every relayed connection (both sides). Idempotent. */
  close(): Promise<void>;
}

/** A shared budget of records across relays, so that one bound holds for a whole observation. */
export class RecordBudget {
  #left: number;
  dropped = 0;
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError('observe: "maxRecords" expected a non-negative integer');
    this.#left = max;
  }
  take(): boolean {
    if (this.#left > 0) {
      this.#left--;
      return true;
    }
    this.dropped++;
    return false;
  }
}

/**
 * Cuts a byte stream at 2-byte big-endian length prefixes and reports each whole frame's wire size.
 * Holds no bytes: only how far into the current frame it is.
 */
export class LengthPrefixParser {
  /** Bytes of the prefix read so far (0..2), and its value. */
  #prefixRead = 0;
  #length = 0;
  /** Body bytes still to come for the current frame. */
  #bodyLeft = 0;

  /** Bytes of an unfinished frame held so far (prefix included). */
  get pending(): number {
    return this.#prefixRead === LENGTH_PREFIX_BYTES ? LENGTH_PREFIX_BYTES + this.#length - this.#bodyLeft : this.#prefixRead;
  }

  /** Feeds a chunk; calls `frame(size)` for each frame it completes. */
  push(chunk: Uint8Array, frame: (size: number) => void): void {
    let k = 0;
    while (k < chunk.length) {
      if (this.#prefixRead < LENGTH_PREFIX_BYTES) {
        this.#length = (this.#length << 8) | chunk[k]!;
        this.#prefixRead++;
        k++;
        if (this.#prefixRead === LENGTH_PREFIX_BYTES) {
          this.#bodyLeft = this.#length;
          if (this.#bodyLeft === 0) this.#finish(frame);
        }
        continue;
      }
      const take = Math.min(this.#bodyLeft, chunk.length - k);
      this.#bodyLeft -= take;
      k += take;
      if (this.#bodyLeft === 0) this.#finish(frame);
    }
  }

  #finish(frame: (size: number) => void): void {
    const size = LENGTH_PREFIX_BYTES + this.#length;
    this.#prefixRead = 0;
    this.#length = 0;
    this.#bodyLeft = 0;
    frame(size);
  }
}

function relayError(message: string, cause?: unknown): BackchannelError {
  return new BackchannelError('ERR_OBSERVE_RELAY', `observe: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * Starts a relay: listens, and forwards each connection to `init.target` while recording it.
 * @throws {BackchannelError} ERR_OBSERVE_RELAY when the listen address cannot be bound.
 * @example const r = await startRelay({ name: 'mix-1-1', port: 30_006, target: { host: '127.0.0.1', port: 31_006 } });
 */
export async function startRelay(init: RelayInit, components: RelayComponents & { budget?: RecordBudget } = {}): Promise<Relay> {
  if (typeof init.name !== 'string' || init.name.length === 0) throw new TypeError('observe: "name" expected a non-empty string');
  const started = performance.now();
  const now = components.now ?? (() => performance.now() - started);
  const framing = init.framing ?? 'length-prefixed';
  const budget = components.budget ?? new RecordBudget(init.maxRecords ?? DEFAULT_MAX_RECORDS);
  const maxConnections = init.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const logs: ConnectionLog[] = [];
  const open = new Set<Socket>();
  let refused = 0;
  let records = 0;
  let closing = false;
  /** Peers being named: close waits for them, so that a connection's peer is known when its log is read. */
  const identifying = new Set<Promise<void>>();

  const record = (log: DirectionLog, t: number, size: number): void => {
    if (!budget.take()) return;
    log.times.push(t);
    log.sizes.push(size);
    records++;
  };

  /** Copies `from` into `to`, recording as it goes, with backpressure. */
  const pipeRecorded = (from: Socket, to: Socket, log: DirectionLog): void => {
    const parser = framing === 'length-prefixed' ? new LengthPrefixParser() : null;
    from.on('data', (chunk: Buffer) => {
      const t = now();
      if (parser === null) record(log, t, chunk.length);
      else {
        parser.push(chunk, (size) => record(log, t, size));
        log.pending = parser.pending;
      }
      if (!to.destroyed && !to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
  };

  const server: Server = createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
    accepted.on('error', () => undefined);
    if (closing || open.size / 2 >= maxConnections) {
      refused++;
      accepted.destroy();
      return;
    }
    const log: ConnectionLog = {
      relay: init.name,
      index: logs.length,
      peer: null,
      openedAt: now(),
      closedAt: null,
      forward: { times: [], sizes: [], pending: 0 },
      backward: { times: [], sizes: [], pending: 0 },
    };
    logs.push(log);
    const remotePort = accepted.remotePort;
    const localPort = accepted.localPort;
    if (components.identify !== undefined && remotePort !== undefined && localPort !== undefined) {
      const naming = Promise.resolve()
        .then(() => components.identify!(remotePort, localPort))
        .then(
          (peer) => {
            log.peer = peer;
          },
          () => undefined,
        )
        .finally(() => identifying.delete(naming));
      identifying.add(naming);
    }
    const upstream = createConnection({ host: init.target.host, port: init.target.port, noDelay: true });
    upstream.on('error', () => undefined);
    open.add(accepted);
    open.add(upstream);
    const timer = setTimeout(() => upstream.destroy(), TARGET_CONNECT_TIMEOUT_MS);
    let ended = false;
    // When one side closes, the other is ended (what it has queued still goes out) and destroyed
    // after CLOSE_GRACE_MS at the latest.
    const end = (other: Socket): void => {
      clearTimeout(timer);
      if (!ended) {
        ended = true;
        log.closedAt = now();
      }
      if (!other.destroyed) {
        other.end();
        setTimeout(() => other.destroy(), CLOSE_GRACE_MS).unref();
      }
    };
    accepted.on('end', () => upstream.end());
    upstream.on('end', () => accepted.end());
    accepted.on('close', () => {
      open.delete(accepted);
      end(upstream);
    });
    upstream.on('close', () => {
      open.delete(upstream);
      end(accepted);
    });
    upstream.once('connect', () => {
      clearTimeout(timer);
      pipeRecorded(accepted, upstream, log.forward);
      pipeRecorded(upstream, accepted, log.backward);
      accepted.resume();
    });
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => reject(relayError(`${init.name} relay cannot listen (${e.code ?? 'error'})`, e));
    server.once('error', onError);
    server.listen(init.port ?? 0, init.host ?? '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw relayError('unexpected listen address');

  return {
    name: init.name,
    host: address.address,
    port: address.port,
    connections: () => logs,
    stats: () => ({ connections: logs.length, refused, records, dropped: budget.dropped }),
    close: async () => {
      if (closing) return;
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(identifying);
      for (const s of open) s.destroy();
      await stopped;
    },
  };
}
