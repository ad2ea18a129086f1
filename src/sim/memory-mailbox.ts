/**
 * Mailboxes in memory, for gateways in the simulator: the MailboxStore contract
 * (src/server/mailbox.ts) without the disk, which virtual time has no use for. Bounded like the
 * SQLite store: per mailbox and in total.
 */
import { BackchannelError } from '../errors.js';
import type { AliasChange, MailboxEntry, MailboxGroup, MailboxRoute, MailboxStore, PeekedEntry, StoreResult } from '../server/mailbox.js';
import { DEFAULT_MAX_PER_MAILBOX, DEFAULT_MAX_TOTAL, MAX_MAILBOXES_PER_CLIENT, MAX_REVOKED_PER_CLIENT, checkMailboxBatch, checkMailboxEntry, checkMailboxGroup, checkRecipient } from '../server/mailbox.js';
import type { Clock } from '../ops/clock.js';
import { aint, idKey } from '../util/bytes.js';
import { nodeBackend } from '../crypto/node.js';
import { ownMailbox } from '../pki/intake.js';

interface Box {
  nextSeq: number;
  /** Entries in seq order; entries[head..] are held. */
  entries: { seq: number; surbId: Uint8Array | null; payload: Uint8Array; storedAt: number; mailbox: Uint8Array | null }[];
  head: number;
  /** When its client was last seen (ms): registration, or a `seen` in a group. */
  lastSeen: number;
  /** Its own mailbox's key in `MemoryMailboxStore.#owners`. */
  readonly ownKey: string;
}

/**
 * A copy of `bytes` in a buffer of its own. Not `bytes.slice()`: on a Buffer (what the network
 * hands a gateway) slice is a view, and the stored entry would change with the caller's buffer.
 */
