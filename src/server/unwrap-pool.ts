/**
 * Sphinx unwrapping spread over worker threads, so that a mix node uses every core: the X25519
 * operations and the AEZ pass over the payload (~90 us per packet for the default geometry) are
 * the whole cost of a hop.
 *
 * Each worker has a ring of packet slots in shared memory (a SharedArrayBuffer that the pool
 * owns and a replacement worker inherits). A packet is copied into the next free slot of the
 * least-loaded worker at the time it is submitted, so a burst is split across workers rather than
 * queued behind one; the packets submitted in one event-loop turn are announced to the worker by
 * one small message (`{start, count}`), the worker unwraps them in place and answers with the same
 * range. No buffer is allocated or transferred per batch: transferred buffers count as new
 * external memory on each side, and at 10 000 packets/s they drove a mark-compact collection
 * every ~80 ms on the main thread, the largest part of the mix's tail latency.
 *
 * The pool holds a copy of each mix key for as long as it is set, because a worker that dies is
 * replaced and the new one needs the keys; `deleteKey` and `close` zero it, here and in the workers.
 * The replay check is the caller's: it needs the outcome's epoch and replay tag, and must happen
 * on one thread.
 */
import { Worker } from 'node:worker_threads';
import type { WorkerOptions } from 'node:worker_threads';
import { BackchannelError } from '../errors.js';
import { geometryFromUserPayload } from '../sphinx/geometry.js';
import type { Geometry } from '../sphinx/geometry.js';
import { Sphinx } from '../sphinx/sphinx.js';
import { X25519_PRIVATE_KEY_LENGTH } from '../sphinx/constants.js';
import { nodeBackend } from '../crypto/node.js';
import { abytes, aint, wipe } from '../util/bytes.js';
import { EPOCH_STRIDE, RECORD_LENGTH, WORKER_MARK, decodeOutcome, geometryFromParams, geometryParams, ringLayout } from './unwrap-ring.js';
import type { UnwrapWorkerData } from './unwrap-ring.js';
import { MAX_EPOCHS_PER_UNWRAP, unwrapWithKeys } from './unwrap.js';
import type { UnwrapOutcome, Unwrapper } from './unwrap.js';

/** The most workers a pool starts; more than the cores only adds contention. */
export const MAX_UNWRAP_WORKERS = 256;
/** The largest maxInFlight: 2^20 packets of ~3 kB is 3 GiB of buffers. */
export const MAX_UNWRAP_IN_FLIGHT = 1 << 20;
/**
 * Packets per message by default. 32 default-geometry packets take ~3 ms to unwrap, against
 * ~20 us to post and receive a message; larger batches add latency and gain nothing measurable.
 */
export const DEFAULT_UNWRAP_BATCH = 32;
const MAX_UNWRAP_BATCH = 1024;
/**
 * Shared memory per worker at most (its ring of slots). A ring holds ceil(maxInFlight / workers)
 * packets unless that would exceed this; a packet that finds the least-loaded ring full is refused
 * like one beyond maxInFlight.
 */
const MAX_RING_BYTES = 64 << 20;
/** How long close() lets a worker finish what it holds and zero its keys before terminating it. */
const CLOSE_GRACE_MS = 2000;
/** A worker that dies before it is ready is restarted after a delay that doubles from here ... */
const RESPAWN_BASE_MS = 100;
/** ... up to here, so a broken installation does not spin. */
const RESPAWN_MAX_MS = 10_000;

