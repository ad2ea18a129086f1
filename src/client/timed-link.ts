/**
 * Departures at set times on a gateway link: what a link needs to give the engine `sendAt`,
 * `fetchAt` and `setFetchSequence` (client.ts, GatewayLink). The Node client runs one on the
 * link's own thread (node-link-worker.ts); the browser's worker runs one beside its engine.
 *
 * Frames handed over with a time leave at that time, in time order, at once when it has passed.
 * A fetch is made when it leaves, with the last sequence given, so that fetches prepared ahead
 * never ask for an entry the engine has already taken. With `durable`, a new sequence counts only
 * once the store's writes made before it are on disk: `retrieve_message{n}` lets the gateway
 * delete the entries below n, so their effects must outlive a crash first; the frames themselves
 * never wait for the store, so their times do not depend on what it writes.
 * Portable: no `node:` imports.
 */
import { BackchannelError } from '../errors.js';
import type { Clock } from '../ops/clock.js';
import { MESSAGE_BODY_OVERHEAD, WIRE_HEADER_LENGTH, WireCodec } from '../wire/commands.js';

/**
 * Frames waiting for their time or for room on the link, at most. The clocks hand over a few
 * dozen a second, a quarter of a second ahead; this many means the link has stopped taking
 * frames, and `onOverflow` is called (its owner closes the link) rather than let the queue grow.
 */
export const MAX_WAITING_FRAMES = 1024;

/**
 * The engine's codec for the geometry whose commands are `commandLength` long (what the engine's
 * `connect` is given): a packet's length plus a `message` command's overhead.
 * @throws {BackchannelError} ERR_WIRE_LENGTH when no geometry has commands of this length.
 */
export function codecForCommandLength(commandLength: number): WireCodec {
  const codec = new WireCodec({ packetLength: commandLength - WIRE_HEADER_LENGTH - MESSAGE_BODY_OVERHEAD });
  if (codec.commandLength !== commandLength) throw new BackchannelError('ERR_WIRE_LENGTH', 'link: no wire geometry has commands of this length');
  return codec;
}

/** What a TimedLink sends on. */
export interface FrameSink {
  trySend(frame: Uint8Array): boolean;
  send(frame: Uint8Array): Promise<void>;
}

export interface TimedLinkOptions {
  readonly clock: Clock;
  /** The engine's codec for this geometry: fetches are encoded with it when they leave. */
  readonly codec: WireCodec;
  /** Resolves once every store write made so far is durable; without it, a sequence counts at once. */
  readonly durable?: () => Promise<void>;
  /** Called (once) when the link stops taking frames or the queue overflows. */
  readonly onFailure: () => void;
}

/** A frame to send at `at`, or a fetch made when it leaves (`frame` null). */
interface Departure {
  readonly at: number;
  readonly frame: Uint8Array | null;
}

export class TimedLink {
  readonly #sink: FrameSink;
  readonly #o: TimedLinkOptions;
  /** In time order; the clocks hand them over nearly in order, so insertion looks from the back. */
  readonly #queue: Departure[] = [];
  #timer: unknown = null;
  #sequence = 0;
  /** Calls to setFetchSequence so far, and the number of the one whose sequence is in use. */
  #given = 0;
  #applied = 0;
  #closed = false;

  constructor(sink: FrameSink, opts: TimedLinkOptions) {
    this.#sink = sink;
    this.#o = opts;
  }

  /** The sequence fetches ask for now. */
  get sequence(): number {
    return this.#sequence;
  }

  sendAt(frame: Uint8Array, atMs: number): void {
    this.#schedule({ at: atMs, frame });
  }

  fetchAt(atMs: number): void {
    this.#schedule({ at: atMs, frame: null });
  }

  /**
   * The sequence fetches carry from now on (once durable, with `durable`): the last one given wins,
   * larger or not, since a fetch names the entry the engine took last (src/server/fetch.ts) and
   * the gateway answers a client's addresses in turn, not in sequence order.
   */
  setFetchSequence(sequence: number): void {
    const given = ++this.#given;
    const durable = this.#o.durable;
    if (durable === undefined) {
      this.#sequence = sequence;
      return;
    }
    void durable().then(
      () => {
        // A later call that became durable first wins.
        if (given > this.#applied) {
          this.#applied = given;
          this.#sequence = sequence;
        }
      },
      () => undefined, // a failed write: the entries stay at the gateway and are fetched again
    );
  }

  /** Sends `frame` now. */
  sendNow(frame: Uint8Array): void {
    if (!this.#closed) this.#put(frame);
  }

  /** Sends a `retrieve_message` for the current sequence now (the link's own fetch clock, link-clocks.ts). */
  fetchNow(): void {
    if (!this.#closed) this.#put(this.#o.codec.encode({ kind: 'retrieve_message', sequence: this.#sequence }));
  }

  /** Drops what waits; nothing more leaves. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.#o.clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#queue.length = 0;
  }

  #fail(): void {
    if (this.#closed) return;
    this.close();
    this.#o.onFailure();
  }

  #put(frame: Uint8Array): void {
    try {
      if (!this.#sink.trySend(frame)) void this.#sink.send(frame).catch(() => this.#fail());
    } catch {
      this.#fail();
    }
  }

  #schedule(d: Departure): void {
    if (this.#closed) return;
    if (this.#queue.length >= MAX_WAITING_FRAMES) {
      this.#fail();
      return;
    }
    let i = this.#queue.length;
    while (i > 0 && this.#queue[i - 1]!.at > d.at) i--;
    this.#queue.splice(i, 0, d);
    if (i === 0) this.#arm();
  }

  #arm(): void {
    if (this.#timer !== null) this.#o.clock.clearTimer(this.#timer);
    this.#timer = null;
    if (this.#queue.length === 0 || this.#closed) return;
    this.#timer = this.#o.clock.setTimer(() => this.#run(), this.#queue[0]!.at - this.#o.clock.now());
  }

  /** Sends every departure whose time has come, then sets the timer for the next. */
  #run(): void {
    this.#timer = null;
    const now = this.#o.clock.now();
    while (!this.#closed && this.#queue.length > 0 && this.#queue[0]!.at <= now) {
      const d = this.#queue.shift()!;
      this.#put(d.frame ?? this.#o.codec.encode({ kind: 'retrieve_message', sequence: this.#sequence }));
    }
    this.#arm();
  }
}
