/**
 * The client's store in IndexedDB: the record store (src/client/record-store.ts) in memory, with
 * every committed transaction written through to one IndexedDB object store (docs/browser.md).
 *
 * The store's interface is synchronous and IndexedDB is not, so durability is a promise apart:
 * each committed transaction becomes one batch; batches are written in order, each writing
 * transaction holding every batch queued since the last one (strict durability: committed to disk
 * before `complete`). `flushed()` resolves once everything committed so far is on disk. Whoever
 * makes a promise to the outside (a frame to the gateway that advances the mailbox or carries a
 * SURB whose keys we keep, an answer "queued" to the page) waits for `flushed()` first: that is
 * the durability rule that loses nothing acknowledged (docs/browser.md). A failed write (a full
 * quota, say) changes nothing on disk; `failure` is set, `flushed()` waits, and the write is tried
 * again with a backoff, carrying everything committed since (the last change of each key, so what
 * waits is bounded by the size of the state). Meanwhile nothing new is acknowledged to the gateway.
 */
import type { Journal, JournalChange } from '../src/client/journal.js';
import { RECORD_TABLES, RecordClientStore } from '../src/client/record-store.js';

const OBJECT_STORE = 'records';
const VERSION = 1;

export interface IdbClientStore {
  readonly store: RecordClientStore;
  /** The journal under the store, for the messenger's store beside it (record-messenger-store.ts). */
  readonly journal: Journal;
  /** Resolves when every transaction committed so far is on disk (waiting through failed writes, which are retried). */
  flushed(): Promise<void>;
  /** Whether committed transactions wait to be written. */
  pending(): boolean;
  /** The error of the last write while writes are failing; null once one succeeds. */
  readonly failure: Error | null;
  /** Waits for the writes, then closes the store and the database. */
  close(): Promise<void>;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

function openDatabase(name: string): Promise<IDBDatabase> {
  const r = indexedDB.open(name, VERSION);
  r.onupgradeneeded = () => {
    if (!r.result.objectStoreNames.contains(OBJECT_STORE)) r.result.createObjectStore(OBJECT_STORE);
  };
  return request(r);
}

/** A failed write is tried again after RETRY_MIN_MS, doubling to RETRY_MAX_MS, until one succeeds. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 15_000;

export interface IdbHooks {
  /** Called when writes start failing (a full quota, say): the page tells the user. */
  readonly onFailure?: (e: Error) => void;
  /** Called when a write succeeds again after failures: everything committed is on disk. */
  readonly onRecovered?: () => void;
}

/**
 * Opens (creating when missing) the IndexedDB database `name` and reads it whole into a record store.
 * @param hooks told when writes start failing and when they succeed again.
 */
export async function openIdbClientStore(name: string, hooks: IdbHooks = {}): Promise<IdbClientStore> {
  const db = await openDatabase(name);
  const tx = db.transaction(OBJECT_STORE, 'readonly');
  const os = tx.objectStore(OBJECT_STORE);
  const [keys, values] = await Promise.all([request(os.getAllKeys()), request(os.getAll())]);
  const tables = new Set<string>(RECORD_TABLES);

  /** Commits made so far, and how many of them are on disk. */
  let queued = 0;
  let committed = 0;
  /** The changes not yet on disk, the last per key: what a write of everything committed so far must put. */
  let unwritten = new Map<string, JournalChange>();
  let writing = false;
  let failure: Error | null = null;
  let retryDelay = RETRY_MIN_MS;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let closed = false;
  let waiters: Array<{ upto: number; resolve: () => void; reject: (e: Error) => void; onFailure: boolean }> = [];

  const settle = (): void => {
    const still: typeof waiters = [];
    for (const w of waiters) {
      if (committed >= w.upto) w.resolve();
      else if (failure !== null && w.onFailure) w.reject(failure);
      else still.push(w);
    }
    waiters = still;
  };

  /**
   * A write failed (a full quota, say): what it carried goes back under what was committed since,
   * and the write is tried again after a backoff. Nothing on disk changed (an IndexedDB
   * transaction is all or nothing), so what is on disk is still the state after an earlier commit.
   */
  const fail = (todo: Map<string, JournalChange>, e: unknown): void => {
    writing = false;
    const merged = new Map(todo);
    for (const [k, c] of unwritten) merged.set(k, c);
    unwritten = merged;
    const first = failure === null;
    failure = e instanceof Error ? e : new Error(String(e));
    settle();
    if (first) hooks.onFailure?.(failure);
    if (closed) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      pump();
    }, retryDelay);
    retryDelay = Math.min(RETRY_MAX_MS, retryDelay * 2);
  };

  const pump = (): void => {
    if (writing || unwritten.size === 0 || retryTimer !== null || closed) return;
    const todo = unwritten;
    unwritten = new Map();
    const upto = queued;
    writing = true;
    let w: IDBTransaction | null = null;
    try {
      w = db.transaction(OBJECT_STORE, 'readwrite', { durability: 'strict' });
      const target = w.objectStore(OBJECT_STORE);
      for (const c of todo.values()) {
        if (c.value === undefined) target.delete([c.table, c.key]);
        else target.put(c.value, [c.table, c.key]);
      }
    } catch (e) {
      // A request refused at once: the transaction must not commit what went before it.
      try {
        w?.abort();
      } catch {
        // already finished
      }
      fail(todo, e);
      return;
    }
    const tx = w;
    tx.oncomplete = () => {
      writing = false;
      committed = upto;
      if (failure !== null) {
        failure = null;
        retryDelay = RETRY_MIN_MS;
        hooks.onRecovered?.();
      }
      settle();
      pump();
    };
    // A request's error aborts the whole transaction (no preventDefault: nothing of it may commit).
    tx.onabort = () => fail(todo, tx.error ?? new Error('IndexedDB write aborted'));
  };

  const journal = RecordClientStore.journal((batch) => {
    queued++;
    for (const c of batch) unwritten.set(`${c.table}\u0000${c.key}`, c);
    pump();
  });
  keys.forEach((k, i) => {
    if (!Array.isArray(k) || k.length !== 2 || typeof k[0] !== 'string' || typeof k[1] !== 'string' || !tables.has(k[0])) return;
    journal.load(k[0], k[1], values[i]);
  });
  const store = new RecordClientStore(journal);

  const flushed = (): Promise<void> => {
    if (committed >= queued) return Promise.resolve();
    return new Promise((resolve, reject) => waiters.push({ upto: queued, resolve, reject, onFailure: false }));
  };

  return {
    store,
    journal,
    flushed,
    pending: () => committed < queued,
    get failure() {
      return failure;
    },
    close: async () => {
      try {
        // What is committed goes to disk first, unless writes are failing (then it is lost, as in a
        // killed tab: nothing acknowledged depended on it).
        if (committed < queued && failure === null) await new Promise<void>((resolve, reject) => waiters.push({ upto: queued, resolve, reject, onFailure: true }));
      } catch {
        // writes failing: close anyway
      } finally {
        closed = true;
        if (retryTimer !== null) clearTimeout(retryTimer);
        store.close();
        db.close();
      }
    },
  };
}
