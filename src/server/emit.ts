/**
 * A gateway's own traffic into layer 1, at a rate that does not depend on what its clients do.
 *
 * A gateway sends two kinds of packets into the network: its clients' packets, which come at the
 * clients' own constant Poisson rates, and packets of its own: acknowledgements (a stored entry's
 * SURB made into a reply). Sent as soon as each entry was committed, acknowledgements would be
 * countable from the wire: (frames the gateway sends into layer 1) − (packets its clients send it)
 * would be the number of messages and fragments its mailboxes took in. So a gateway emits its own
 * packets on a Poisson clock whose rate depends only on how many clients are linked (which the
 * wire shows anyway): at each tick it sends the oldest waiting acknowledgement, or, when none
 * waits, a cover packet of its own (through one mix per layer to a random gateway's drop mailbox).
 * An acknowledgement takes a cover packet's place; it never adds a frame (Loopix's providers send
 * loops the same way; DESIGN.md, "Traffic rule"; docs/network.md).
 *
 * Acknowledgements wait in a bounded queue: past `maxQueued` the oldest is dropped
 * (`ack_queue_full`), and one that waited longer than `maxWaitMs` is dropped when its turn comes
 * (`ack_expired`): by then its sender has sent the fragment again. Portable: no `node:` imports.
 */
import type { Clock } from '../ops/clock.js';
import type { DropReason } from '../ops/metrics.js';
import { chooseMixes, gateways, pathHops } from '../pki/route.js';
import type { RandomInt } from '../pki/route.js';
import type { ConsensusDocument, DocumentNode } from '../pki/types.js';
import { RECIPIENT_ID_LENGTH } from '../sphinx/constants.js';
import type { PacketFormat } from '../sphinx/format.js';
import { hopDelaysMs, PoissonClock } from '../client/poisson.js';

/** Acknowledgements waiting for a slot at most; past it the oldest goes (the sender retransmits). */
export const MAX_QUEUED_ACKS = 4096;
/**
 * How long an acknowledgement may wait for a slot. A sender retransmits after a few round trips
 * (docs/client.md), so an older acknowledgement would only confirm a copy already on its way.
 */
export const MAX_ACK_WAIT_MS = 30_000;

/** The all-zero mailbox: what ends there is drop cover, discarded by the gateway it reaches. */
const DROP_RECIPIENT = new Uint8Array(RECIPIENT_ID_LENGTH);

/**
 * A gateway's cover packet: through one random mix per layer to a random gateway's drop mailbox
 * (perhaps the sender's own), with the delays a client draws, so that at the mixes it looks as
 * an acknowledgement does. Null when the document lists no gateway.
 * @throws {BackchannelError} ERR_SPHINX_PATH for an empty layer or a node without a key for the epoch.
 */
export function coverPacket(doc: ConsensusDocument, format: PacketFormat, rand: RandomInt, u01: () => number): { readonly peer: DocumentNode; readonly packet: Uint8Array } | null {
  const exits = gateways(doc);
  if (exits.length === 0) return null;
  const route = [...chooseMixes(doc, rand), exits[rand(exits.length)]!];
  const delays = hopDelaysMs(u01, doc.params.mixMeanDelayMs, route.length - 1, false);
  const packet = format.createPacket(pathHops(route, doc.epoch, delays, { recipient: DROP_RECIPIENT }), new Uint8Array(format.geometry.forwardPayloadLength));
  return { peer: route[0]!, packet };
}

/** A packet ready to go: its first hop and the send_packet command that carries it. */
export interface Outgoing {
  readonly peer: DocumentNode;
  readonly frame: Uint8Array;
}

export interface EmitterInit {
  readonly clock: Clock;
  /** Uniform draws in (0, 1] from the CSPRNG (a seeded stream in the simulator). */
  readonly u01: () => number;
  /** The emission rate now, per second (read again for every gap). */
  readonly ratePerS: () => number;
  /** A fresh cover packet, or null when none can be made (no document yet). */
  readonly cover: () => Outgoing | null;
  readonly send: (out: Outgoing) => void;
  readonly drop: (reason: DropReason) => void;
  /** Counts what each tick sent. */
  readonly sent?: (kind: 'ack' | 'cover') => void;
  readonly maxQueued?: number;
  readonly maxWaitMs?: number;
}

interface Waiting {
  readonly out: Outgoing;
  readonly since: number;
}

/** The gateway's emission clock and its queue of acknowledgements. */
export class Emitter {
  readonly #init: EmitterInit;
  readonly #clock: PoissonClock;
  readonly #maxQueued: number;
  readonly #maxWaitMs: number;
  /** A ring of waiting acknowledgements, oldest at #head. */
  #queue: (Waiting | undefined)[] = [];
  #head = 0;
  #size = 0;

  constructor(init: EmitterInit) {
    this.#init = init;
    this.#maxQueued = init.maxQueued ?? MAX_QUEUED_ACKS;
    this.#maxWaitMs = init.maxWaitMs ?? MAX_ACK_WAIT_MS;
    if (!Number.isInteger(this.#maxQueued) || this.#maxQueued < 1) throw new RangeError('emitter: maxQueued must be a positive integer');
    this.#queue = new Array<Waiting | undefined>(Math.min(this.#maxQueued, 64));
    this.#clock = new PoissonClock(init.clock, init.ratePerS, init.u01, () => this.#tick());
  }

  /** Acknowledgements waiting for a slot. */
  get queued(): number {
    return this.#size;
  }

  start(): void {
    this.#clock.start();
  }

  /** Stops the clock; what still waits is dropped and returned as a count. */
  stop(): number {
    this.#clock.stop();
    const n = this.#size;
    this.#queue = [];
    this.#head = this.#size = 0;
    return n;
  }

  /** Queues an acknowledgement for the next slot; the oldest goes when the queue is full. */
  enqueue(out: Outgoing): void {
    if (this.#size === this.#maxQueued) {
      this.#shift();
      this.#init.drop('ack_queue_full');
    }
    if (this.#size === this.#queue.length) this.#grow();
    this.#queue[(this.#head + this.#size) % this.#queue.length] = { out, since: this.#init.clock.now() };
    this.#size++;
  }

  /**
   * One slot: the oldest acknowledgement still worth sending, else a cover packet. The cover packet
   * is made in every slot, and thrown away when an acknowledgement goes instead: the work of a
   * slot (most of it the packet's X25519s, on the thread that also answers fetches) must not be
   * lighter when acknowledgements flow, or fetch answers would come faster while mail arrives.
   */
  #tick(): void {
    const now = this.#init.clock.now();
    const cover = this.#init.cover();
    while (this.#size > 0) {
      const w = this.#shift()!;
      if (now - w.since > this.#maxWaitMs) {
        this.#init.drop('ack_expired');
        continue;
      }
      this.#init.send(w.out);
      this.#init.sent?.('ack');
      return;
    }
    if (cover === null) return;
    this.#init.send(cover);
    this.#init.sent?.('cover');
  }

  #shift(): Waiting | undefined {
    const w = this.#queue[this.#head];
    this.#queue[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#queue.length;
    this.#size--;
    return w;
  }

  #grow(): void {
    const next = new Array<Waiting | undefined>(Math.min(this.#maxQueued, this.#queue.length * 2));
    for (let i = 0; i < this.#size; i++) next[i] = this.#queue[(this.#head + i) % this.#queue.length];
    this.#queue = next;
    this.#head = 0;
  }
}
