/**
 * Where a gateway's mailbox writes happen. A writer commits one group (registrations, deletions,
 * entries: MailboxGroup in mailbox.ts) at a time and says when it is durable.
 *
 * - `openWorkerMailboxWriter`: a connection of its own on a worker thread (mailbox-writer-worker.ts)
 *   does every write, with `synchronous = FULL`; the gateway's main thread keeps a connection that
 *   only reads, which WAL lets run while the writer commits. No fsync, and no write at all, then
 *   happens on the thread that answers fetches: a fetch is answered in the same time whether a
 *   commit is under way or not (the traffic rule of the design notes).
 * - `inlineMailboxWriter`: commits on the calling thread, synchronously; for the simulator, whose
 *   store lives in memory and whose time is virtual, and for tests.
 */
import { Worker } from 'node:worker_threads';
import { BackchannelError } from '../errors.js';
import type { Clock } from '../ops/clock.js';
import { systemClock } from '../ops/clock.js';
import type { MailboxGroup, MailboxStore, MailboxStoreOptions, StoreResult } from './mailbox.js';
import { checkMailboxGroup } from './mailbox.js';

/** Commits mailbox groups, one after another, in the order they were given. */
export interface MailboxWriter {
  /**
   * Commits `group`; resolves with one result per entry once the group is durable.
   * @throws (rejects) {BackchannelError} ERR_MAILBOX_STORE when the transaction failed (nothing
   *   of the group is written) or the writer is closed; {TypeError | RangeError} for a malformed group.
   */
  commit(group: MailboxGroup): Promise<StoreResult[]>;
  /** Waits for the groups given so far, then stops (the worker thread exits). Idempotent. */
  close(): Promise<void>;
}

/**
 * A writer that commits on the calling thread, in `store.commitGroup`. It does not own the store:
 * closing the writer leaves the store open.
 */