export interface UnwrapPoolOptions {
  /** The network's geometry, or the parameters of geometryFromUserPayload. */
  readonly geometry: Geometry | { readonly hops: number; readonly userPayloadLength: number; readonly withSurb: boolean };
  /**
   * Worker threads. 0 unwraps on the calling thread, in a microtask after `unwrap` returns: for
   * tests and the simulator, where threads would only get in the way of determinism.
   */
  readonly workers: number;
  /** Packets accepted and not yet answered, at most; `unwrap` returns null beyond. */
  readonly maxInFlight: number;
  /** Packets per message to a worker, at most (and at most a ring's size). Default DEFAULT_UNWRAP_BATCH. */
  readonly maxBatch?: number;
  /** Starts a worker thread; `new Worker` by default. Tests wrap it to hold each worker and end one as a crash would. */
  readonly spawnWorker?: (url: URL, options: WorkerOptions) => Worker;
  /**
   * Memory for the packet of a forward outcome (packetLength zero bytes, the caller's from then
   * on); a fresh array by default. A node passes the packet's place in a new send_packet command
   * (WireCodec.newSendPacket), so that the packet leaves the ring by one copy and goes on as it is.
   */
  readonly allocatePacket?: () => Uint8Array;
}

type Resolve = (o: UnwrapOutcome) => void;

/**
 * One worker and its ring. Positions count packets since the ring was made (position p is slot
 * p % capacity): [tail, sent) are with the worker, [sent, head) are written and not yet announced.
 * The worker answers ranges in the order they were announced, so slots free up in order.
 */
interface Slot {
  readonly index: number;
  worker: Worker | null;
  ready: boolean;
  readonly ring: SharedArrayBuffer;
  readonly epochs: Float64Array;
  readonly records: Uint8Array;
  readonly packets: Uint8Array;
  /** By slot: who waits for the packet there. */
  readonly resolvers: (Resolve | undefined)[];
  tail: number;
  sent: number;
  head: number;
  /** Consecutive deaths before becoming ready, for the restart back-off. */
  failures: number;
  respawnTimer: ReturnType<typeof setTimeout> | undefined;
}

type FromWorker = { readonly type: 'ready' } | { readonly type: 'unwrapped'; readonly start: number; readonly count: number };

const CLOSED: UnwrapOutcome = Object.freeze({ kind: 'error', code: 'ERR_LINK_CLOSED' });
const WORKER_LOST: UnwrapOutcome = Object.freeze({ kind: 'error', code: 'ERR_SERVER' });
const BAD_LENGTH: UnwrapOutcome = Object.freeze({ kind: 'error', code: 'ERR_SPHINX_LENGTH' });

function resolveGeometry(g: UnwrapPoolOptions['geometry']): Geometry {
  if (typeof g !== 'object' || g === null) throw new TypeError(`"geometry" expected object, got ${g === null ? 'null' : typeof g}`);
  if ('packetLength' in g) return geometryFromParams(geometryParams(g));
  return geometryFromUserPayload(g.hops, g.userPayloadLength, g.withSurb);
}

/**
 * A pool of Sphinx unwrappers.
 *
 * @example
 * const pool = new UnwrapPool({ geometry: defaultGeometry(), workers: availableParallelism() - 1, maxInFlight: 4096 });
 * pool.setKey(epoch, mixPrivateKey);
 * const p = pool.unwrap(packet, [epoch]);
 * if (p === null) metrics.drop('queue_full');
 * else handle(await p);
 */
export class UnwrapPool implements Unwrapper {
  readonly geometry: Geometry;
  readonly workers: number;
  readonly maxInFlight: number;
  readonly maxBatch: number;
  readonly #sphinx: Sphinx;
  readonly #spawnWorker: (url: URL, options: WorkerOptions) => Worker;
  readonly #allocatePacket: (() => Uint8Array) | null;
  readonly #keys = new Map<number, Uint8Array>();
  readonly #slots: Slot[] = [];
  #inFlight = 0;
  #flushScheduled = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #restarts = 0;
  #readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  // Inline mode (workers: 0): packets waiting for the microtask.
  #inline: { packet: Uint8Array; epochs: readonly number[]; resolve: Resolve }[] = [];
  #inlineScheduled = false;

