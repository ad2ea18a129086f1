/**
 * A gateway's view of its mailboxes: reads now, writes later and elsewhere.
 *
 * The traffic rule of the design notes says a fetch is answered in the same time whatever the
 * mailbox holds. A fetch that deleted what the client confirmed (`retrieve_message{n}`) with a
 * synchronous SQLite write, or that waited behind a group commit of deliveries on the same
 * thread, was answered later when mail was flowing: a wire observer could tell a busy mailbox from
 * an idle one, at the sender (acknowledgements arriving) and at the receiver. So here:
 *
 * - Answering a fetch only reads. Deletions (`retrieve_message{n}`: every entry below n;
 *   `ack{seq}`: one entry) and registrations are recorded in memory at once, so that the next
 *   answer already skips what was deleted, and committed later in groups.
 * - Deliveries, deletions and registrations go to a MailboxWriter (mailbox-writer.ts) in one
 *   group per commit, in that order (the caps see the room that deletions make). In a server the
 *   writer is a thread of its own: nothing on the gateway's main thread writes or waits for an
 *   fsync. A delivery is reported stored only once its group is durable, so an acknowledgement
 *   still means "on the gateway's disk".
 * - Deletions are idempotent (deleting twice, or what is gone, changes nothing). After a crash a
 *   deletion not yet committed is lost and its entry is handed out again: a client that fetches
 *   from its next sequence number never sees it (the gateway answers from n on, and the next
 *   fetch deletes it again), and one that does sees a sequence number it already has and ignores
 *   it (docs/client.md).
 *
 * - Extra mailboxes (aliases) a client registers or revokes over its link are decided here, at
 *   once, from what is committed and what waits (`requestMailbox`), and committed with the next
 *   group. The answer says `pending` until the change is durable, and `ok` only then: a client
 *   asks again until it hears `ok`, so that a registration it relies on survives a crash of the
 *   gateway. Mail for an alias is routed by `route`, which sees waiting changes too.
 *
 * Entries wait for a commit in a bounded queue (`maxPending`, refused with ERR_MAILBOX_FULL beyond);
 * deletions waiting are bounded too (`maxPendingDeletions`, refused beyond, the caller counts it).
 */
import { BackchannelError } from '../errors.js';
import type { Clock } from '../ops/clock.js';
import { aint, equalBytes, idKey, isZero } from '../util/bytes.js';
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_PENDING } from './group-commit.js';
import type { AliasChange, MailboxDeletion, MailboxEntry, MailboxRoute, MailboxStore, PeekedEntry, StoreResult } from './mailbox.js';
import { MAX_MAILBOXES_PER_CLIENT, checkMailboxEntry, checkRecipient } from './mailbox.js';
import type { MailboxActionName, MailboxResultName } from '../wire/commands.js';
import type { MailboxWriter } from './mailbox-writer.js';
import { nodeBackend } from '../crypto/node.js';
import { ownMailbox } from '../pki/intake.js';

/** Deletions waiting for a commit at most (one per mailbox for `retrieve_message`, one per entry for `ack`); at ~60 bytes each, 6 MB. */
export const DEFAULT_MAX_PENDING_DELETIONS = 100_000;
/**
 * How long deletions and registrations wait for a delivery commit to ride on before they are
 * committed on their own. Grouping them keeps a client's fetches (tens a second) from costing an
 * fsync each; a crash loses at most this much of them, which costs only a duplicate answer.
 */
export const DEFAULT_DELETION_COMMIT_MS = 100;
/** Mailboxes whose last committed `retrieve_message` bound is remembered, so that fetches that delete nothing cause no commit. */
const COMMITTED_BOUNDS_REMEMBERED = 100_000;
/** Alias changes waiting for a commit at most; a request beyond it is answered `pending` without being recorded (the client asks again). */
export const DEFAULT_MAX_PENDING_ALIASES = 10_000;

/** The reads a gateway makes on its main thread. */
export type MailboxReader = Pick<MailboxStore, 'isRegistered' | 'peek' | 'route' | 'aliasCount'> & Partial<Pick<MailboxStore, 'clients' | 'forgetRegistered' | 'peekAddress' | 'nextAddress'>>;

