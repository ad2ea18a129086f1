/**
 * The unwrap worker: a `node:worker_threads` entry point that unwraps batches of Sphinx packets
 * for UnwrapPool (unwrap-pool.ts), and the batch format both sides share.
 *
 The packets travel in a ring of `capacity` slots in a SharedArrayBuffer (workerData.ring, laid
 * out by ringLayout): slot i has an epoch list (Float64, EPOCH_STRIDE: how many, then the epochs),
 * a record (RECORD_LENGTH bytes, layout below) and a packet (packetLength bytes). Position p is
 * slot p % capacity.
 *
 * Messages, pool → worker (posted in order on one port, so a key set before a batch is there
 * when the batch is):
 *   { type: 'setKey', epoch, key }           key: a 32-byte Uint8Array whose buffer is transferred
 *   { type: 'deleteKey', epoch }             the worker zeroes its copy
 *   { type: 'unwrap', start, count }         positions [start, start + count) hold packets
 *   { type: 'close' }                        zero every key and exit
 * worker → pool:
 *   { type: 'ready' }
 *   { type: 'unwrapped', start, count }      each of those slots now holds its outcome: the record,
 *       and in the packet area the outgoing packet (forward) or the payload (final, `length`
 *       bytes from the start of the slot)
 *
 * This module is also imported by the pool on the calling thread for the shared layout and for
 * `unwrapWithKeys`, which both the workers and the pool's inline mode (workers: 0) run, so that
 * the two give the same outcomes; the message loop starts only inside a pool's worker.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { nodeBackend } from '../crypto/node.js';
import { BackchannelError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { NODE_ID_LENGTH, RECIPIENT_ID_LENGTH, REPLAY_TAG_LENGTH, SURB_ID_LENGTH } from '../sphinx/constants.js';
import { geometryFromForwardPayload, geometryFromUserPayload } from '../sphinx/geometry.js';
import type { Geometry } from '../sphinx/geometry.js';
import { Sphinx } from '../sphinx/sphinx.js';
import { wipe } from '../util/bytes.js';
import type { PacketFormat } from '../sphinx/format.js';
import type { UnwrapOutcome } from './unwrap-pool.js';

/** Keys tried per packet at most: current, previous and next epoch, and one to spare. */
export const MAX_EPOCHS_PER_UNWRAP = 4;
/** Float64 slots per packet in a batch's epoch list: the count, then the epochs. */
export const EPOCH_STRIDE = 1 + MAX_EPOCHS_PER_UNWRAP;

/** Marks the workerData of a pool's worker, so that importing this module elsewhere starts nothing. */
export const WORKER_MARK = 'backchannel-unwrap-worker';

/** What a worker needs to rebuild the pool's geometry (a Geometry object itself would do, but this is checked). */
export interface GeometryParams {
  readonly hops: number;
  readonly forwardPayloadLength: number;
  readonly userForwardPayloadLength: number;
  readonly withSurb: boolean;
  readonly packetLength: number;
}

export interface UnwrapWorkerData {
  readonly mark: typeof WORKER_MARK;
  readonly geometry: GeometryParams;
  /** The worker's ring (ringLayout(capacity, packetLength)), shared with the pool. */
  readonly ring: SharedArrayBuffer;
  readonly capacity: number;
}

/** Where the parts of a ring of `capacity` slots lie in its shared buffer, in bytes. */
export interface RingLayout {
  readonly epochsOffset: number;
  readonly recordsOffset: number;
  readonly packetsOffset: number;
  readonly bytes: number;
}

/** The layout of a ring: epoch lists first (8-byte aligned), then records, then packets. */
export function ringLayout(capacity: number, packetLength: number): RingLayout {
  const recordsOffset = capacity * EPOCH_STRIDE * Float64Array.BYTES_PER_ELEMENT;
  const packetsOffset = recordsOffset + capacity * RECORD_LENGTH;
  return { epochsOffset: 0, recordsOffset, packetsOffset, bytes: packetsOffset + capacity * packetLength };
}

