/**
 * The simulator's network: links in memory, in virtual time. A node listens on its advertised
 * address and a peer connects to it, as over TCP; both ends get a SimLink that carries whole
 * messages after a fixed latency, in order. An observer sees every message on every link, with
 * the endpoints' owners: the global passive adversary of the threat model.
 *
 * There is no handshake and no encryption: a link's remote static key is what the connecting side
 * claims. The accept policy of the listener still runs, so a mix refuses links from anyone but
 * its previous layer, as it does on TCP.
 */
import { BackchannelError } from '../errors.js';
import type { MessageLink } from '../link/message-link.js';
import type { ListenPolicy } from '../server/node.js';
import type { GatewayLink } from '../client/client.js';
import type { SimClock } from './clock.js';

/** Sees each message when it arrives: who sent it, who gets it (owner numbers), the bytes. */
export type LinkObserver = (from: number, to: number, message: Uint8Array) => void;

interface Listener {
  readonly owner: number;
  readonly policy: ListenPolicy;
}

function closedError(): BackchannelError {
  return new BackchannelError('ERR_LINK_CLOSED', 'sim: link closed');
}

/** One end of an in-memory link. */
export class SimLink implements MessageLink, GatewayLink {
  readonly remoteStatic: Uint8Array;
  readonly owner: number;
  #peer: SimLink | null = null;
  readonly #net: SimNet;
  #open = true;
  /**
   * Messages sent and not yet arrived at the peer, oldest first (the latency is fixed, so order
   * holds): #inFlight[#inFlightHead..#inFlightLength). Drained, it starts again from the front.
   */
  readonly #inFlight: Uint8Array[] = [];
  #inFlightHead = 0;
  #inFlightLength = 0;
  /** Arrived messages nobody has read yet (iteration and recv only). */
  readonly #inbox: Uint8Array[] = [];
  #waiter: ((m: Uint8Array | null) => void) | null = null;
  #handler: ((m: Uint8Array) => void) | null = null;

  constructor(net: SimNet, owner: number, remoteStatic: Uint8Array) {
    this.#net = net;
    this.owner = owner;
    this.remoteStatic = remoteStatic;
  }

  static pair(net: SimNet, a: { owner: number; publicKey: Uint8Array }, b: { owner: number; publicKey: Uint8Array }): [SimLink, SimLink] {
    const ab = new SimLink(net, a.owner, b.publicKey);
    const ba = new SimLink(net, b.owner, a.publicKey);
    ab.#peer = ba;
    ba.#peer = ab;
    return [ab, ba];
  }

  get isOpen(): boolean {
    return this.#open;
  }