/** What answering fetches needs (fetch.ts). */
export interface FetchMailbox {
  /** A client's link opened: its mailbox exists from now on (committed with the next group). */
  register(recipient: Uint8Array): void;
  isRegistered(recipient: Uint8Array): boolean;
  /** As MailboxStore.peek, without what is deleted but not yet committed. Reads only. */
  peek(recipient: Uint8Array, afterSeq?: number): PeekedEntry | null;
  /**
   * As MailboxStore.peekAddress (one address's oldest entry after `afterSeq`), without what is
   * deleted but not yet committed. Reads only. Without it (and nextAddress) fetches are answered
   * oldest first over all of a client's addresses.
   */
  peekAddress?(recipient: Uint8Array, mailbox: Uint8Array | null, afterSeq: number): PeekedEntry | null;
  /** As MailboxStore.nextAddress. Reads only. */
  nextAddress?(recipient: Uint8Array, after: Uint8Array | null | undefined): { readonly mailbox: Uint8Array | null } | null;
  /**
   * Deletes entries that were handed to the client and that it confirmed, now, in memory, without
   * a read (they were read when handed); false when too many deletions wait already.
   */
  deleteHanded?(recipient: Uint8Array, seqs: readonly number[]): boolean;
  /** Deletes every entry below `seq` now, in memory; false when too many deletions wait already. */
  deleteBelow(recipient: Uint8Array, seq: number): boolean;
  /** Deletes one entry now, in memory; false when too many deletions wait already. */
  deleteOne(recipient: Uint8Array, seq: number): boolean;
  /**
   * A client (`owner`, its link key) asks to register or revoke one of its extra mailboxes: the
   * answer, decided at once from what is committed and what waits; a change it accepts is
   * recorded in memory and committed with the next group (`pending` until then). Reads only.
   */
  requestMailbox?(owner: Uint8Array, action: MailboxActionName, mailbox: Uint8Array): MailboxResultName;
}

export interface GatewayMailboxOptions {
  /** Entries per group at most. Default 512 (group-commit.ts). */
  maxBatch?: number;
  /** Entries waiting at most; more resolve at once with ERR_MAILBOX_FULL. Default 10 000. */
  maxPending?: number;
  /** Deletions waiting at most; more are refused. Default 100 000. */
  maxPendingDeletions?: number;
  /** Milliseconds deletions and registrations wait for a group. Default 100. */
  deletionCommitMs?: number;
  /** Active extra mailboxes per client; must be the store's own cap. Default MAX_MAILBOXES_PER_CLIENT. */
  maxMailboxesPerClient?: number;
  /** Alias changes waiting at most. Default 10 000. */
  maxPendingAliases?: number;
}

export interface GatewayMailboxComponents {
  /** Reads on this thread; never written to from here. */
  readonly reader: MailboxReader;
  /** Commits the groups; owned: close() closes it. */
  readonly writer: MailboxWriter;
  /** Times the commit of deletions alone. */
  readonly clock: Clock;
  /** Runs `fn` once the current turn is over (the group of deliveries). Default setImmediate. */
  readonly schedule?: (fn: () => void) => void;
}

/**
 * A copy in a buffer of its own. Not `slice()`: on a Buffer (what the network hands a gateway)
 * that is a view, and posting a view to the writer thread would copy the whole buffer under it.
 */