  /**
   * Starts the workers (they load in the background; `ready()` waits for them).
   * @throws {TypeError|RangeError} for options of the wrong type or range;
   *   {BackchannelError} ERR_SPHINX_GEOMETRY for a bad geometry.
   */
  constructor(options: UnwrapPoolOptions) {
    this.geometry = resolveGeometry(options.geometry);
    aint('workers', options.workers, 0, MAX_UNWRAP_WORKERS);
    aint('maxInFlight', options.maxInFlight, 1, MAX_UNWRAP_IN_FLIGHT);
    const maxBatch = options.maxBatch ?? DEFAULT_UNWRAP_BATCH;
    aint('maxBatch', maxBatch, 1, MAX_UNWRAP_BATCH);
    this.workers = options.workers;
    this.maxInFlight = options.maxInFlight;
    this.#sphinx = new Sphinx(this.geometry, nodeBackend);
    this.#spawnWorker = options.spawnWorker ?? ((url, opts) => new Worker(url, opts));
    this.#allocatePacket = options.allocatePacket ?? null;
    if (this.#allocatePacket !== null) {
      const probe: unknown = this.#allocatePacket();
      if (!(probe instanceof Uint8Array) || probe.length !== this.geometry.packetLength) throw new RangeError(`"allocatePacket" expected to give ${this.geometry.packetLength} bytes`);
    }
    if (this.workers === 0) {
      this.maxBatch = maxBatch;
      return;
    }
    const perSlot = ringLayout(1, this.geometry.packetLength).bytes;
    const capacity = Math.max(1, Math.min(Math.ceil(this.maxInFlight / this.workers), Math.floor(MAX_RING_BYTES / perSlot)));
    this.maxBatch = Math.min(maxBatch, capacity);
    const layout = ringLayout(capacity, this.geometry.packetLength);
    for (let i = 0; i < this.workers; i++) {
      const ring = new SharedArrayBuffer(layout.bytes);
      const slot: Slot = {
        index: i,
        worker: null,
        ready: false,
        ring,
        epochs: new Float64Array(ring, layout.epochsOffset, capacity * EPOCH_STRIDE),
        records: new Uint8Array(ring, layout.recordsOffset, capacity * RECORD_LENGTH),
        packets: new Uint8Array(ring, layout.packetsOffset, capacity * this.geometry.packetLength),
        resolvers: new Array<Resolve | undefined>(capacity).fill(undefined),
        tail: 0,
        sent: 0,
        head: 0,
        failures: 0,
        respawnTimer: undefined,
      };
      this.#slots.push(slot);
      this.#spawn(slot);
    }
  }

