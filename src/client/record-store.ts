/**
 * The ClientStore as records in a Journal (journal.ts): the browser's store, which keeps its state
 * in memory and writes each committed transaction through to IndexedDB (web/idb.ts,
 * docs/browser.md). It behaves as the SQLite store does (the shared compliance suite,
 * test/client/store-compliance.ts, runs against both). Portable: no `node:` imports.
 *
 * Tables (string keys; records are plain objects of numbers, strings, booleans, null and
 * Uint8Arrays, which IndexedDB stores by structured clone):
 *
 *     settings    key                      -> Uint8Array
 *     meta        'position' | 'inboxSeq'  -> number (next mailbox sequence; last inbox seq)
 *     outMsg      hex(id)                  -> OutRecord
 *     outFrag     hex(id):index            -> FragRecord
 *     surbs       hex(id)                  -> { record, createdAt }
 *     inMsg       hex(id)                  -> { count, have, first, order } (incomplete messages)
 *     inFrag      hex(id):index            -> { data, receivedAt, inReplyTo }
 *     inbox       seq (decimal)            -> InboxRecord
 *     inboxIds    hex(id)                  -> seq
 *     mailboxes   hex(id)                  -> MailboxRecord (with its private key until revoked)
 *     invites     id                       -> { state, updatedAt }
 */
import { BackchannelError } from '../errors.js';
import { abytes, aint, toHex } from '../util/bytes.js';
import { Journal } from './journal.js';
import type { JournalChange } from './journal.js';
import type {
  AssembledMessage,
  ClientStore,
  Destination,
  ExtraMailbox,
  ExtraMailboxChange,
  FragmentResult,
  InboxMessage,
  MailboxRefusal,
  OutgoingFragment,
  OutgoingMessage,
  OutgoingStatus,
  SurbRecord,
} from './store.js';

/** The same bounds as the SQLite store's (sqlite-store.ts, which a portable file cannot import). */
export const MAX_FRAGMENT_COUNT = 65_535;
export const MAX_INCOMPLETE_MESSAGES = 1024;

/** The client's tables, then the messenger's (record-messenger-store.ts), which share the journal. */
export const RECORD_TABLES = ['settings', 'meta', 'outMsg', 'outFrag', 'surbs', 'inMsg', 'inFrag', 'inbox', 'inboxIds', 'mailboxes', 'invites', 'mValues', 'mContacts', 'mHistory', 'mOrphans', 'mHeld', 'mIntro', 'mControl'] as const;

const REFUSALS: readonly MailboxRefusal[] = ['limit', 'taken', 'revoked', 'invalid'];

interface OutRecord {
  readonly id: Uint8Array;
  readonly destination: Destination;
  readonly length: number;
  readonly fragments: number;
  readonly createdAt: number;
  readonly status: OutgoingStatus;
  readonly done: number;
}

interface FragRecord {
  readonly messageId: Uint8Array;
  readonly index: number;
  readonly frame: Uint8Array;
  readonly replySurb: Uint8Array | null;
  readonly attempts: number;
  readonly dueAt: number;
  readonly lastSentAt: number | null;
  readonly finished: boolean;
}

interface InRecord {
  readonly count: number;
  readonly have: number;
  readonly first: number;
  /** Tie-break of equal first-arrival times: the order of arrival. */
  readonly order: number;
}

interface InFragRecord {
  readonly data: Uint8Array;
  readonly receivedAt: number;
  readonly inReplyTo: Uint8Array | null;
}

interface InboxRecord {
  readonly seq: number;
  readonly id: Uint8Array;
  readonly body: Uint8Array;
  readonly receivedAt: number;
  readonly inReplyTo: Uint8Array | null;
  readonly sentAt: number | null;
  readonly fileName: string | null;
  readonly consumed: boolean;
  readonly mailbox: Uint8Array | null;
  readonly replySurbs: readonly Uint8Array[];
  /** How many of `replySurbs` (from the first) are used. */
  readonly used: number;
}

interface MailboxRecord extends ExtraMailbox {
  readonly privateKey: Uint8Array | null;
}

function stateError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_STATE', `client state: ${message}`);
}

function checkTime(name: string, value: unknown): asserts value is number {
  aint(name, value, 0, Number.MAX_SAFE_INTEGER);
}

