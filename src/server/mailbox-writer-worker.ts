/**
 * The mailbox writer thread: a `node:worker_threads` entry point that owns the connection doing
 * every write of a gateway's mailbox store (mailbox-writer.ts). It commits the groups it is sent
 * one after another, each in one transaction with `synchronous = FULL`, and answers each only
 * once it is durable. Entries are stamped with the time the main thread sent with the group, so
 * that the gateway's clock, not this thread's, says when an entry was stored.
 *
 * Messages (ToWriter, FromWriter in mailbox-writer.ts):
 *   main -> thread: { type: 'commit', id, now, group }, { type: 'close' }
 *   thread -> main: { type: 'ready' } or { type: 'open_failed', message },
 *                   { type: 'committed', id, results } or { type: 'failed', id, message, rangeError }
 *
 * The message loop starts only inside a writer's thread (workerData carries WRITER_MARK).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { Clock } from '../ops/clock.js';
import { systemClock } from '../ops/clock.js';
import type { MailboxStore } from './mailbox.js';
import { openMailboxStore } from './mailbox.js';
import { WRITER_MARK } from './mailbox-writer.js';
import type { FromWriter, ToWriter, WriterWorkerData } from './mailbox-writer.js';

function serve(port: MessagePort, data: WriterWorkerData): void {
  let now = 0;
  const clock: Clock = { now: () => now, setTimer: systemClock.setTimer, clearTimer: systemClock.clearTimer };
  const post = (msg: FromWriter): void => port.postMessage(msg);
  let store: MailboxStore;
  try {
    store = openMailboxStore(data.path, {
      clock,
      ...(data.maxPerMailbox === undefined ? {} : { maxPerMailbox: data.maxPerMailbox }),
      ...(data.maxTotal === undefined ? {} : { maxTotal: data.maxTotal }),
      ...(data.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: data.busyTimeoutMs }),
    });
  } catch (err) {
    post({ type: 'open_failed', message: err instanceof Error ? err.message : 'unknown error' });
    port.close();
    return;
  }
  port.on('message', (msg: ToWriter) => {
    switch (msg.type) {
      case 'commit':
        now = msg.now;
        try {
          post({ type: 'committed', id: msg.id, results: store.commitGroup(msg.group) });
        } catch (err) {
          // Messages of the store's errors are module-prefixed and carry no key, id or payload.
          post({ type: 'failed', id: msg.id, message: err instanceof Error ? err.message : 'unknown error', rangeError: err instanceof RangeError || err instanceof TypeError });
        }
        return;
      case 'close':
        try {
          store.close();
        } finally {
          port.close();
        }
        return;
    }
  });
  post({ type: 'ready' });
}

function isWriterData(d: unknown): d is WriterWorkerData {
  return typeof d === 'object' && d !== null && (d as { mark?: unknown }).mark === WRITER_MARK;
}

if (parentPort !== null && isWriterData(workerData)) serve(parentPort, workerData);