  /** Packets accepted by `unwrap` and not yet answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Workers restarted after dying. */
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * Resolves when every worker has loaded (at once with workers: 0). Not needed before `unwrap`,
   * which queues behind the loading; useful to keep start-up out of a measurement.
   * @throws {BackchannelError} (rejects) ERR_SERVER when a worker dies before it is ready,
   *   ERR_LINK_CLOSED when the pool is closed.
   */
  ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new BackchannelError('ERR_LINK_CLOSED', 'mix: unwrap pool closed'));
    if (this.#allReady()) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
    // Someone waits for the workers: keep the process alive until they are up.
    for (const slot of this.#slots) {
      slot.respawnTimer?.ref();
      this.#updateRef(slot);
    }
    return p;
  }

  /**
   * Sets (or replaces) the mix private key for `epoch`, in every worker. The pool keeps a copy,
   * zeroed by deleteKey or close; the caller may wipe its own. Ignored once the pool is closed.
   * @throws {TypeError|RangeError} for an epoch that is not a non-negative safe integer or a key
   *   that is not 32 bytes.
   */
  setKey(epoch: number, privateKey: Uint8Array): void {
    aint('epoch', epoch, 0, Number.MAX_SAFE_INTEGER);
    abytes('privateKey', privateKey, X25519_PRIVATE_KEY_LENGTH);
    if (this.#closed) return;
    wipe(this.#keys.get(epoch));
    const key = privateKey.slice();
    this.#keys.set(epoch, key);
    for (const slot of this.#slots) if (slot.worker !== null) this.#sendKey(slot.worker, epoch, key);
  }

  /**
   * Forgets the key for `epoch`, zeroing every copy. Packets already handed to a worker may still
   * be opened with it.
   * @throws {TypeError|RangeError} for an epoch that is not a non-negative safe integer.
   */
  deleteKey(epoch: number): void {
    aint('epoch', epoch, 0, Number.MAX_SAFE_INTEGER);
    const key = this.#keys.get(epoch);
    if (key === undefined) return;
    wipe(key);
    this.#keys.delete(epoch);
    for (const slot of this.#slots) slot.worker?.postMessage({ type: 'deleteKey', epoch });
  }

  /** The epochs that have a key, ascending. */
  epochs(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  /**
   * Unwraps `packet` with the key of the first of `epochs` whose MAC matches. The packet is
   * copied before this returns, so the caller may reuse its buffer. Returns null, accepting
   * nothing, when `maxInFlight` packets are already in flight (or the least-loaded worker's ring
   * is full, which only a ring capped by its byte bound or a dead worker brings about). A packet of the wrong length
   * resolves at once as ERR_SPHINX_LENGTH; after close every packet resolves as ERR_LINK_CLOSED.
   * @throws {TypeError|RangeError} when `packet` is not a Uint8Array, or `epochs` is not 1 to
   *   MAX_EPOCHS_PER_UNWRAP non-negative safe integers.
   */
  unwrap(packet: Uint8Array, epochs: readonly number[]): Promise<UnwrapOutcome> | null {
    let resolve!: Resolve;
    const promise = new Promise<UnwrapOutcome>((r) => {
      resolve = r;
    });
    return this.submit(packet, epochs, resolve) ? promise : null;
  }

  /**
   * As `unwrap`, with a callback instead of a promise (no promise, no reaction job per packet):
   * `done` gets the outcome, never synchronously. Returns false, accepting nothing (and `done`
   * is never called), when `unwrap` would return null.
   * @throws {TypeError|RangeError} as `unwrap`.
   */
  submit(packet: Uint8Array, epochs: readonly number[], done: (outcome: UnwrapOutcome) => void): boolean {
    abytes('packet', packet);
    if (!Array.isArray(epochs)) throw new TypeError(`"epochs" expected array, got ${typeof epochs}`);
    aint('epochs.length', epochs.length, 1, MAX_EPOCHS_PER_UNWRAP);
    for (let e = 0; e < epochs.length; e++) aint('epoch', epochs[e], 0, Number.MAX_SAFE_INTEGER);
    if (this.#closed) return this.#later(done, CLOSED);
    if (this.#inFlight >= this.maxInFlight) return false;
    const size = this.geometry.packetLength;
    if (packet.length !== size) return this.#later(done, BAD_LENGTH);

    if (this.workers === 0) {
      this.#inFlight++;
      // Copied at once (the caller may reuse its buffer), into where a forward packet goes: it is
      // then opened in place there.
      const copy = this.#allocatePacket?.() ?? new Uint8Array(size);
      copy.set(packet);
      this.#inline.push({ packet: copy, epochs: epochs.slice(), resolve: done });
      if (!this.#inlineScheduled) {
        this.#inlineScheduled = true;
        queueMicrotask(this.#drainInline);
      }
      return true;
    }

    const slot = this.#leastLoaded();
    if (slot === undefined) return this.#later(done, WORKER_LOST);
    const capacity = slot.resolvers.length;
    if (slot.head - slot.tail >= capacity) return false;
    this.#inFlight++;
    const at = slot.head % capacity;
    slot.head++;
    slot.packets.set(packet, at * size);
    const off = at * EPOCH_STRIDE;
    slot.epochs[off] = epochs.length;
    for (let e = 0; e < epochs.length; e++) slot.epochs[off + 1 + e] = epochs[e]!;
    slot.resolvers[at] = done;
    if (slot.head - slot.sent >= this.maxBatch) this.#send(slot);
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // setImmediate runs after the I/O callbacks of this loop turn: packets read from several
      // links in one turn share a message.
      setImmediate(this.#flush);
    }
    return true;
  }

  /** Calls `done(outcome)` in a microtask (an outcome is never given synchronously); true. */
  #later(done: Resolve, outcome: UnwrapOutcome): boolean {
    queueMicrotask(() => done(outcome));
    return true;
  }

  /**
   * Stops the workers and zeroes every key. Packets not yet answered resolve as ERR_LINK_CLOSED.
   * Each worker gets CLOSE_GRACE_MS to finish what it holds and zero its own keys before it is
   * terminated. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    for (const item of this.#inline.splice(0)) item.resolve(CLOSED);
    const exits: Promise<void>[] = [];
    for (const slot of this.#slots) {
      clearTimeout(slot.respawnTimer);
      slot.respawnTimer = undefined;
      this.#fail(slot, CLOSED, true);
      const w = slot.worker;
      slot.worker = null;
      slot.ready = false;
      if (w !== null) exits.push(this.#stopWorker(w));
    }
    this.#inFlight = 0;
    for (const k of this.#keys.values()) wipe(k);
    this.#keys.clear();
    for (const w of this.#readyWaiters.splice(0)) w.reject(new BackchannelError('ERR_LINK_CLOSED', 'mix: unwrap pool closed'));
    // The rings may hold payloads a worker unwrapped during its grace period: zero them once no
    // worker can write there any more.
    this.#closing = Promise.all(exits).then(() => {
      for (const slot of this.#slots) new Uint8Array(slot.ring).fill(0);
    });
    return this.#closing;
  }

  /** Fault injection for tests: terminates worker `index` without telling the pool, as a crash. */
  readonly #drainInline = (): void => {
    this.#inlineScheduled = false;
    const items = this.#inline;
    this.#inline = [];
    for (const { packet, epochs, resolve } of items) {
      const outcome = unwrapWithKeys(this.#sphinx, this.#keys, packet, epochs, 0, epochs.length, true);
      this.#inFlight--;
      resolve(outcome);
    }
  };

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    for (const slot of this.#slots) if (slot.head > slot.sent) this.#send(slot);
  };

  #leastLoaded(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.#slots) if (s.worker !== null && (best === undefined || s.head - s.tail < best.head - best.tail)) best = s;
    return best;
  }

  /** Announces the slot's written packets to its worker. */
  #send(slot: Slot): void {
    const count = slot.head - slot.sent;
    if (count === 0) return;
    const w = slot.worker;
    if (w === null) {
      // The worker died while these were being written and no other could take them.
      this.#fail(slot, WORKER_LOST, true);
      return;
    }
    const start = slot.sent;
    const wasIdle = slot.tail === slot.sent;
    slot.sent = slot.head;
    if (wasIdle) this.#updateRef(slot);
    w.postMessage({ type: 'unwrap', start, count });
  }

  /**
   * Resolves the packets at positions [slot.tail, end) as `outcome` (or, when it is undefined, as
   * the worker left them in the ring), zeroes their slots and frees them.
   */
  #settle(slot: Slot, end: number, outcome: UnwrapOutcome | undefined): void {
    const capacity = slot.resolvers.length;
    const size = this.geometry.packetLength;
    for (let p = slot.tail; p < end; p++) {
      const at = p % capacity;
      const resolve = slot.resolvers[at];
      slot.resolvers[at] = undefined;
      const packet = slot.packets.subarray(at * size, (at + 1) * size);
      const record = slot.records.subarray(at * RECORD_LENGTH, (at + 1) * RECORD_LENGTH);
      const out = outcome ?? decodeOutcome(packet, record, this.#allocatePacket);
      // A delivered payload (or what a failed unwrap left) is zeroed before the slot carries the
      // next packet; a forward packet is what goes on the wire anyway, and the next packet
      // overwrites it whole.
      if (out.kind !== 'forward') packet.fill(0);
      record.fill(0);
      this.#inFlight--;
      resolve?.(out);
    }
    slot.tail = end;
  }

  #sendKey(w: Worker, epoch: number, key: Uint8Array): void {
    // A fresh copy whose buffer is transferred: nothing of it stays behind on this thread.
    const k = key.slice();
    w.postMessage({ type: 'setKey', epoch, key: k }, [k.buffer]);
  }

  #onMessage(slot: Slot, w: Worker, msg: FromWorker): void {
    if (slot.worker !== w) return;
    if (msg.type === 'ready') {
      slot.ready = true;
      slot.failures = 0;
      if (this.#allReady()) for (const r of this.#readyWaiters.splice(0)) r.resolve();
      for (const s of this.#slots) this.#updateRef(s);
      return;
    }
    // Ranges come back in the order they were announced; anything else is not ours to settle.
    if (msg.start !== slot.tail || msg.count < 1 || msg.start + msg.count > slot.sent) return;
    this.#settle(slot, msg.start + msg.count, undefined);
    if (slot.tail === slot.sent) this.#updateRef(slot);
  }

  #spawn(slot: Slot): void {
    const data: UnwrapWorkerData = { mark: WORKER_MARK, geometry: geometryParams(this.geometry), ring: slot.ring, capacity: slot.resolvers.length };
    const w = this.#spawnWorker(new URL('./unwrap-worker.js', import.meta.url), { workerData: data });
    slot.worker = w;
    slot.ready = false;
    w.on('message', (msg: FromWorker) => this.#onMessage(slot, w, msg));
    // 'error' is followed by 'exit', where the slot is dealt with; without a listener the
    // worker's exception would be thrown on this thread.
    w.on('error', () => {});
    w.on('exit', () => this.#onExit(slot, w));
    // After the listeners: adding a 'message' listener refs the worker again.
    this.#updateRef(slot);
    for (const [epoch, key] of this.#keys) this.#sendKey(w, epoch, key);
  }

  #onExit(slot: Slot, w: Worker): void {
    if (slot.worker !== w) return;
    const wasReady = slot.ready;
    slot.worker = null;
    slot.ready = false;
    this.#fail(slot, WORKER_LOST, false);
    if (!wasReady) {
      slot.failures++;
      for (const r of this.#readyWaiters.splice(0)) r.reject(new BackchannelError('ERR_SERVER', 'mix: an unwrap worker failed to start'));
      for (const s of this.#slots) this.#updateRef(s);
    }
    if (this.#closed) return;
    this.#restarts++;
    const delay = slot.failures === 0 ? 0 : Math.min(RESPAWN_MAX_MS, RESPAWN_BASE_MS * 2 ** (slot.failures - 1));
    if (delay === 0) {
      this.#spawn(slot);
    } else {
      slot.respawnTimer = setTimeout(() => {
        slot.respawnTimer = undefined;
        if (!this.#closed) this.#spawn(slot);
      }, delay);
      slot.respawnTimer.unref();
    }
  }

  /**
   * Resolves what the slot's worker holds as `outcome`, and the packets written but not yet
   * announced too when `withOpen` (those can go to the worker that replaces a dead one).
   */
  #fail(slot: Slot, outcome: UnwrapOutcome, withOpen: boolean): void {
    this.#settle(slot, withOpen ? slot.head : slot.sent, outcome);
    if (withOpen) slot.sent = slot.head;
  }

  #stopWorker(w: Worker): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => void w.terminate().finally(resolve), CLOSE_GRACE_MS);
      w.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      w.ref();
      w.postMessage({ type: 'close' });
    });
  }

  /**
   * An idle worker does not keep the process alive; one with packets in flight, or one that a
   * `ready()` caller waits for, does.
   */
  #updateRef(slot: Slot): void {
    const w = slot.worker;
    if (w === null) return;
    if (slot.sent > slot.tail || (!slot.ready && this.#readyWaiters.length > 0)) w.ref();
    else w.unref();
  }

  #allReady(): boolean {
    return this.#slots.every((s) => s.ready);
  }
}
