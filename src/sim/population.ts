/**
 * A population client: the Loopix traffic of one user, for simulations of thousands of them, where
 * the full client (src/client/client.ts, with its store, envelopes and retransmissions) would cost
 * more than the network it drives. It uses the client's own pieces: the Poisson clock
 * (src/client/poisson.ts), path choice and per-hop delays (src/pki/route.ts), the payload
 * layout, the wire codec and a packet format; what it leaves out is reliability (no SURB, no
 * acknowledgement, no retransmission) and the envelope around the payload.
 *
 * At each event of its send clock it puts exactly one packet on its gateway link: its oldest
 * waiting real message, or a drop cover packet. Its loop clock sends loop cover packets to its
 * own mailbox, and it fetches its mailbox at a constant rate.
 */
import type { Clock } from '../ops/clock.js';
import { PoissonClock, hopDelaysMs } from '../client/poisson.js';
import { DROP_MAILBOX } from '../client/client.js';
import type { GatewayLink } from '../client/client.js';
import { encodeForwardPayload } from '../sphinx/payload.js';
import { chooseMixes, gateways, pathHops } from '../pki/route.js';
import type { RandomInt } from '../pki/route.js';
import type { ConsensusDocument, DocumentNode, SignedDocument } from '../pki/types.js';
import type { PacketFormat } from '../sphinx/format.js';
import { WireCodec } from '../wire/commands.js';

export interface PopulationInit {
  readonly clock: Clock;
  readonly u01: () => number;
  readonly rand: RandomInt;
  readonly format: PacketFormat;
  readonly codec: WireCodec;
  /** Our mailbox id, and our gateway's index in the documents' node list. */
  readonly mailbox: Uint8Array;
  readonly gateway: number;
  readonly document: () => SignedDocument;
  /** Rates per second, as the consensus gives them (PoissonClock's unit). */
  readonly sendRate: () => number;
  readonly loopRate: () => number;
  /** Between two mailbox fetches; 0 for none. */
  readonly fetchIntervalMs: number;
}

export interface Destination {
  /** The recipient's gateway, by index in the documents' node list. */
  readonly gateway: number;
  readonly mailbox: Uint8Array;
}

export class PopulationClient {
  readonly #i: PopulationInit;
  readonly #send: PoissonClock;
  readonly #loop: PoissonClock;
  readonly #queue: Destination[] = [];
  #queueHead = 0;
  #link: (GatewayLink & { setHandler?: (h: (m: Uint8Array) => void) => void }) | null = null;
  #fetchTimer: unknown = null;
  #nextSeq = 0;
  #payload: Uint8Array | null = null;
  /** The gateways of the last document seen (drop cover goes to a random one). */
  #gateways: DocumentNode[] = [];
  #gatewaysOf: ConsensusDocument | null = null;
  readonly sent = { real: 0, drop: 0, loop: 0 };

  constructor(init: PopulationInit) {
    this.#i = init;
    this.#send = new PoissonClock(init.clock, init.sendRate, init.u01, () => this.#onSend());
    this.#loop = new PoissonClock(init.clock, init.loopRate, init.u01, () => this.#onLoop());
  }

  /** Real messages waiting for the send clock. */
  get waiting(): number {
    return this.#queue.length - this.#queueHead;
  }

  start(link: GatewayLink & { setHandler?: (h: (m: Uint8Array) => void) => void }): void {
    this.#link = link;
    link.setHandler?.((m) => this.#onMessage(m));
    this.#send.start();
    this.#loop.start();
    if (this.#i.fetchIntervalMs > 0) this.#scheduleFetch();
  }

  stop(): void {
    this.#send.stop();
    this.#loop.stop();
    if (this.#fetchTimer !== null) this.#i.clock.clearTimer(this.#fetchTimer);
    this.#fetchTimer = null;
    this.#link = null;
  }

  /** Queues one real message (one packet) for the next send event. */
  write(to: Destination): void {
    this.#queue.push(to);
  }

  #packet(to: DocumentNode, mailbox: Uint8Array): Uint8Array {
    const doc = this.#i.document().document;
    const route = [doc.nodes[this.#i.gateway]!, ...chooseMixes(doc, this.#i.rand), to];
    // As the client: the first hop (our gateway) holds nothing; each mix an exponential delay.
    const delays = hopDelaysMs(this.#i.u01, doc.params.mixMeanDelayMs, route.length - 1, true);
    this.#payload ??= encodeForwardPayload(this.#i.format.geometry, new Uint8Array(0), null);
    return this.#i.format.createPacket(pathHops(route, doc.epoch, delays, { recipient: mailbox }), this.#payload);
  }

  #put(packet: Uint8Array): boolean {
    const link = this.#link;
    if (link === null) return false;
    try {
      // The frame around the packet when it was made inside one (the simulation's allocator).
      return link.trySend(this.#i.codec.sendPacketFrame(packet));
    } catch {
      return false;
    }
  }

  #onSend(): void {
    if (this.#queueHead < this.#queue.length) {
      const to = this.#queue[this.#queueHead]!;
      if (this.#put(this.#packet(this.#i.document().document.nodes[to.gateway]!, to.mailbox))) {
        this.#queueHead++;
        if (this.#queueHead > 64 && this.#queueHead * 2 > this.#queue.length) {
          this.#queue.splice(0, this.#queueHead);
          this.#queueHead = 0;
        }
        this.sent.real++;
      }
      return;
    }
    const doc = this.#i.document().document;
    if (doc !== this.#gatewaysOf) {
      this.#gatewaysOf = doc;
      this.#gateways = gateways(doc);
    }
    const gws = this.#gateways;
    if (this.#put(this.#packet(gws[this.#i.rand(gws.length)]!, DROP_MAILBOX))) this.sent.drop++;
  }

  #onLoop(): void {
    if (this.#put(this.#packet(this.#i.document().document.nodes[this.#i.gateway]!, this.#i.mailbox))) this.sent.loop++;
  }

  #scheduleFetch(): void {
    this.#fetchTimer = this.#i.clock.setTimer(() => {
      this.#fetchTimer = null;
      const link = this.#link;
      if (link === null) return;
      try {
        link.trySend(this.#i.codec.encode({ kind: 'retrieve_message', sequence: this.#nextSeq }));
      } catch {
        return;
      }
      this.#scheduleFetch();
    }, this.#i.fetchIntervalMs);
  }

  #onMessage(m: Uint8Array): void {
    try {
      const cmd = this.#i.codec.decode(m);
      if (cmd.kind === 'message' && !cmd.empty && cmd.sequence >= this.#nextSeq) this.#nextSeq = cmd.sequence + 1;
    } catch {
      // not ours to judge here: the gateway is the real one
    }
  }
}
