/**
 * The unwrap worker: a `node:worker_threads` entry point that unwraps the packets UnwrapPool
 * (unwrap-pool.ts) puts in its ring of shared memory (unwrap-ring.ts), in place, with the same
 * pure unwrapWithKeys (unwrap.ts) that the inline unwrapper runs.
 *
 * Messages, pool -> worker (posted in order on one port, so a key set before a batch is there
 * when the batch is):
 *   { type: 'setKey', epoch, key }           key: a 32-byte Uint8Array whose buffer is transferred
 *   { type: 'deleteKey', epoch }             the worker zeroes its copy
 *   { type: 'unwrap', start, count }         positions [start, start + count) hold packets
 *   { type: 'close' }                        zero every key and exit
 * worker -> pool:
 *   { type: 'ready' }
 *   { type: 'unwrapped', start, count }      each of those slots now holds its outcome
 *
 * The message loop starts only inside a pool's worker (workerData carries WORKER_MARK).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { nodeBackend } from '../crypto/node.js';
import { Sphinx } from '../sphinx/sphinx.js';
import { wipe } from '../util/bytes.js';
import { EPOCH_STRIDE, RECORD_LENGTH, WORKER_MARK, encodeOutcome, geometryFromParams, ringLayout } from './unwrap-ring.js';
import type { UnwrapWorkerData } from './unwrap-ring.js';
import { unwrapWithKeys } from './unwrap.js';

type ToWorker =
  | { readonly type: 'setKey'; readonly epoch: number; readonly key: Uint8Array }
  | { readonly type: 'deleteKey'; readonly epoch: number }
  | { readonly type: 'unwrap'; readonly start: number; readonly count: number }
  | { readonly type: 'close' };

function serve(port: MessagePort, data: UnwrapWorkerData): void {
  const geometry = geometryFromParams(data.geometry);
  const sphinx = new Sphinx(geometry, nodeBackend);
  const size = geometry.packetLength;
  const keys = new Map<number, Uint8Array>();
  const capacity = data.capacity;
  const layout = ringLayout(capacity, size);
  const epochs = new Float64Array(data.ring, layout.epochsOffset, capacity * EPOCH_STRIDE);

  port.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'setKey':
        wipe(keys.get(msg.epoch));
        keys.set(msg.epoch, msg.key);
        break;
      case 'deleteKey':
        wipe(keys.get(msg.epoch));
        keys.delete(msg.epoch);
        break;
      case 'unwrap': {
        for (let p = msg.start; p < msg.start + msg.count; p++) {
          const at = p % capacity;
          const slot = new Uint8Array(data.ring, layout.packetsOffset + at * size, size);
          const off = at * EPOCH_STRIDE;
          // Opened in place in the ring: no packet allocated or copied back.
          const outcome = unwrapWithKeys(sphinx, keys, slot, epochs, off + 1, epochs[off]!, true);
          encodeOutcome(outcome, slot, new Uint8Array(data.ring, layout.recordsOffset + at * RECORD_LENGTH, RECORD_LENGTH));
        }
        port.postMessage({ type: 'unwrapped', start: msg.start, count: msg.count });
        break;
      }
      case 'close':
        for (const k of keys.values()) wipe(k);
        keys.clear();
        port.close();
        break;
    }
  });
  port.postMessage({ type: 'ready' });
}

function isWorkerData(d: unknown): d is UnwrapWorkerData {
  return typeof d === 'object' && d !== null && (d as { mark?: unknown }).mark === WORKER_MARK;
}

if (parentPort !== null && isWorkerData(workerData)) serve(parentPort, workerData);