function own(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

interface Alias {
  readonly owner: Uint8Array;
  readonly ownerKey: string;
  revokedAt: number | null;
  /** Order of revocation, for forgetting the oldest tombstones first. */
  revokedOrder: number;
}

export class MemoryMailboxStore implements MailboxStore {
  readonly #boxes = new Map<string, Box>();
  readonly #aliases = new Map<string, Alias>();
  /** Own mailboxes (src/pki/intake.ts, `ownMailbox`) by id: their owners. */
  readonly #owners = new Map<string, Uint8Array>();
  readonly #maxAliases: number;
  readonly #maxRevoked: number;
  #revocations = 0;
  readonly #clock: Clock;
  readonly #maxPerMailbox: number;
  readonly #maxTotal: number;
  #total = 0;
  #closed = false;

  /**
   * A store whose caps, when not given, are the SQLite store's defaults.
   * @throws {TypeError | RangeError} when a cap is not an integer of at least 1, as openMailboxStore does.
   */
  constructor(clock: Clock, options: { maxPerMailbox?: number; maxTotal?: number; maxMailboxesPerClient?: number; maxRevokedPerClient?: number } = {}) {
    const maxPerMailbox = options.maxPerMailbox ?? DEFAULT_MAX_PER_MAILBOX;
    const maxTotal = options.maxTotal ?? DEFAULT_MAX_TOTAL;
    this.#maxAliases = options.maxMailboxesPerClient ?? MAX_MAILBOXES_PER_CLIENT;
    this.#maxRevoked = options.maxRevokedPerClient ?? MAX_REVOKED_PER_CLIENT;
    aint('maxMailboxesPerClient', this.#maxAliases, 0, Number.MAX_SAFE_INTEGER);
    aint('maxRevokedPerClient', this.#maxRevoked, 0, Number.MAX_SAFE_INTEGER);
    aint('maxPerMailbox', maxPerMailbox, 1, Number.MAX_SAFE_INTEGER);
    aint('maxTotal', maxTotal, 1, Number.MAX_SAFE_INTEGER);
    this.#clock = clock;
    this.#maxPerMailbox = maxPerMailbox;
    this.#maxTotal = maxTotal;
  }

  /** Throws as the SQLite store does once closed: a simulated gateway that used a closed store would go unnoticed otherwise. */
  #open(what: string): void {
    if (this.#closed) throw new BackchannelError('ERR_MAILBOX_STORE', `mailbox: ${what} on a closed store`);
  }

  #box(what: string, recipient: Uint8Array): Box | undefined {
    this.#open(what);
    return this.#boxes.get(idKey(recipient));
  }

  register(recipient: Uint8Array): void {
    checkRecipient(recipient);
    if (this.#box('register', recipient) !== undefined) return;
    const ownKey = idKey(ownMailbox(nodeBackend, recipient));
    this.#boxes.set(idKey(recipient), { nextSeq: 1, entries: [], head: 0, lastSeen: this.#clock.now(), ownKey });
    this.#owners.set(ownKey, own(recipient));
  }

  isRegistered(recipient: Uint8Array): boolean {
    checkRecipient(recipient);
    return this.#box('lookup', recipient) !== undefined;
  }

  route(recipient: Uint8Array): MailboxRoute {
    if (this.isRegistered(recipient)) return { kind: 'client' };
    const owner = this.#owners.get(idKey(recipient));
    if (owner !== undefined) return { kind: 'own', owner: own(owner) };
    const a = this.#aliases.get(idKey(recipient));
    return a === undefined ? { kind: 'unknown' } : { kind: 'alias', owner: own(a.owner), revoked: a.revokedAt !== null };
  }

  aliasCount(owner: Uint8Array): number {
    checkRecipient(owner);
    this.#open('count');
    const k = idKey(owner);
    let n = 0;
    for (const a of this.#aliases.values()) if (a.ownerKey === k && a.revokedAt === null) n++;
    return n;
  }

  /** One alias change of a group, by the rules of MailboxGroup. */
  #applyAlias(a: AliasChange): void {
    const key = idKey(a.mailbox);
    const ownerKey = idKey(a.owner);
    if (this.#boxes.has(key) || this.#owners.has(key) || !this.#boxes.has(ownerKey)) return;
    const row = this.#aliases.get(key);
    if (a.kind === 'register') {
      if (row !== undefined || this.aliasCount(a.owner) >= this.#maxAliases) return;
      this.#aliases.set(key, { owner: own(a.owner), ownerKey, revokedAt: null, revokedOrder: 0 });
      return;
    }
    const now = this.#clock.now();
    if (row === undefined) this.#aliases.set(key, { owner: own(a.owner), ownerKey, revokedAt: now, revokedOrder: ++this.#revocations });
    else if (row.ownerKey !== ownerKey || row.revokedAt !== null) return;
    else {
      row.revokedAt = now;
      row.revokedOrder = ++this.#revocations;
    }
    const revoked = [...this.#aliases].filter(([, x]) => x.ownerKey === ownerKey && x.revokedAt !== null);
    if (revoked.length <= this.#maxRevoked) return;
    revoked.sort(([, x], [, y]) => x.revokedAt! - y.revokedAt! || x.revokedOrder - y.revokedOrder);
    for (const [k] of revoked.slice(0, revoked.length - this.#maxRevoked)) this.#aliases.delete(k);
  }

  storeBatch(entries: readonly MailboxEntry[]): StoreResult[] {
    // All checked before any is stored: the SQLite store's transaction stores a batch whole or not at all.
    checkMailboxBatch(entries);
    this.#open('store');
    return entries.map((e) => this.#storeOne(e));
  }

  store(entry: MailboxEntry): StoreResult {
    checkMailboxEntry(entry);
    this.#open('store');
    return this.#storeOne(entry);
  }

  commitGroup(group: MailboxGroup): StoreResult[] {
    // Checked whole first, as the SQLite store's one transaction writes a group whole or not at all.
    checkMailboxGroup(group);
    this.#open('store');
    for (const r of group.registrations) this.register(r);
    const now = this.#clock.now();
    for (const r of [...group.registrations, ...(group.seen ?? [])]) {
      const box = this.#boxes.get(idKey(r));
      if (box !== undefined) box.lastSeen = now;
    }
    if (group.expire !== undefined) {
      let n = 0;
      for (const [k, box] of this.#boxes) {
        if (n >= group.expire.limit) break;
        if (box.lastSeen >= group.expire.before) continue;
        n++;
        this.#total -= box.entries.length - box.head;
        this.#boxes.delete(k);
        this.#owners.delete(box.ownKey);
        for (const [ak, a] of this.#aliases) if (a.ownerKey === k) this.#aliases.delete(ak);
      }
    }
    for (const a of group.aliases ?? []) this.#applyAlias(a);
    for (const d of group.deletions) {
      if (d.kind === 'below') this.ackBelow(d.recipient, d.seq);
      else this.ack(d.recipient, d.seq);
    }
    return group.entries.map((e) => this.#storeOne(e));
  }

  #storeOne(entry: MailboxEntry): StoreResult {
    const box = this.#boxes.get(idKey(entry.recipient));
    if (box === undefined) return { ok: false, code: 'unknown_recipient' };
    if (box.entries.length - box.head >= this.#maxPerMailbox || this.#total >= this.#maxTotal) return { ok: false, code: 'ERR_MAILBOX_FULL' };
    const seq = box.nextSeq++;
    const mailbox = entry.mailbox ?? null;
    box.entries.push({ seq, surbId: entry.surbId === null ? null : own(entry.surbId), payload: own(entry.payload), storedAt: this.#clock.now(), mailbox: mailbox === null ? null : own(mailbox) });
    this.#total++;
    return { ok: true, seq };
  }

  peek(recipient: Uint8Array, afterSeq?: number): PeekedEntry | null {
    checkRecipient(recipient);
    if (afterSeq !== undefined) aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    const after = afterSeq ?? 0;
    const box = this.#box('peek', recipient);
    if (box === undefined) return null;
    for (let i = box.head; i < box.entries.length; i++) {
      const e = box.entries[i]!;
      if (e.seq > after) {
        // The caller owns what peek returns (the MailboxStore contract): wiping it must leave the entry whole.
        const peeked: PeekedEntry = { seq: e.seq, surbId: e.surbId === null ? null : own(e.surbId), payload: own(e.payload), storedAt: e.storedAt, remaining: box.entries.length - i - 1 };
        if (e.mailbox !== null) peeked.mailbox = own(e.mailbox);
        return peeked;
      }
    }
    return null;
  }

  peekAddress(recipient: Uint8Array, mailbox: Uint8Array | null, afterSeq: number): PeekedEntry | null {
    checkRecipient(recipient);
    aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    const box = this.#box('peek', recipient);
    if (box === undefined) return null;
    const want = mailbox === null ? null : idKey(mailbox);
    for (let i = box.head; i < box.entries.length; i++) {
      const e = box.entries[i]!;
      if (e.seq <= afterSeq || (e.mailbox === null ? want !== null : want === null || idKey(e.mailbox) !== want)) continue;
      const peeked: PeekedEntry = { seq: e.seq, surbId: e.surbId === null ? null : own(e.surbId), payload: own(e.payload), storedAt: e.storedAt, remaining: box.entries.length - box.head - 1 };
      if (e.mailbox !== null) peeked.mailbox = own(e.mailbox);
      return peeked;
    }
    return null;
  }

  nextAddress(recipient: Uint8Array, after: Uint8Array | null | undefined): { readonly mailbox: Uint8Array | null } | null {
    checkRecipient(recipient);
    const box = this.#box('peek', recipient);
    if (box === undefined) return null;
    let best: Uint8Array | null | undefined;
    const bound = after === undefined || after === null ? null : idKey(after);
    for (let i = box.head; i < box.entries.length; i++) {
      const m = box.entries[i]!.mailbox;
      if (m === null) {
        if (after === undefined) return { mailbox: null };
        continue;
      }
      const k = idKey(m);
      if (bound !== null && k <= bound) continue;
      if (best === undefined || best === null || k < idKey(best)) best = m;
    }
    return best === undefined || best === null ? null : { mailbox: own(best) };
  }

  ack(recipient: Uint8Array, seq: number): boolean {
    checkRecipient(recipient);
    aint('seq', seq, 0, Number.MAX_SAFE_INTEGER);
    const box = this.#box('ack', recipient);
    if (box === undefined) return false;
    for (let i = box.head; i < box.entries.length; i++) {
      if (box.entries[i]!.seq === seq) {
        box.entries.splice(i, 1);
        this.#total--;
        return true;
      }
    }
    return false;
  }

  ackBelow(recipient: Uint8Array, belowSeq: number): number {
    checkRecipient(recipient);
    aint('belowSeq', belowSeq, 0, Number.MAX_SAFE_INTEGER);
    const box = this.#box('ack', recipient);
    if (box === undefined) return 0;
    let n = 0;
    while (box.head < box.entries.length && box.entries[box.head]!.seq < belowSeq) {
      box.head++;
      n++;
    }
    if (box.head > 64 && box.head * 2 > box.entries.length) {
      box.entries.splice(0, box.head);
      box.head = 0;
    }
    this.#total -= n;
    return n;
  }

  count(recipient: Uint8Array): number {
    checkRecipient(recipient);
    const box = this.#box('count', recipient);
    return box === undefined ? 0 : box.entries.length - box.head;
  }

  total(): number {
    this.#open('count');
    return this.#total;
  }

  clients(): number {
    this.#open('count');
    return this.#boxes.size;
  }

  forgetRegistered(): void {
    // Nothing cached: one map.
  }

  check(): void {
    this.#open('check');
    let n = 0;
    for (const b of this.#boxes.values()) n += b.entries.length - b.head;
    if (n !== this.#total) throw new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: total disagrees with the entries');
  }

  close(): void {
    this.#closed = true;
    this.#boxes.clear();
    this.#aliases.clear();
  }
}
