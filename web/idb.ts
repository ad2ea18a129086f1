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
 * the durability rule that loses nothing acknowledged (docs/browser.md). A failed write (a full quota, say) makes
 * `failure` non-null and every later `flushed()` reject: nothing more is acknowledged.
 */
import type { Journal, JournalChange } from '../src/client/journal.js';
import { RECORD_TABLES, RecordClientStore } from '../src/client/record-store.js';

const OBJECT_STORE = 'records';
const VERSION = 1;

export interface IdbClientStore {
  readonly store: RecordClientStore;
  /** The journal under the store, for the messenger's store beside it (record-messenger-store.ts). */
  readonly journal: Journal;
  /** Resolves when every transaction committed so far is on disk; rejects once a write failed. */
  flushed(): Promise<void>;
  /** Whether committed transactions wait to be written. */
  pending(): boolean;
  /** The error of the write that failed, or null. */
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

/**
 * Opens (creating when missing) the IndexedDB database `name` and reads it whole into a record store.
 * @param onFailure called once when a write fails (the page tells the user; the engine stops sending).
 */
export async function openIdbClientStore(name: string, onFailure?: (e: Error) => void): Promise<IdbClientStore> {
  const db = await openDatabase(name);
  const tx = db.transaction(OBJECT_STORE, 'readonly');
  const os = tx.objectStore(OBJECT_STORE);
  const [keys, values] = await Promise.all([request(os.getAllKeys()), request(os.getAll())]);
  const tables = new Set<string>(RECORD_TABLES);

  let queued = 0;
  let committed = 0;
  let batches: JournalChange[][] = [];
  let writing = false;
  let failure: Error | null = null;
  let waiters: Array<{ upto: number; resolve: () => void; reject: (e: Error) => void }> = [];

  const settle = (): void => {
    const still: typeof waiters = [];
    for (const w of waiters) {
      if (failure !== null) w.reject(failure);
      else if (committed >= w.upto) w.resolve();
      else still.push(w);
    }
    waiters = still;
  };

  const fail = (e: unknown): void => {
    if (failure !== null) return;
    failure = e instanceof Error ? e : new Error(String(e));
    writing = false;
    batches = [];
    settle();
    onFailure?.(failure);
  };

  const pump = (): void => {
    if (writing || batches.length === 0 || failure !== null) return;
    const todo = batches;
    batches = [];
    const upto = queued;
    writing = true;
    let w: IDBTransaction;
    try {
      w = db.transaction(OBJECT_STORE, 'readwrite', { durability: 'strict' });
      const target = w.objectStore(OBJECT_STORE);
      for (const batch of todo) {
        for (const c of batch) {
          if (c.value === undefined) target.delete([c.table, c.key]);
          else target.put(c.value, [c.table, c.key]);
        }
      }
    } catch (e) {
      fail(e);
      return;
    }
    w.oncomplete = () => {
      writing = false;
      committed = upto;
      settle();
      pump();
    };
    w.onabort = () => fail(w.error ?? new Error('IndexedDB write aborted'));
    w.onerror = (ev) => {
      ev.preventDefault();
      fail(w.error ?? new Error('IndexedDB write failed'));
    };
  };

  const journal = RecordClientStore.journal((batch) => {
    if (failure !== null) return;
    queued++;
    batches.push(batch);
    pump();
  });
  keys.forEach((k, i) => {
    if (!Array.isArray(k) || k.length !== 2 || typeof k[0] !== 'string' || typeof k[1] !== 'string' || !tables.has(k[0])) return;
    journal.load(k[0], k[1], values[i]);
  });
  const store = new RecordClientStore(journal);

  const flushed = (): Promise<void> => {
    if (failure !== null) return Promise.reject(failure);
    if (committed >= queued) return Promise.resolve();
    return new Promise((resolve, reject) => waiters.push({ upto: queued, resolve, reject }));
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
        await flushed();
      } finally {
        store.close();
        db.close();
      }
    },
  };
}