function checkDestination(destination: unknown): asserts destination is Destination {
  if (typeof destination !== 'object' || destination === null) throw new TypeError('"destination" expected an object');
  const d = destination as Record<string, unknown>;
  if (d['kind'] === 'address') {
    abytes('destination.gateway', d['gateway']);
    abytes('destination.mailbox', d['mailbox']);
  } else if (d['kind'] === 'reply') {
    abytes('destination.inReplyTo', d['inReplyTo']);
  } else {
    throw new TypeError('"destination.kind" expected "address" or "reply"');
  }
}

function copyDestination(d: Destination): Destination {
  return d.kind === 'address' ? { kind: 'address', gateway: d.gateway.slice(), mailbox: d.mailbox.slice() } : { kind: 'reply', inReplyTo: d.inReplyTo.slice() };
}

function orNull(b: Uint8Array | null): Uint8Array | null {
  return b === null ? null : b.slice();
}

function fragKey(id: Uint8Array, index: number): string {
  return `${toHex(id)}:${index}`;
}

function messageOf(r: OutRecord): OutgoingMessage {
  return { id: r.id.slice(), destination: copyDestination(r.destination), length: r.length, fragments: r.fragments, createdAt: r.createdAt, status: r.status, done: r.done };
}

function inboxOf(r: InboxRecord): InboxMessage {
  return {
    seq: r.seq,
    id: r.id.slice(),
    body: r.body.slice(),
    receivedAt: r.receivedAt,
    replySurbs: r.replySurbs.length - r.used,
    inReplyTo: orNull(r.inReplyTo),
    sentAt: r.sentAt,
    fileName: r.fileName,
    consumed: r.consumed,
    mailbox: orNull(r.mailbox),
  };
}

function mailboxOf(r: MailboxRecord): ExtraMailbox {
  return {
    id: r.id.slice(),
    createdAt: r.createdAt,
    registered: r.registered,
    refused: r.refused,
    revokeAt: r.revokeAt,
    replacedBy: orNull(r.replacedBy),
    revokedAt: r.revokedAt,
    revokeConfirmed: r.revokeConfirmed,
  };
}

export class RecordClientStore implements ClientStore {
  readonly #j: Journal;
  #closed = false;
  #order = 0;

  /**
   * A store over `journal`, whose tables are RECORD_TABLES (use `RecordClientStore.journal`).
   * A new, empty journal gives a store that lives in memory only.
   */
  constructor(journal: Journal) {
    this.#j = journal;
    for (const [, v] of journal.entries('inMsg')) this.#order = Math.max(this.#order, (v as InRecord).order);
  }

  /** A journal with this store's tables; `onCommit` receives each committed batch. */
  static journal(onCommit: (changes: JournalChange[]) => void = () => undefined): Journal {
    return new Journal(RECORD_TABLES, onCommit);
  }

  transaction<T>(fn: () => T): T {
    this.#open('transaction');
    return this.#j.transaction(fn);
  }

  getSetting(key: string): Uint8Array | null {
    if (typeof key !== 'string') throw new TypeError(`"key" expected a string, got ${typeof key}`);
    this.#open('getSetting');
    const v = this.#j.get('settings', key) as Uint8Array | undefined;
    return v === undefined ? null : v.slice();
  }

  setSetting(key: string, value: Uint8Array): void {
    if (typeof key !== 'string') throw new TypeError(`"key" expected a string, got ${typeof key}`);
    abytes('value', value);
    this.#open('setSetting');
    this.#j.put('settings', key, value.slice());
  }