  trySend(message: Uint8Array): boolean {
    const peer = this.#peer;
    if (!this.#open || peer === null) throw closedError();
    this.#inFlight[this.#inFlightLength++] = message;
    this.#net.clock.at(this.#net.clock.now() + this.#net.latencyMs, arriveNext, this);
    return true;
  }

  send(message: Uint8Array): Promise<void> {
    try {
      this.trySend(message);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  recv(): Promise<Uint8Array | null> {
    if (this.#inbox.length > 0) return Promise.resolve(this.#inbox.shift()!);
    if (!this.#open) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const m = await this.recv();
      if (m === null) return;
      yield m;
    }
  }

  readonly setHandler = (handler: (message: Uint8Array) => void): void => {
    this.#handler = handler;
    const queued = this.#inbox.splice(0);
    for (const m of queued) handler(m);
  };

  close(): Promise<unknown> {
    this.#shut();
    const peer = this.#peer;
    if (peer !== null) peer.#shut();
    return Promise.resolve();
  }

  #shut(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#inFlight.length = 0;
    this.#inFlightHead = 0;
    this.#inFlightLength = 0;
    const w = this.#waiter;
    this.#waiter = null;
    if (w !== null) {
      w(null);
      this.#net.clock.settleAfter();
    }
  }

  /** The oldest message in flight reaches the peer. */
  #arrive(): void {
    if (this.#inFlightHead >= this.#inFlightLength) return; // the link closed meanwhile
    const m = this.#inFlight[this.#inFlightHead]!;
    this.#inFlight[this.#inFlightHead++] = EMPTY;
    if (this.#inFlightHead === this.#inFlightLength) this.#inFlightHead = this.#inFlightLength = 0;
    else if (this.#inFlightHead > 1024 && this.#inFlightHead * 2 > this.#inFlightLength) {
      this.#inFlight.copyWithin(0, this.#inFlightHead, this.#inFlightLength);
      this.#inFlight.fill(EMPTY, this.#inFlightLength - this.#inFlightHead, this.#inFlightLength);
      this.#inFlightLength -= this.#inFlightHead;
      this.#inFlightHead = 0;
    }
    const peer = this.#peer;
    if (peer === null || !peer.#open) return;
    this.#net.observe(this.owner, peer.owner, m);
    peer.#take(m);
  }

  #take(m: Uint8Array): void {
    const h = this.#handler;
    if (h !== null) {
      h(m);
      return;
    }
    const w = this.#waiter;
    if (w !== null) {
      this.#waiter = null;
      w(m);
      this.#net.clock.settleAfter();
      return;
    }
    this.#inbox.push(m);
  }

  /** For the event queue: `arriveNext(link)` delivers the link's oldest message in flight. */
  static arrive(link: SimLink): void {
    link.#arrive();
  }
}

const EMPTY = new Uint8Array(0);
const arriveNext = (link: SimLink): void => SimLink.arrive(link);

/** The in-memory network: listeners by address, and the observer. */
export class SimNet {
  readonly clock: SimClock;
  readonly latencyMs: number;
  readonly #listeners = new Map<string, Listener>();
  readonly #observer: LinkObserver | null;
  readonly #links = new Map<number, Set<SimLink>>();

  constructor(clock: SimClock, options: { latencyMs: number; observer?: LinkObserver }) {
    if (!Number.isFinite(options.latencyMs) || options.latencyMs < 0) throw new RangeError('"latencyMs" expected a finite number >= 0');
    this.clock = clock;
    this.latencyMs = options.latencyMs;
    this.#observer = options.observer ?? null;
  }

  observe(from: number, to: number, m: Uint8Array): void {
    this.#observer?.(from, to, m);
  }

  /** Listens on `address` for `owner`; the returned close() stops listening and closes its links. */
  listen(owner: number, address: string, policy: ListenPolicy): { readonly port: number; close(): Promise<void> } {
    if (this.#listeners.has(address)) throw new BackchannelError('ERR_SIM_STATE', 'sim: address already in use');
    this.#listeners.set(address, { owner, policy });
    return {
      port: 0,
      close: () => {
        if (this.#listeners.get(address)?.owner === owner) this.#listeners.delete(address);
        this.closeLinks(owner);
        return Promise.resolve();
      },
    };
  }

  /**
   * Connects `owner` (whose static public key is `publicKey`) to whoever listens on `address`:
   * fails as a refused TCP connection when nobody does, or as a rejected handshake when the
   * listener's policy refuses the key.
   */
  connect(owner: number, publicKey: Uint8Array, address: string, listenerKey: Uint8Array): Promise<SimLink> {
    // The answer is a promise: let it settle before the next event.
    this.clock.settleAfter();
    const l = this.#listeners.get(address);
    if (l === undefined) return Promise.reject(new BackchannelError('ERR_LINK_CONNECT', 'sim: connection refused'));
    if (l.policy.accept(publicKey, new Uint8Array(0)) !== true) return Promise.reject(new BackchannelError('ERR_LINK_REJECTED', 'sim: link refused by the peer'));
    const [mine, theirs] = SimLink.pair(this, { owner, publicKey }, { owner: l.owner, publicKey: listenerKey });
    this.#track(owner, mine);
    this.#track(l.owner, theirs);
    l.policy.onLink(theirs);
    return Promise.resolve(mine);
  }

  /** Closes every link of `owner` (a node failing). */
  closeLinks(owner: number): void {
    const set = this.#links.get(owner);
    if (set === undefined) return;
    this.#links.delete(owner);
    for (const link of set) void link.close();
  }

  #track(owner: number, link: SimLink): void {
    let set = this.#links.get(owner);
    if (set === undefined) {
      set = new Set();
      this.#links.set(owner, set);
    }
    set.add(link);
  }
}