/**
 * Per-packet record: kind (1), epoch index or error code index (1), flags (1), reserved (1),
 * delay or payload length (uint32 BE, 4), next hop or recipient (32), SURB id (16), replay tag (32),
 * epoch (float64 BE, 8).
 */
export const RecordOffset = {
  kind: 0,
  code: 1,
  flags: 2,
  number: 4,
  id: 8,
  surbId: 8 + NODE_ID_LENGTH,
  replayTag: 8 + NODE_ID_LENGTH + SURB_ID_LENGTH,
  epoch: 8 + NODE_ID_LENGTH + SURB_ID_LENGTH + REPLAY_TAG_LENGTH,
} as const;
export const RECORD_LENGTH = RecordOffset.epoch + 8;
export const RecordKind = { forward: 0, final: 1, error: 2, noKey: 3 } as const;
export const FLAG_SURB = 1;

/**
 * The codes an outcome can carry, by index in a record. ERR_SERVER stands for anything that is not
 * a Sphinx error (a bug, or a worker that died with the packet).
 */
export const OUTCOME_CODES = [
  'ERR_SERVER',
  'ERR_SPHINX_LENGTH',
  'ERR_SPHINX_VERSION',
  'ERR_SPHINX_MAC',
  'ERR_SPHINX_POINT',
  'ERR_SPHINX_COMMAND',
  'ERR_SPHINX_TAG',
  'ERR_SPHINX_GEOMETRY',
  'ERR_LINK_CLOSED',
] as const satisfies readonly ErrorCode[];
export type OutcomeCode = (typeof OUTCOME_CODES)[number];

function outcomeCode(e: unknown): OutcomeCode {
  if (e instanceof BackchannelError) {
    const i = (OUTCOME_CODES as readonly string[]).indexOf(e.code);
    if (i > 0) return OUTCOME_CODES[i]!;
  }
  return 'ERR_SERVER';
}

/**
 * The geometry that `p` describes, rebuilt by the same factory that made it.
 * @throws {BackchannelError} ERR_SPHINX_GEOMETRY when the parameters are out of range or do not
 *   reproduce the given packet length.
 */
export function geometryFromParams(p: GeometryParams): Geometry {
  const g = p.withSurb ? geometryFromUserPayload(p.hops, p.userForwardPayloadLength, true) : geometryFromForwardPayload(p.hops, p.forwardPayloadLength);
  if (g.packetLength !== p.packetLength || g.forwardPayloadLength !== p.forwardPayloadLength) {
    throw new BackchannelError('ERR_SPHINX_GEOMETRY', 'mix: geometry parameters are inconsistent');
  }
  return g;
}

/** The parameters that geometryFromParams rebuilds `g` from. */
export function geometryParams(g: Geometry): GeometryParams {
  return {
    hops: g.hops,
    forwardPayloadLength: g.forwardPayloadLength,
    userForwardPayloadLength: g.userForwardPayloadLength,
    withSurb: g.withSurb,
    packetLength: g.packetLength,
  };
}

/**
 * Unwraps `packet` with the keys of `epochs` (the first `count` entries from `offset`), in order.
 * A MAC mismatch under one key moves on to the next; any other error is final (it does not depend
 * on the key, or comes after the MAC matched). No key for any epoch gives 'no_key'.
 */
export function unwrapWithKeys(
  sphinx: Pick<PacketFormat, 'unwrap'>,
  keys: ReadonlyMap<number, Uint8Array>,
  packet: Uint8Array,
  epochs: ArrayLike<number>,
  offset: number,
  count: number,
): UnwrapOutcome {
  let tried = false;
  for (let e = 0; e < count; e++) {
    const epoch = epochs[offset + e]!;
    const key = keys.get(epoch);
    if (key === undefined) continue;
    tried = true;
    try {
      const r = sphinx.unwrap(key, packet);
      return r.kind === 'forward'
        ? { kind: 'forward', epoch, nextHop: r.nextHop, delayMs: r.delayMs, packet: r.packet, replayTag: r.replayTag }
        : { kind: 'final', epoch, recipient: r.recipient, surbId: r.surbId, payload: r.payload, replayTag: r.replayTag };
    } catch (err) {
      const code = outcomeCode(err);
      if (code !== 'ERR_SPHINX_MAC') return { kind: 'error', code };
    }
  }
  return tried ? { kind: 'error', code: 'ERR_SPHINX_MAC' } : { kind: 'no_key' };
}

