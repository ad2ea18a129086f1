/**
 * Group commit for the mailbox store: deliveries that arrive within one turn of the event loop
 * are written together, in one transaction and so one fsync, and each caller learns its result
 * only after that commit. An fsync costs the same for one entry as for hundreds, so this is how a
 * gateway keeps up with thousands of deliveries a second on a disk that does a few hundred fsyncs.
 *
 * The store is synchronous (better-sqlite3): while a batch commits, the event loop waits and new
 * packets wait in socket buffers; they form the next batch. Batches therefore grow with the load
 * by themselves, up to `maxBatch`.
 *
 * Gateways no longer commit this way: a commit on the thread that answers fetches delays the
 * answers, which the traffic rule forbids. They use GatewayMailbox (gateway-mailbox.ts), which
 * forms groups the same way and hands them to a writer thread. This committer stays for a store
 * used on one thread alone, and as the old path that `npm run bench -- fetch` measures against.
 */
import { BackchannelError } from '../errors.js';
import { aint } from '../util/bytes.js';
import type { MailboxEntry, MailboxStore, StoreResult } from './mailbox.js';
import { checkMailboxEntry } from './mailbox.js';

/** Entries per transaction at most: large enough to amortise the fsync, small enough that one commit blocks the event loop for only a few milliseconds. */
export const DEFAULT_MAX_BATCH = 512;
/** Entries waiting for a commit at most; beyond, a delivery is refused at once as if the store were full (shedding load instead of memory). */
export const DEFAULT_MAX_PENDING = 10_000;

export interface GroupCommitOptions {
  /** Entries per transaction at most. Default 512. */
  maxBatch?: number;
  /** Entries waiting at most; more resolve at once with ERR_MAILBOX_FULL. Default 10 000. */
  maxPending?: number;
  /**
   * Runs `fn` once the current turn of the event loop is over. Default `setImmediate`, which lets
   * the I/O callbacks of this turn join the batch; the simulator passes its own.
   */
  schedule?: (fn: () => void) => void;
}

interface Pending {
  entry: MailboxEntry;
  resolve(result: StoreResult): void;
  reject(err: unknown): void;
}

/** Batches `store` requests into `storeBatch` transactions. Does not own the store: closing this does not close it. */
export class GroupCommitter {
  readonly #store: Pick<MailboxStore, 'storeBatch'>;
  readonly #maxBatch: number;
  readonly #maxPending: number;
  readonly #schedule: (fn: () => void) => void;
  #queue: Pending[] = [];
  #scheduled = false;
  #closed = false;

  /** @throws {TypeError | RangeError} for bad options. */
  constructor(store: Pick<MailboxStore, 'storeBatch'>, options: GroupCommitOptions = {}) {
    if (typeof store?.storeBatch !== 'function') throw new TypeError('"store" expected a MailboxStore');
    const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    aint('maxBatch', maxBatch, 1, 1_000_000);
    aint('maxPending', maxPending, 1, Number.MAX_SAFE_INTEGER);
    const schedule = options.schedule ?? ((fn: () => void) => void setImmediate(fn));
    if (typeof schedule !== 'function') throw new TypeError('"schedule" expected a function');
    this.#store = store;
    this.#maxBatch = maxBatch;
    this.#maxPending = maxPending;
    this.#schedule = schedule;
  }

  /** Entries waiting for a commit. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Queues one entry for the next batch; the promise settles after the batch's commit. The
   * entry's bytes are copied, so the caller may reuse its buffers at once.
   * Resolves with { ok: false, code: 'ERR_MAILBOX_FULL' } at once when `maxPending` entries wait.
   * @throws (rejects) {TypeError | RangeError} for a malformed entry; {BackchannelError}
   *   ERR_MAILBOX_STORE after close() or when the batch's transaction failed.
   */
  submit(entry: MailboxEntry): Promise<StoreResult> {
    if (this.#closed) return Promise.reject(new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: submit after the group committer closed'));
    try {
      checkMailboxEntry(entry);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#queue.length >= this.#maxPending) return Promise.resolve({ ok: false, code: 'ERR_MAILBOX_FULL' });
    const copy: MailboxEntry = {
      recipient: entry.recipient.slice(),
      surbId: entry.surbId === null ? null : entry.surbId.slice(),
      payload: entry.payload.slice(),
    };
    return new Promise<StoreResult>((resolve, reject) => {
      this.#queue.push({ entry: copy, resolve, reject });
      this.#wake();
    });
  }

  /** Writes everything queued now, in batches of at most `maxBatch`; resolves once all of it is committed (or failed: each submit learns its own outcome). */
  flush(): Promise<void> {
    while (this.#queue.length > 0) this.#writeBatch();
    return Promise.resolve();
  }

  /** Flushes, then refuses further submits. Idempotent. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
  }

  #wake(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#schedule(() => {
      this.#scheduled = false;
      this.#writeBatch();
      // One batch per turn: what is left waits for the next turn, so other I/O runs in between.
      if (this.#queue.length > 0) this.#wake();
    });
  }

  #writeBatch(): void {
    const batch = this.#queue.length <= this.#maxBatch ? this.#queue : this.#queue.slice(0, this.#maxBatch);
    this.#queue = batch === this.#queue ? [] : this.#queue.slice(this.#maxBatch);
    if (batch.length === 0) return;
    let results: StoreResult[];
    try {
      results = this.#store.storeBatch(batch.map((p) => p.entry));
      if (results.length !== batch.length) {
        throw new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: storeBatch returned the wrong number of results');
      }
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
  }
}
