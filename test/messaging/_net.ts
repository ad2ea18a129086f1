/**
 * A fake client engine and network for messenger tests: each party's port queues what it sends;
 * the test decides what the network does with it (deliver, drop, duplicate, reorder), and can make
 * a consume fail (a crash before the commit) to check that nothing is lost or shown twice.
 */
import { nodeBackend } from '../../src/crypto/node.js';
import { BackchannelError } from '../../src/errors.js';
import {
  type ClientMessageState,
  type MailAddress,
  MemoryMessengerStore,
  Messenger,
  type MessengerStore,
  type MessengerInboxMessage,
  type MessengerPort,
  type TransactionParticipant,
} from '../../src/messaging/index.js';
import { equalBytes, toHex } from '../../src/util/bytes.js';
import { seededBackend } from '../helpers/seeded.js';

export interface Sent {
  readonly id: Uint8Array;
  readonly to: MailAddress;
  readonly body: Uint8Array;
}

interface ClientState {
  inbox: Array<{ seq: number; body: Uint8Array; receivedAt: number; consumed: boolean }>;
  outbox: Array<Sent & { state: ClientMessageState }>;
  nextSeq: number;
  nextId: number;
}

export class FakeClient implements MessengerPort, TransactionParticipant {
  s: ClientState = { inbox: [], outbox: [], nextSeq: 1, nextId: 1 };
  /** The next consume throws, as a crash before the commit would. */
  crashOnConsume = false;
  /** What ready() answers (false: no network document yet). */
  canSend = true;
  readonly name: string;

  constructor(name: string) {
    this.name = name;
  }

  ready(): boolean {
    return this.canSend;
  }

  send(to: MailAddress, body: Uint8Array): Uint8Array {
    if (!this.canSend) throw new BackchannelError('ERR_CLIENT_STATE', 'no network document yet');
    const id = new TextEncoder().encode(`${this.name}-${String(this.s.nextId++).padStart(8, '0')}`);
    this.s.outbox.push({ id, to: { gateway: to.gateway.slice(), mailbox: to.mailbox.slice() }, body: body.slice(), state: 'pending' });
    return id.slice();
  }

  outgoing(id: Uint8Array): ClientMessageState | null {
    return this.s.outbox.find((o) => equalBytes(o.id, id))?.state ?? null;
  }

  unconsumed(afterSeq: number, limit: number): MessengerInboxMessage[] {
    return this.s.inbox.filter((m) => !m.consumed && m.seq > afterSeq).slice(0, limit).map((m) => ({ seq: m.seq, body: m.body.slice(), receivedAt: m.receivedAt }));
  }

  consume(seq: number): void {
    if (this.crashOnConsume) {
      this.crashOnConsume = false;
      throw new BackchannelError('ERR_CLIENT_STATE', 'simulated crash');
    }
    const m = this.s.inbox.find((x) => x.seq === seq);
    if (m) m.consumed = true;
  }

  snapshot(): unknown {
    return structuredClone(this.s);
  }

  restore(snapshot: unknown): void {
    this.s = snapshot as ClientState;
  }

  /** Puts a message in the inbox (the client reassembled it); returns it. */
  arrive(body: Uint8Array, receivedAt: number): MessengerInboxMessage {
    const seq = this.s.nextSeq++;
    this.s.inbox.push({ seq, body: body.slice(), receivedAt, consumed: false });
    return { seq, body: body.slice(), receivedAt };
  }
}

export interface Party {
  readonly name: string;
  readonly client: FakeClient;
  store: MessengerStore;
  messenger: Messenger;
  readonly address: MailAddress;
  /** Index into client.s.outbox of the first message the network has not taken yet. */
  taken: number;
  /** Further mailboxes the party reads (a rotation's new one). */
  readonly extra: Uint8Array[];
  /** Addresses the messenger gave back (releaseAddress: a card for an introduction that will not complete). */
  readonly released: MailAddress[];
}

export interface Clock {
  ms: number;
}

export class Net {
  readonly parties: Party[] = [];
  readonly clock: Clock = { ms: 1_700_000_000_000 };
  /** Messages in flight: taken from a sender, not yet delivered. */
  readonly wire: Array<{ from: Party; sent: Sent }> = [];
  readonly #makeStore: (name: string) => MessengerStore;
  #restarts = 0;