  nextMailboxSeq(): number {
    this.#open('nextMailboxSeq');
    return (this.#j.get('meta', 'position') as number | undefined) ?? 0;
  }

  setNextMailboxSeq(seq: number): void {
    aint('seq', seq, 0, Number.MAX_SAFE_INTEGER);
    this.#open('setNextMailboxSeq');
    this.#j.put('meta', 'position', seq);
  }

  enqueue(message: { id: Uint8Array; destination: Destination; length: number; createdAt: number }, frames: readonly Uint8Array[]): OutgoingFragment[] {
    if (typeof message !== 'object' || message === null) throw new TypeError('"message" expected an object');
    abytes('message.id', message.id);
    checkDestination(message.destination);
    aint('message.length', message.length, 0, Number.MAX_SAFE_INTEGER);
    checkTime('message.createdAt', message.createdAt);
    if (!Array.isArray(frames)) throw new TypeError(`"frames" expected an array, got ${typeof frames}`);
    if (frames.length === 0) throw new RangeError('"frames" expected at least one frame');
    frames.forEach((f, i) => abytes(`frames[${i}]`, f));
    this.#open('enqueue');
    const id = message.id.slice();
    const destination = copyDestination(message.destination);
    return this.#j.transaction(() => {
      const key = toHex(id);
      if (this.#j.has('outMsg', key)) throw stateError('an outgoing message with this id is already stored');
      let surbs: Uint8Array[] | null = null;
      if (destination.kind === 'reply') {
        const r = this.#inboxById(destination.inReplyTo);
        if (r === null) throw stateError('no such inbox message');
        const left = r.replySurbs.length - r.used;
        if (left < frames.length) {
          throw new BackchannelError('ERR_CLIENT_NO_SURBS', `client: the reply needs ${frames.length} SURBs, the message has ${left} left`);
        }
        surbs = r.replySurbs.slice(r.used, r.used + frames.length).map((s) => s.slice());
        this.#j.put('inbox', String(r.seq), { ...r, used: r.used + frames.length });
      }
      const rec: OutRecord = { id, destination, length: message.length, fragments: frames.length, createdAt: message.createdAt, status: 'pending', done: 0 };
      this.#j.put('outMsg', key, rec);
      return frames.map((frame, i): OutgoingFragment => {
        const replySurb = surbs === null ? null : (surbs[i] ?? null);
        const f: FragRecord = { messageId: id, index: i, frame: frame.slice(), replySurb, attempts: 0, dueAt: message.createdAt, lastSentAt: null, finished: false };
        this.#j.put('outFrag', fragKey(id, i), f);
        return { messageId: id.slice(), index: i, frame: frame.slice(), destination: copyDestination(destination), replySurb: orNull(replySurb), attempts: 0, dueAt: message.createdAt, lastSentAt: null };
      });
    });
  }

  pendingFragments(): OutgoingFragment[] {
    this.#open('pendingFragments');
    const out: OutgoingFragment[] = [];
    for (const [, v] of this.#j.entries('outFrag')) {
      const f = v as FragRecord;
      if (f.finished) continue;
      const m = this.#j.get('outMsg', toHex(f.messageId)) as OutRecord | undefined;
      if (m === undefined || m.status !== 'pending') continue;
      out.push({
        messageId: f.messageId.slice(),
        index: f.index,
        frame: f.frame.slice(),
        destination: copyDestination(m.destination),
        replySurb: orNull(f.replySurb),
        attempts: f.attempts,
        dueAt: f.dueAt,
        lastSentAt: f.lastSentAt,
      });
    }
    return out;
  }