function own(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

interface Pending {
  entry: MailboxEntry;
  resolve(result: StoreResult): void;
  reject(err: unknown): void;
}

interface PendingBelow {
  readonly recipient: Uint8Array;
  seq: number;
}

interface PendingOnes {
  readonly recipient: Uint8Array;
  readonly seqs: Set<number>;
}

/** Mailboxes for a gateway: reads on the calling thread, writes grouped and handed to a writer. */
export class GatewayMailbox implements FetchMailbox {
  readonly #reader: MailboxReader;
  readonly #writer: MailboxWriter;
  readonly #clock: Clock;
  readonly #schedule: (fn: () => void) => void;
  readonly #maxBatch: number;
  readonly #maxPending: number;
  readonly #maxPendingDeletions: number;
  readonly #deletionCommitMs: number;
  readonly #maxAliases: number;
  readonly #maxPendingAliases: number;
  /** Alias changes decided and not yet committed, by alias id; a revocation replaces a registration. */
  readonly #aliases = new Map<string, AliasChange>();
  #queue: Pending[] = [];
  readonly #registrations = new Map<string, Uint8Array>();
  /** The own mailboxes (src/pki/intake.ts) of the registrations waiting: their owners, by own mailbox id. */
  readonly #registeringOwn = new Map<string, Uint8Array>();
  readonly #below = new Map<string, PendingBelow>();
  readonly #ones = new Map<string, PendingOnes>();
  readonly #committedBelow = new Map<string, number>();
  #deletions = 0;
  /** The next retention sweep: clients seen now, and the bound before which the others are forgotten. */
  #sweep: { readonly seen: Uint8Array[]; readonly expire: { readonly before: number; readonly limit: number } } | null = null;
  #inFlight = false;
  #scheduled = false;
  #timer: unknown = null;
  #settled: (() => void)[] = [];
  #closed = false;
  #closing: Promise<void> | null = null;

  /** @throws {TypeError | RangeError} for bad options or components. */
  constructor(options: GatewayMailboxOptions, components: GatewayMailboxComponents) {
    const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    const maxPendingDeletions = options.maxPendingDeletions ?? DEFAULT_MAX_PENDING_DELETIONS;
    const deletionCommitMs = options.deletionCommitMs ?? DEFAULT_DELETION_COMMIT_MS;
    aint('maxBatch', maxBatch, 1, 1_000_000);
    aint('maxPending', maxPending, 1, Number.MAX_SAFE_INTEGER);
    aint('maxPendingDeletions', maxPendingDeletions, 1, Number.MAX_SAFE_INTEGER);
    aint('deletionCommitMs', deletionCommitMs, 0, 2 ** 31 - 1);
    this.#maxAliases = options.maxMailboxesPerClient ?? MAX_MAILBOXES_PER_CLIENT;
    this.#maxPendingAliases = options.maxPendingAliases ?? DEFAULT_MAX_PENDING_ALIASES;
    aint('maxMailboxesPerClient', this.#maxAliases, 0, Number.MAX_SAFE_INTEGER);
    aint('maxPendingAliases', this.#maxPendingAliases, 1, Number.MAX_SAFE_INTEGER);
    if (typeof components?.reader?.peek !== 'function') throw new TypeError('"reader" expected a MailboxStore');
    if (typeof components.writer?.commit !== 'function') throw new TypeError('"writer" expected a MailboxWriter');
    const schedule = components.schedule ?? ((fn: () => void) => void setImmediate(fn));
    if (typeof schedule !== 'function') throw new TypeError('"schedule" expected a function');
    this.#reader = components.reader;
    this.#writer = components.writer;
    this.#clock = components.clock;
    this.#schedule = schedule;
    this.#maxBatch = maxBatch;
    this.#maxPending = maxPending;
    this.#maxPendingDeletions = maxPendingDeletions;
    this.#deletionCommitMs = deletionCommitMs;
  }

  /** Entries waiting for a commit. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Deletions recorded and not yet committed. */
  get pendingDeletions(): number {
    return this.#deletions;
  }

  register(recipient: Uint8Array): void {
    checkRecipient(recipient);
    this.#open('register');
    const k = idKey(recipient);
    if (this.#registrations.has(k) || this.#reader.isRegistered(recipient)) return;
    const owner = own(recipient);
    this.#registrations.set(k, owner);
    this.#registeringOwn.set(idKey(ownMailbox(nodeBackend, owner)), owner);
    this.#arm();
  }

  isRegistered(recipient: Uint8Array): boolean {
    checkRecipient(recipient);
    return this.#registrations.has(idKey(recipient)) || this.#reader.isRegistered(recipient);
  }

  /**
   * Retention: with the next group, marks `linked` (clients with a link open) seen now, then
   * forgets up to `limit` clients last seen before `before` (ms), with their entries and extra
   * mailboxes; the reader's memory of registrations is dropped once that is committed.
   */
  sweep(before: number, linked: readonly Uint8Array[], limit: number): void {
    this.#open('sweep');
    aint('limit', limit, 1, Number.MAX_SAFE_INTEGER);
    this.#sweep = { seen: linked.map(own), expire: { before: Math.max(0, Math.floor(before)), limit } };
    this.#arm();
  }

  /** Clients registered, with those waiting for a commit (the admission's cap); 0 when the reader cannot count. */
  clients(): number {
    return (this.#reader.clients?.() ?? 0) + this.#registrations.size;
  }

  /** Where mail for `recipient` goes, with the alias changes that wait for a commit. */
  route(recipient: Uint8Array): MailboxRoute {
    if (this.isRegistered(recipient)) return { kind: 'client' };
    const registering = this.#registeringOwn.get(idKey(recipient));
    if (registering !== undefined) return { kind: 'own', owner: own(registering) };
    const waiting = this.#aliases.get(idKey(recipient));
    if (waiting !== undefined) return { kind: 'alias', owner: waiting.owner, revoked: waiting.kind === 'revoke' };
    return this.#reader.route(recipient);
  }

  /** Alias changes decided and not yet committed. */
  get pendingAliases(): number {
    return this.#aliases.size;
  }

  requestMailbox(owner: Uint8Array, action: MailboxActionName, mailbox: Uint8Array): MailboxResultName {
    checkRecipient(owner);
    checkRecipient(mailbox);
    if (action !== 'register' && action !== 'revoke') throw new RangeError('"action" expected register or revoke');
    this.#open('request');
    if (isZero(mailbox) || equalBytes(mailbox, owner)) return 'invalid';
    if (this.isRegistered(mailbox)) return 'taken'; // a client's main mailbox
    const route = this.route(mailbox);
    if (route.kind === 'own') return equalBytes(route.owner, owner) ? 'invalid' : 'taken'; // a client's own mailbox
    const k = idKey(mailbox);
    const waiting = this.#aliases.get(k);
    if (waiting !== undefined) {
      if (!equalBytes(waiting.owner, owner)) return 'taken';
      if (action === 'register') return waiting.kind === 'revoke' ? 'revoked' : 'pending';
      if (waiting.kind === 'register') this.#aliases.set(k, { kind: 'revoke', owner: waiting.owner, mailbox: waiting.mailbox });
      return 'pending';
    }
    const r = this.#reader.route(mailbox);
    if (r.kind === 'alias') {
      if (!equalBytes(r.owner, owner)) return 'taken';
      if (r.revoked) return action === 'register' ? 'revoked' : 'ok';
      if (action === 'register') return 'ok';
    } else if (action === 'register' && this.#activeAliases(owner) >= this.#maxAliases) {
      return 'limit';
    }
    if (this.#aliases.size >= this.#maxPendingAliases) return 'pending'; // not recorded: asked again later
    this.#aliases.set(k, { kind: action, owner: own(owner), mailbox: own(mailbox) });
    this.#arm();
    return 'pending';
  }

  /** `owner`'s active aliases, counting the changes that wait. */
  #activeAliases(owner: Uint8Array): number {
    let n = this.#reader.aliasCount(owner);
    for (const a of this.#aliases.values()) {
      if (!equalBytes(a.owner, owner)) continue;
      if (a.kind === 'register') n++;
      else {
        // A revocation waiting for an alias that is active on disk frees its place already.
        const r = this.#reader.route(a.mailbox);
        if (r.kind === 'alias' && !r.revoked) n--;
      }
    }
    return n;
  }

  peek(recipient: Uint8Array, afterSeq?: number): PeekedEntry | null {
    checkRecipient(recipient);
    if (afterSeq !== undefined) aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    const k = idKey(recipient);
    let after = afterSeq ?? 0;
    const below = this.#below.get(k);
    if (below !== undefined && below.seq - 1 > after) after = below.seq - 1;
    const ones = this.#ones.get(k)?.seqs;
    let e = this.#reader.peek(recipient, after);
    if (ones === undefined || e === null) return e;
    // At most one read per entry deleted and not yet committed.
    while (e !== null && ones.has(e.seq)) e = this.#reader.peek(recipient, e.seq);
    if (e === null) return null;
    let hidden = 0;
    for (const s of ones) if (s > e.seq) hidden++;
    return { ...e, remaining: Math.max(0, e.remaining - hidden) };
  }

  deleteBelow(recipient: Uint8Array, seq: number): boolean {
    checkRecipient(recipient);
    aint('seq', seq, 0, Number.MAX_SAFE_INTEGER);
    this.#open('delete');
    const k = idKey(recipient);
    // Sequence numbers start at 1; and a bound already committed or waiting deletes nothing more.
    if (seq <= 1 || seq <= (this.#committedBelow.get(k) ?? 0)) return true;
    const waiting = this.#below.get(k);
    if (waiting !== undefined) {
      if (seq > waiting.seq) waiting.seq = seq;
      return true;
    }
    if (this.#deletions >= this.#maxPendingDeletions) return false;
    this.#below.set(k, { recipient: own(recipient), seq });
    this.#deletions++;
    this.#arm();
    return true;
  }

  peekAddress(recipient: Uint8Array, mailbox: Uint8Array | null, afterSeq: number): PeekedEntry | null {
    checkRecipient(recipient);
    aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    const read = this.#reader.peekAddress;
    if (read === undefined) throw new TypeError('"reader" has no peekAddress');
    const k = idKey(recipient);
    let after = afterSeq;
    const below = this.#below.get(k);
    if (below !== undefined && below.seq - 1 > after) after = below.seq - 1;
    const ones = this.#ones.get(k)?.seqs;
    let e = read.call(this.#reader, recipient, mailbox, after);
    // At most one read per entry deleted and not yet committed.
    while (e !== null && ones?.has(e.seq) === true) e = read.call(this.#reader, recipient, mailbox, e.seq);
    if (e === null || ones === undefined) return e;
    return { ...e, remaining: Math.max(0, e.remaining - ones.size) };
  }

  nextAddress(recipient: Uint8Array, after: Uint8Array | null | undefined): { readonly mailbox: Uint8Array | null } | null {
    checkRecipient(recipient);
    const read = this.#reader.nextAddress;
    if (read === undefined) throw new TypeError('"reader" has no nextAddress');
    // An address whose entries are all deleted but not committed is still named: the caller finds no entry there and goes on.
    return read.call(this.#reader, recipient, after);
  }

  deleteHanded(recipient: Uint8Array, seqs: readonly number[]): boolean {
    checkRecipient(recipient);
    this.#open('delete');
    if (seqs.length === 0) return true;
    const k = idKey(recipient);
    let ones = this.#ones.get(k);
    let fresh = 0;
    for (const seq of seqs) if (ones?.seqs.has(seq) !== true) fresh++;
    if (fresh === 0) return true;
    if (this.#deletions + fresh > this.#maxPendingDeletions) return false;
    if (ones === undefined) this.#ones.set(k, (ones = { recipient: own(recipient), seqs: new Set() }));
    for (const seq of seqs) {
      aint('seq', seq, 1, Number.MAX_SAFE_INTEGER);
      if (ones.seqs.has(seq)) continue;
      ones.seqs.add(seq);
      this.#deletions++;
    }
    this.#arm();
    return true;
  }

  deleteOne(recipient: Uint8Array, seq: number): boolean {
    checkRecipient(recipient);
    aint('seq', seq, 0, Number.MAX_SAFE_INTEGER);
    this.#open('delete');
    const k = idKey(recipient);
    const ones = this.#ones.get(k);
    if (ones?.seqs.has(seq) === true) return true;
    // Only an entry there is recorded, so that what waits is bounded by what is stored and the
    // queue hint stays exact (one read; an ack is never answered, so no answer waits for it).
    if (seq < 1 || this.peek(recipient, seq - 1)?.seq !== seq) return true;
    if (this.#deletions >= this.#maxPendingDeletions) return false;
    if (ones === undefined) this.#ones.set(k, { recipient: own(recipient), seqs: new Set([seq]) });
    else ones.seqs.add(seq);
    this.#deletions++;
    this.#arm();
    return true;
  }

  /**
   * Queues one entry for the next group; the promise settles once the group is durable. The
   * entry's bytes are copied. Resolves with ERR_MAILBOX_FULL at once when `maxPending` wait.
   * @throws (rejects) {TypeError | RangeError} for a malformed entry; {BackchannelError}
   *   ERR_MAILBOX_STORE after close() or when the group's commit failed.
   */
  submit(entry: MailboxEntry): Promise<StoreResult> {
    if (this.#closed) return Promise.reject(new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: submit after the gateway mailbox closed'));
    try {
      checkMailboxEntry(entry);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#queue.length >= this.#maxPending) return Promise.resolve({ ok: false, code: 'ERR_MAILBOX_FULL' });
    const tag = entry.mailbox ?? null;
    const copy: MailboxEntry = { recipient: own(entry.recipient), surbId: entry.surbId === null ? null : own(entry.surbId), payload: own(entry.payload), mailbox: tag === null ? null : own(tag) };
    return new Promise<StoreResult>((resolve, reject) => {
      this.#queue.push({ entry: copy, resolve, reject });
      this.#wake();
    });
  }

  /**
   * Commits every entry waiting, then what deletions and registrations remain (once: if that
   * commit fails, they stay waiting). Resolves when done; each submit learns its own outcome.
   */
  async flush(): Promise<void> {
    for (;;) {
      if (this.#inFlight) await this.#nextSettle();
      else if (this.#queue.length > 0) this.#commit();
      else break;
    }
    if (this.#registrations.size > 0 || this.#deletions > 0 || this.#aliases.size > 0) {
      this.#commit();
      if (this.#inFlight) await this.#nextSettle();
    }
  }

  /** Refuses further writes, flushes, and closes the writer (its thread stops). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
      this.#timer = null;
      try {
        await this.flush();
      } finally {
        await this.#writer.close();
      }
    })();
    return this.#closing;
  }

  #open(what: string): void {
    if (this.#closed) throw new BackchannelError('ERR_MAILBOX_STORE', `mailbox: ${what} after the gateway mailbox closed`);
  }

  /** Deliveries: a group after this turn, so that the deliveries of one turn share it. */
  #wake(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#schedule(() => {
      this.#scheduled = false;
      this.#commit();
    });
  }

  /** Deletions and registrations: a group within deletionCommitMs, unless a delivery's comes first. */
  #arm(): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = null;
      this.#commit();
    }, this.#deletionCommitMs);
  }

  #nextSettle(): Promise<void> {
    return new Promise((resolve) => this.#settled.push(resolve));
  }

  /** Hands one group to the writer; one group is in flight at a time, and the next forms meanwhile. */
  #commit(): void {
    if (this.#inFlight) return;
    const batch = this.#queue.length <= this.#maxBatch ? this.#queue : this.#queue.slice(0, this.#maxBatch);
    this.#queue = batch === this.#queue ? [] : this.#queue.slice(this.#maxBatch);
    const registrations = [...this.#registrations.values()];
    const aliases = [...this.#aliases.values()];
    const deletions: MailboxDeletion[] = [];
    for (const b of this.#below.values()) deletions.push({ kind: 'below', recipient: b.recipient, seq: b.seq });
    for (const o of this.#ones.values()) for (const seq of o.seqs) deletions.push({ kind: 'one', recipient: o.recipient, seq });
    const sweep = this.#sweep;
    this.#sweep = null;
    if (batch.length === 0 && registrations.length === 0 && deletions.length === 0 && aliases.length === 0 && sweep === null) return;
    this.#inFlight = true;
    this.#writer.commit({ registrations, aliases, deletions, entries: batch.map((p) => p.entry), ...(sweep === null ? {} : { seen: sweep.seen, expire: sweep.expire }) }).then(
      (results) => {
        // Clients may be gone: the reader asks the database again rather than trust its memory.
        if (sweep !== null) this.#reader.forgetRegistered?.();
        // The reader sees the group from now on: what it wrote need not be hidden any longer.
        for (const r of registrations) {
          this.#registrations.delete(idKey(r));
          this.#registeringOwn.delete(idKey(ownMailbox(nodeBackend, r)));
        }
        // An alias change replaced meanwhile (a revocation after a registration) still waits.
        for (const a of aliases) if (this.#aliases.get(idKey(a.mailbox)) === a) this.#aliases.delete(idKey(a.mailbox));
        for (const d of deletions) this.#forget(d);
        for (let i = 0; i < batch.length; i++) {
          const r = results[i];
          if (r === undefined) batch[i]!.reject(new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: the writer returned too few results'));
          else batch[i]!.resolve(r);
        }
        this.#afterCommit();
      },
      (err: unknown) => {
        // Registrations and deletions stay waiting for the next group; the entries fail; the sweep waits for the next one.
        for (const p of batch) p.reject(err);
        this.#afterCommit();
      },
    );
  }

  #afterCommit(): void {
    this.#inFlight = false;
    for (const fn of this.#settled.splice(0)) fn();
    if (this.#queue.length > 0) this.#wake();
    else if (this.#registrations.size > 0 || this.#deletions > 0 || this.#aliases.size > 0) this.#arm();
  }

  /** A deletion is committed: drop it from memory, unless a larger bound came meanwhile. */
  #forget(d: MailboxDeletion): void {
    const k = idKey(d.recipient);
    if (d.kind === 'below') {
      const waiting = this.#below.get(k);
      if (this.#committedBelow.size >= COMMITTED_BOUNDS_REMEMBERED) this.#committedBelow.clear();
      this.#committedBelow.set(k, Math.max(d.seq, this.#committedBelow.get(k) ?? 0));
      if (waiting !== undefined && waiting.seq === d.seq) {
        this.#below.delete(k);
        this.#deletions--;
      }
      return;
    }
    const ones = this.#ones.get(k);
    if (ones?.seqs.delete(d.seq) === true) {
      this.#deletions--;
      if (ones.seqs.size === 0) this.#ones.delete(k);
    }
  }
}