  /** `makeStore`: each party's store (default: in memory, with the fake client joined to its transactions). */
  constructor(makeStore?: (name: string) => MessengerStore) {
    this.#makeStore = makeStore ?? (() => new MemoryMessengerStore());
  }

  party(name: string): Party {
    const client = new FakeClient(name);
    const store = this.#makeStore(name);
    if (store instanceof MemoryMessengerStore) store.participants.push(client);
    const address: MailAddress = { gateway: new Uint8Array(32).fill(this.parties.length + 1), mailbox: new Uint8Array(32).fill(0x80 + this.parties.length) };
    const crypto = seededBackend(nodeBackend, new TextEncoder().encode(`party ${name}`));
    const released: MailAddress[] = [];
    const messenger = new Messenger({ port: client, store, crypto, now: () => this.clock.ms, ourAddressForNewContact: () => address, releaseAddress: (x) => released.push(x) });
    const p: Party = { name, client, store, messenger, address, taken: 0, extra: [], released };
    this.parties.push(p);
    return p;
  }

  /** A new Messenger over the party's store and client (a restart), which processes the backlog; `store` replaces the store (reopened). */
  restart(p: Party, store?: MessengerStore): void {
    if (store !== undefined) p.store = store;
    // The seed names the restart, not only the time: two restarts at the same clock reading would
    // otherwise draw the same "random" message ids and keys, which a real CSPRNG never does.
    this.#restarts++;
    const crypto = seededBackend(nodeBackend, new TextEncoder().encode(`party ${p.name} restart ${this.#restarts} ${this.clock.ms}`));
    p.messenger = new Messenger({ port: p.client, store: p.store, crypto, now: () => this.clock.ms, ourAddressForNewContact: () => p.address, releaseAddress: (x) => p.released.push(x) });
    p.messenger.start();
  }

  /** Makes a and b contacts (a names b `bName`, b names a `aName`). */
  introduce(a: Party, aName: string, b: Party, bName: string): void {
    const ca = a.messenger.newCard();
    const cb = b.messenger.newCard();
    a.messenger.addContact(bName, ca, cb);
    b.messenger.addContact(aName, cb, ca);
  }

  /** Moves every new message of every party onto the wire. */
  collect(): void {
    for (const p of this.parties) {
      while (p.taken < p.client.s.outbox.length) this.wire.push({ from: p, sent: p.client.s.outbox[p.taken++]! });
    }
  }

  /** Delivers one message from the wire (by index); its sender's client reports it delivered. */
  deliver(i: number, opts: { keep?: boolean } = {}): boolean {
    const w = this.wire[i]!;
    if (!opts.keep) this.wire.splice(i, 1);
    const to = this.parties.find((p) => equalBytes(p.address.mailbox, w.sent.to.mailbox) || p.extra.some((x) => equalBytes(x, w.sent.to.mailbox)));
    if (to === undefined) throw new Error(`no party at ${toHex(w.sent.to.mailbox).slice(0, 8)}`);
    this.clock.ms += 10;
    const m = to.client.arrive(w.sent.body, this.clock.ms);
    const taken = to.messenger.handleInbox(m);
    const o = w.from.client.s.outbox.find((x) => equalBytes(x.id, w.sent.id))!;
    if (o.state === 'pending') {
      o.state = 'delivered';
      w.from.messenger.onOutgoing(o.id);
    }
    return taken;
  }

  /** The client gives up on a message on the wire: it is lost. */
  lose(i: number): void {
    const [w] = this.wire.splice(i, 1);
    const o = w!.from.client.s.outbox.find((x) => equalBytes(x.id, w!.sent.id))!;
    o.state = 'failed';
    w!.from.messenger.onOutgoing(o.id);
  }

  /** Delivers everything, in order, until nothing more is sent. */
  settle(): void {
    for (let rounds = 0; rounds < 100; rounds++) {
      this.collect();
      if (this.wire.length === 0) return;
      while (this.wire.length > 0) this.deliver(0);
    }
    throw new Error('the network did not settle');
  }
}