/** Writes `o` as record `rec` (RECORD_LENGTH bytes) and its bytes into `slot`. */
export function encodeOutcome(o: UnwrapOutcome, slot: Uint8Array, rec: Uint8Array): void {
  const view = new DataView(rec.buffer, rec.byteOffset, RECORD_LENGTH);
  switch (o.kind) {
    case 'forward':
      rec[RecordOffset.kind] = RecordKind.forward;
      view.setUint32(RecordOffset.number, o.delayMs);
      rec.set(o.nextHop, RecordOffset.id);
      rec.set(o.replayTag, RecordOffset.replayTag);
      view.setFloat64(RecordOffset.epoch, o.epoch);
      slot.set(o.packet);
      break;
    case 'final':
      rec[RecordOffset.kind] = RecordKind.final;
      view.setUint32(RecordOffset.number, o.payload.length);
      rec.set(o.recipient, RecordOffset.id);
      if (o.surbId !== null) {
        rec[RecordOffset.flags] = FLAG_SURB;
        rec.set(o.surbId, RecordOffset.surbId);
      }
      rec.set(o.replayTag, RecordOffset.replayTag);
      view.setFloat64(RecordOffset.epoch, o.epoch);
      slot.set(o.payload);
      break;
    case 'error':
      rec[RecordOffset.kind] = RecordKind.error;
      rec[RecordOffset.code] = Math.max(0, (OUTCOME_CODES as readonly string[]).indexOf(o.code));
      break;
    case 'no_key':
      rec[RecordOffset.kind] = RecordKind.noKey;
      break;
  }
}

/** Reads record `rec` and its slot back into an outcome; every array returned is a fresh copy. */
export function decodeOutcome(slot: Uint8Array, rec: Uint8Array): UnwrapOutcome {
  const view = new DataView(rec.buffer, rec.byteOffset, RECORD_LENGTH);
  switch (rec[RecordOffset.kind]) {
    case RecordKind.forward:
      return {
        kind: 'forward',
        epoch: view.getFloat64(RecordOffset.epoch),
        nextHop: rec.slice(RecordOffset.id, RecordOffset.id + NODE_ID_LENGTH),
        delayMs: view.getUint32(RecordOffset.number),
        packet: slot.slice(),
        replayTag: rec.slice(RecordOffset.replayTag, RecordOffset.replayTag + REPLAY_TAG_LENGTH),
      };
    case RecordKind.final:
      return {
        kind: 'final',
        epoch: view.getFloat64(RecordOffset.epoch),
        recipient: rec.slice(RecordOffset.id, RecordOffset.id + RECIPIENT_ID_LENGTH),
        surbId: (rec[RecordOffset.flags]! & FLAG_SURB) !== 0 ? rec.slice(RecordOffset.surbId, RecordOffset.surbId + SURB_ID_LENGTH) : null,
        payload: slot.slice(0, view.getUint32(RecordOffset.number)),
        replayTag: rec.slice(RecordOffset.replayTag, RecordOffset.replayTag + REPLAY_TAG_LENGTH),
      };
    case RecordKind.error:
      return { kind: 'error', code: OUTCOME_CODES[rec[RecordOffset.code]!] ?? 'ERR_SERVER' };
    case RecordKind.noKey:
      return { kind: 'no_key' };
    default:
      return { kind: 'error', code: 'ERR_SERVER' };
  }
}

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
          const outcome = unwrapWithKeys(sphinx, keys, slot, epochs, off + 1, epochs[off]!);
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