export function inlineMailboxWriter(store: Pick<MailboxStore, 'commitGroup'>): MailboxWriter {
  if (typeof store?.commitGroup !== 'function') throw new TypeError('"store" expected a MailboxStore');
  let closed = false;
  return {
    commit(group) {
      if (closed) return Promise.reject(new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: commit after the writer closed'));
      try {
        return Promise.resolve(store.commitGroup(group));
      } catch (err) {
        return Promise.reject(err);
      }
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}

/** Marks the workerData of a writer thread, so that the module does nothing when imported elsewhere. */
export const WRITER_MARK = 'backchannel-mailbox-writer';
/** How long a closing writer thread may take to finish its groups and close the database before it is terminated. */
const CLOSE_GRACE_MS = 10_000;

/** What the writer thread is started with. */
export interface WriterWorkerData {
  readonly mark: typeof WRITER_MARK;
  readonly path: string;
  readonly maxPerMailbox?: number;
  readonly maxTotal?: number;
  readonly busyTimeoutMs?: number;
}

/** Messages between the writer and its thread. */
export type ToWriter = { readonly type: 'commit'; readonly id: number; readonly now: number; readonly group: MailboxGroup } | { readonly type: 'close' };
export type FromWriter =
  | { readonly type: 'ready' }
  | { readonly type: 'open_failed'; readonly message: string }
  | { readonly type: 'committed'; readonly id: number; readonly results: StoreResult[] }
  | { readonly type: 'failed'; readonly id: number; readonly message: string; readonly rangeError: boolean };

export interface WorkerMailboxWriterOptions extends Omit<MailboxStoreOptions, 'clock'> {
  /** Stamps `stored_at` (read on this thread, once per group). Default: the system clock. */
  readonly clock?: Clock;
  /** Starts the thread; `new Worker` by default. Tests wrap it to end the thread as a crash would. */
  readonly spawnWorker?: (url: URL, options: { workerData: WriterWorkerData }) => Worker;
}

/**
 * Starts a writer thread on the mailbox store at `path` (created and migrated first by the
 * caller's own openMailboxStore, whose connection then only reads); resolves once the thread has
 * opened the database.
 * @throws (rejects) {BackchannelError} ERR_MAILBOX_STORE when the thread cannot open the store.
 */
export async function openWorkerMailboxWriter(path: string, options: WorkerMailboxWriterOptions = {}): Promise<MailboxWriter> {
  if (typeof path !== 'string' || path === '' || path === ':memory:') throw new TypeError('"path" expected the path of a mailbox file');
  const writer = new WorkerMailboxWriter(path, options);
  await writer.ready;
  return writer;
}

interface InFlight {
  resolve(results: StoreResult[]): void;
  reject(err: unknown): void;
}

class WorkerMailboxWriter implements MailboxWriter {
  readonly ready: Promise<void>;
  readonly #worker: Worker;
  readonly #clock: Clock;
  readonly #inFlight = new Map<number, InFlight>();
  #nextId = 1;
  #exited = false;
  #started = false;
  #closing: Promise<void> | null = null;

  constructor(path: string, options: WorkerMailboxWriterOptions) {
    this.#clock = options.clock ?? systemClock;
    const data: WriterWorkerData = {
      mark: WRITER_MARK,
      path,
      ...(options.maxPerMailbox === undefined ? {} : { maxPerMailbox: options.maxPerMailbox }),
      ...(options.maxTotal === undefined ? {} : { maxTotal: options.maxTotal }),
      ...(options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs }),
    };
    const spawn = options.spawnWorker ?? ((url, opts) => new Worker(url, opts));
    const w = spawn(new URL('./mailbox-writer-worker.js', import.meta.url), { workerData: data });
    this.#worker = w;
    let ready: { resolve(): void; reject(err: unknown): void } | null = null;
    this.ready = new Promise<void>((resolve, reject) => {
      ready = { resolve, reject };
    });
    w.on('message', (msg: FromWriter) => {
      switch (msg.type) {
        case 'ready':
          this.#started = true;
          this.#updateRef();
          ready?.resolve();
          ready = null;
          return;
        case 'open_failed':
          ready?.reject(new BackchannelError('ERR_MAILBOX_STORE', `mailbox: the writer thread cannot open the store (${msg.message})`));
          ready = null;
          return;
        case 'committed':
        case 'failed': {
          const p = this.#inFlight.get(msg.id);
          if (p === undefined) return;
          this.#inFlight.delete(msg.id);
          this.#updateRef();
          if (msg.type === 'committed') p.resolve(msg.results);
          else if (msg.rangeError) p.reject(new RangeError(msg.message));
          else p.reject(new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: the group commit failed', { cause: new Error(msg.message) }));
          return;
        }
      }
    });
    // 'error' is followed by 'exit'; without a listener the thread's exception would be thrown here.
    w.on('error', () => {});
    w.on('exit', () => {
      this.#exited = true;
      ready?.reject(new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: the writer thread exited while starting'));
      ready = null;
      const lost = new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: the writer thread stopped before the commit was durable');
      for (const p of this.#inFlight.values()) p.reject(lost);
      this.#inFlight.clear();
    });
    // An idle writer does not keep the process alive; one starting or with groups in flight does.
    this.#updateRef();
  }

  commit(group: MailboxGroup): Promise<StoreResult[]> {
    if (this.#closing !== null || this.#exited) {
      return Promise.reject(new BackchannelError('ERR_MAILBOX_STORE', this.#exited ? 'mailbox: the writer thread stopped' : 'mailbox: commit after the writer closed'));
    }
    try {
      checkMailboxGroup(group);
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.#nextId++;
    return new Promise<StoreResult[]>((resolve, reject) => {
      this.#inFlight.set(id, { resolve, reject });
      this.#updateRef();
      const msg: ToWriter = { type: 'commit', id, now: this.#clock.now(), group };
      this.#worker.postMessage(msg);
    });
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      if (this.#exited) {
        resolve();
        return;
      }
      const timer = setTimeout(() => void this.#worker.terminate().finally(resolve), CLOSE_GRACE_MS);
      this.#worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#worker.ref();
      // Posted after every commit: the thread finishes those first, then closes the database.
      const msg: ToWriter = { type: 'close' };
      this.#worker.postMessage(msg);
    });
    return this.#closing;
  }

  #updateRef(): void {
    if (this.#exited || this.#closing !== null) return;
    if (!this.#started || this.#inFlight.size > 0) this.#worker.ref();
    else this.#worker.unref();
  }
}