  recordAttempt(messageId: Uint8Array, index: number, now: number, dueAt: number | null): void {
    abytes('messageId', messageId);
    aint('index', index, 0, Number.MAX_SAFE_INTEGER);
    checkTime('now', now);
    if (dueAt !== null) checkTime('dueAt', dueAt);
    this.#open('recordAttempt');
    this.#j.transaction(() => {
      const key = fragKey(messageId, index);
      const f = this.#j.get('outFrag', key) as FragRecord | undefined;
      if (f === undefined) return;
      this.#j.put('outFrag', key, { ...f, attempts: f.attempts + 1, lastSentAt: now, dueAt: dueAt ?? f.dueAt });
      if (dueAt === null) this.#fragmentDone(messageId, index);
    });
  }

  fragmentDone(messageId: Uint8Array, index: number): OutgoingMessage | null {
    abytes('messageId', messageId);
    aint('index', index, 0, Number.MAX_SAFE_INTEGER);
    this.#open('fragmentDone');
    return this.#j.transaction(() => this.#fragmentDone(messageId, index));
  }

  failMessage(messageId: Uint8Array): OutgoingMessage | null {
    abytes('messageId', messageId);
    this.#open('failMessage');
    return this.#j.transaction(() => {
      const key = toHex(messageId);
      const m = this.#j.get('outMsg', key) as OutRecord | undefined;
      if (m === undefined) return null;
      if (m.status !== 'pending') return messageOf(m);
      const next: OutRecord = { ...m, status: 'failed' };
      this.#j.put('outMsg', key, next);
      return messageOf(next);
    });
  }

  outgoing(messageId: Uint8Array): OutgoingMessage | null {
    abytes('messageId', messageId);
    this.#open('outgoing');
    const m = this.#j.get('outMsg', toHex(messageId)) as OutRecord | undefined;
    return m === undefined ? null : messageOf(m);
  }

  pruneOutgoing(before: number): number {
    checkTime('before', before);
    this.#open('pruneOutgoing');
    return this.#j.transaction(() => {
      let n = 0;
      for (const [key, v] of this.#j.entries('outMsg')) {
        const m = v as OutRecord;
        if (m.status === 'pending' || m.createdAt >= before) continue;
        for (let i = 0; i < m.fragments; i++) this.#j.delete('outFrag', fragKey(m.id, i));
        this.#j.delete('outMsg', key);
        n++;
      }
      return n;
    });
  }

  putSurb(id: Uint8Array, record: SurbRecord, createdAt: number): void {
    abytes('id', id);
    if (typeof record !== 'object' || record === null) throw new TypeError('"record" expected an object');
    abytes('record.keys', record.keys);
    checkTime('createdAt', createdAt);
    let copy: SurbRecord;
    switch (record.purpose) {
      case 'ack':
        abytes('record.messageId', record.messageId);
        aint('record.index', record.index, 0, Number.MAX_SAFE_INTEGER);
        checkTime('record.sentAt', record.sentAt);
        aint('record.attempt', record.attempt, 0, Number.MAX_SAFE_INTEGER);
        copy = { purpose: 'ack', keys: record.keys.slice(), messageId: record.messageId.slice(), index: record.index, sentAt: record.sentAt, attempt: record.attempt };
        break;
      case 'loop':
        checkTime('record.sentAt', record.sentAt);
        copy = { purpose: 'loop', keys: record.keys.slice(), sentAt: record.sentAt };
        break;
      case 'reply':
        abytes('record.messageId', record.messageId);
        copy = { purpose: 'reply', keys: record.keys.slice(), messageId: record.messageId.slice() };
        break;
      default:
        throw new TypeError('"record.purpose" expected "ack", "loop" or "reply"');
    }
    this.#open('putSurb');
    this.#j.transaction(() => {
      const key = toHex(id);
      if (this.#j.has('surbs', key)) throw stateError('a SURB with this id is already stored');
      this.#j.put('surbs', key, { record: copy, createdAt });
    });
  }

  surb(id: Uint8Array): SurbRecord | null {
    abytes('id', id);
    this.#open('surb');
    const v = this.#j.get('surbs', toHex(id)) as { record: SurbRecord } | undefined;
    if (v === undefined) return null;
    const r = v.record;
    switch (r.purpose) {
      case 'ack':
        return { ...r, keys: r.keys.slice(), messageId: r.messageId.slice() };
      case 'loop':
        return { ...r, keys: r.keys.slice() };
      case 'reply':
        return { ...r, keys: r.keys.slice(), messageId: r.messageId.slice() };
    }
  }

  deleteSurb(id: Uint8Array): void {
    abytes('id', id);
    this.#open('deleteSurb');
    this.#j.delete('surbs', toHex(id));
  }

  pruneSurbs(before: number): number {
    checkTime('before', before);
    this.#open('pruneSurbs');
    return this.#j.transaction(() => {
      let n = 0;
      for (const [key, v] of this.#j.entries('surbs')) {
        if ((v as { createdAt: number }).createdAt >= before) continue;
        this.#j.delete('surbs', key);
        n++;
      }
      return n;
    });
  }

  putFragment(
    fragment: { messageId: Uint8Array; index: number; count: number; data: Uint8Array; receivedAt: number; inReplyTo: Uint8Array | null; mailbox?: Uint8Array | null },
    assemble: (joined: Uint8Array) => AssembledMessage,
  ): FragmentResult {
    if (typeof fragment !== 'object' || fragment === null) throw new TypeError('"fragment" expected an object');
    if (typeof assemble !== 'function') throw new TypeError('"assemble" expected a function');
    const { messageId, index, count, data, receivedAt, inReplyTo } = fragment;
    abytes('fragment.messageId', messageId);
    abytes('fragment.data', data);
    checkTime('fragment.receivedAt', receivedAt);
    if (inReplyTo !== null) abytes('fragment.inReplyTo', inReplyTo);
    const tag = fragment.mailbox ?? null;
    if (tag !== null) abytes('fragment.mailbox', tag, 32);
    if (!Number.isInteger(count) || count < 1 || count > MAX_FRAGMENT_COUNT) {
      throw new BackchannelError('ERR_CLIENT_FRAME', `client: a fragment count must be in [1, ${MAX_FRAGMENT_COUNT}]`);
    }
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new BackchannelError('ERR_CLIENT_FRAME', 'client: a fragment index must be below the fragment count');
    }
    this.#open('putFragment');
    // As in the SQLite store: when `assemble` throws, the dropped fragments stay dropped (that
    // much commits) and the error is rethrown after the transaction.
    type Outcome = { ok: true; result: FragmentResult } | { ok: false; error: unknown };
    const outcome = this.#j.transaction((): Outcome => {
      const key = toHex(messageId);
      if (this.#j.has('inboxIds', key)) return { ok: true, result: { kind: 'duplicate' } };
      if (this.#j.has('inFrag', fragKey(messageId, index))) return { ok: true, result: { kind: 'duplicate' } };
      const held = this.#j.get('inMsg', key) as InRecord | undefined;
      if (held === undefined) {
        if (this.#j.size('inMsg') >= MAX_INCOMPLETE_MESSAGES) {
          let oldest: [string, InRecord] | null = null;
          for (const [k, v] of this.#j.entries('inMsg')) {
            const r = v as InRecord;
            if (oldest === null || r.first < oldest[1].first || (r.first === oldest[1].first && r.order < oldest[1].order)) oldest = [k, r];
          }
          if (oldest !== null) this.#dropIncoming(oldest[0], oldest[1].count);
        }
      } else if (held.count !== count) {
        throw new BackchannelError('ERR_CLIENT_FRAME', 'client: the fragment count differs from that of the fragments already held');
      }
      this.#j.put('inFrag', fragKey(messageId, index), { data: data.slice(), receivedAt, inReplyTo: orNull(inReplyTo) } satisfies InFragRecord);
      const have = (held?.have ?? 0) + 1;
      this.#j.put('inMsg', key, { count, have, first: held?.first ?? receivedAt, order: held?.order ?? ++this.#order } satisfies InRecord);
      if (have < count) return { ok: true, result: { kind: 'partial', have, count } };

      const parts: InFragRecord[] = [];
      for (let i = 0; i < count; i++) {
        const p = this.#j.get('inFrag', fragKey(messageId, i)) as InFragRecord | undefined;
        if (p === undefined) throw stateError('the store holds a malformed incoming message');
        parts.push(p);
      }
      const joined = new Uint8Array(parts.reduce((n, p) => n + p.data.length, 0));
      let offset = 0;
      let replyTo: Uint8Array | null = null;
      for (const p of parts) {
        joined.set(p.data, offset);
        offset += p.data.length;
        if (replyTo === null && p.inReplyTo !== null) replyTo = p.inReplyTo.slice();
      }
      this.#dropIncoming(key, count);
      let assembled: AssembledMessage;
      try {
        assembled = assemble(joined);
        abytes('body', assembled.body);
        if (!Array.isArray(assembled.replySurbs)) throw new TypeError('"replySurbs" expected an array');
        assembled.replySurbs.forEach((s, i) => abytes(`replySurbs[${i}]`, s));
        const m = assembled.meta ?? null;
        if (m !== null) {
          aint('meta.sentAtS', m.sentAtS, 0, Math.floor(Number.MAX_SAFE_INTEGER / 1000));
          if (m.fileName !== null && typeof m.fileName !== 'string') throw new TypeError('"meta.fileName" expected a string or null');
        }
      } catch (error) {
        return { ok: false, error };
      }
      const seq = ((this.#j.get('meta', 'inboxSeq') as number | undefined) ?? 0) + 1;
      this.#j.put('meta', 'inboxSeq', seq);
      const meta = assembled.meta ?? null;
      const rec: InboxRecord = {
        seq,
        id: messageId.slice(),
        body: assembled.body.slice(),
        receivedAt,
        inReplyTo: replyTo,
        sentAt: meta === null ? null : meta.sentAtS * 1000,
        fileName: meta === null ? null : meta.fileName,
        consumed: false,
        mailbox: orNull(tag),
        replySurbs: assembled.replySurbs.map((s) => s.slice()),
        used: 0,
      };
      this.#j.put('inbox', String(seq), rec);
      this.#j.put('inboxIds', key, seq);
      return { ok: true, result: { kind: 'complete', message: inboxOf(rec) } };
    });
    if (!outcome.ok) throw outcome.error;
    return outcome.result;
  }

  pruneFragments(before: number): number {
    checkTime('before', before);
    this.#open('pruneFragments');
    return this.#j.transaction(() => {
      let n = 0;
      for (const [key, v] of this.#j.entries('inMsg')) {
        const r = v as InRecord;
        if (r.first >= before) continue;
        n += this.#dropIncoming(key, r.count);
      }
      return n;
    });
  }

  unconsumed(afterSeq: number, limit: number): InboxMessage[] {
    aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    aint('limit', limit, 0, Number.MAX_SAFE_INTEGER);
    this.#open('unconsumed');
    return this.#inbox((r) => !r.consumed && r.seq > afterSeq, limit);
  }

  consume(seq: number): void {
    aint('seq', seq, 0, Number.MAX_SAFE_INTEGER);
    this.#open('consume');
    const r = this.#j.get('inbox', String(seq)) as InboxRecord | undefined;
    if (r === undefined || r.consumed) return;
    this.#j.put('inbox', String(seq), { ...r, consumed: true });
  }

  inboxMessage(id: Uint8Array): InboxMessage | null {
    abytes('id', id);
    this.#open('inboxMessage');
    const r = this.#inboxById(id);
    return r === null ? null : inboxOf(r);
  }

  inboxPage(afterSeq: number, limit: number): InboxMessage[] {
    aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    aint('limit', limit, 0, Number.MAX_SAFE_INTEGER);
    this.#open('inboxPage');
    return this.#inbox((r) => r.seq > afterSeq, limit);
  }

  inboxByPrefix(prefixHex: string, limit: number): InboxMessage[] {
    if (typeof prefixHex !== 'string' || !/^[0-9a-fA-F]+$/.test(prefixHex)) throw new TypeError('"prefixHex" expected hex digits');
    aint('limit', limit, 0, Number.MAX_SAFE_INTEGER);
    this.#open('inboxByPrefix');
    const p = prefixHex.toLowerCase();
    return this.#inbox((r) => toHex(r.id).startsWith(p), limit);
  }

  putMailbox(id: Uint8Array, privateKey: Uint8Array, createdAt: number): void {
    abytes('id', id, 32);
    abytes('privateKey', privateKey, 32);
    aint('createdAt', createdAt, 0, Number.MAX_SAFE_INTEGER);
    this.#open('putMailbox');
    const key = toHex(id);
    if (this.#j.has('mailboxes', key)) return;
    const rec: MailboxRecord = {
      id: id.slice(),
      privateKey: privateKey.slice(),
      createdAt,
      registered: false,
      refused: null,
      revokeAt: null,
      replacedBy: null,
      revokedAt: null,
      revokeConfirmed: false,
    };
    this.#j.put('mailboxes', key, rec);
  }

  mailboxes(): ExtraMailbox[] {
    this.#open('mailboxes');
    return this.#j
      .entries('mailboxes')
      .map(([, v]) => v as MailboxRecord)
      .sort((a, b) => a.createdAt - b.createdAt || (toHex(a.id) < toHex(b.id) ? -1 : 1))
      .map(mailboxOf);
  }

  mailboxKey(id: Uint8Array): Uint8Array | null {
    abytes('id', id, 32);
    this.#open('mailboxKey');
    const r = this.#j.get('mailboxes', toHex(id)) as MailboxRecord | undefined;
    if (r === undefined || r.revokedAt !== null || r.privateKey === null) return null;
    return r.privateKey.slice();
  }

  updateMailbox(id: Uint8Array, change: ExtraMailboxChange): ExtraMailbox | null {
    abytes('id', id, 32);
    this.#open('updateMailbox');
    const key = toHex(id);
    const cur = this.#j.get('mailboxes', key) as MailboxRecord | undefined;
    if (cur === undefined) return null;
    if (change.refused !== undefined && change.refused !== null && !REFUSALS.includes(change.refused)) throw new RangeError('"refused" expected a refusal');
    if (change.revokeAt !== undefined && change.revokeAt !== null) aint('revokeAt', change.revokeAt, 0, Number.MAX_SAFE_INTEGER);
    if (change.revokedAt !== undefined) aint('revokedAt', change.revokedAt, 0, Number.MAX_SAFE_INTEGER);
    if (change.replacedBy !== undefined && change.replacedBy !== null) abytes('replacedBy', change.replacedBy, 32);
    const next: MailboxRecord = {
      ...cur,
      ...(change.registered === undefined ? {} : { registered: change.registered }),
      ...(change.refused === undefined ? {} : { refused: change.refused }),
      ...(change.revokeAt === undefined ? {} : { revokeAt: change.revokeAt }),
      ...(change.replacedBy === undefined ? {} : { replacedBy: orNull(change.replacedBy) }),
      // A revocation is for good: its first time stays, and the key goes with it.
      ...(change.revokedAt === undefined || cur.revokedAt !== null ? {} : { revokedAt: change.revokedAt }),
      ...(change.revokeConfirmed === undefined ? {} : { revokeConfirmed: change.revokeConfirmed }),
    };
    const stored: MailboxRecord = next.revokedAt === null ? next : { ...next, privateKey: null };
    this.#j.put('mailboxes', key, stored);
    return mailboxOf(stored);
  }

  // ---- invites (src/client/invites.ts owns the state's format) ----

  invites(): { id: string; state: Uint8Array }[] {
    this.#open('invites');
    return this.#j
      .entries('invites')
      .map(([id, v]) => ({ id, ...(v as { state: Uint8Array; updatedAt: number }) }))
      .sort((a, b) => a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : 1))
      .map((r) => ({ id: r.id, state: r.state.slice() }));
  }

  putInvite(id: string, state: Uint8Array, updatedAt: number): void {
    this.#open('putInvite');
    this.#j.put('invites', id, { state: state.slice(), updatedAt });
  }

  deleteInvite(id: string): void {
    this.#open('deleteInvite');
    this.#j.delete('invites', id);
  }

  close(): void {
    this.#closed = true;
  }

  // ---- inside ----

  #open(what: string): void {
    if (this.#closed) throw stateError(`${what} on a closed store`);
  }

  #inboxById(id: Uint8Array): InboxRecord | null {
    const seq = this.#j.get('inboxIds', toHex(id)) as number | undefined;
    if (seq === undefined) return null;
    return (this.#j.get('inbox', String(seq)) as InboxRecord | undefined) ?? null;
  }

  #inbox(pred: (r: InboxRecord) => boolean, limit: number): InboxMessage[] {
    const rows = this.#j
      .entries('inbox')
      .map(([, v]) => v as InboxRecord)
      .filter(pred)
      .sort((a, b) => a.seq - b.seq);
    return rows.slice(0, limit).map(inboxOf);
  }

  #fragmentDone(messageId: Uint8Array, index: number): OutgoingMessage | null {
    const key = toHex(messageId);
    const m = this.#j.get('outMsg', key) as OutRecord | undefined;
    if (m === undefined) return null;
    const fk = fragKey(messageId, index);
    const f = this.#j.get('outFrag', fk) as FragRecord | undefined;
    if (f === undefined || f.finished) return messageOf(m);
    this.#j.put('outFrag', fk, { ...f, finished: true });
    let done = 0;
    for (let i = 0; i < m.fragments; i++) if ((this.#j.get('outFrag', fragKey(messageId, i)) as FragRecord | undefined)?.finished === true) done++;
    let status = m.status;
    if (m.status === 'pending' && done >= m.fragments) status = m.destination.kind === 'reply' ? 'sent' : 'delivered';
    const next: OutRecord = { ...m, done, status };
    this.#j.put('outMsg', key, next);
    return messageOf(next);
  }

  /** Deletes an incomplete message and its fragments; returns how many fragments went. */
  #dropIncoming(key: string, count: number): number {
    let n = 0;
    for (let i = 0; i < count; i++) {
      const k = `${key}:${i}`;
      if (this.#j.has('inFrag', k)) {
        this.#j.delete('inFrag', k);
        n++;
      }
    }
    this.#j.delete('inMsg', key);
    return n;
  }
}
