/**
 * The shared memory between the unwrap pool (unwrap-pool.ts) and its workers (unwrap-worker.ts):
 * the ring layout, the per-packet record, and the geometry's parameters a worker rebuilds it from.
 *
 * The packets travel in a ring of `capacity` slots in a SharedArrayBuffer (workerData.ring, laid
 * out by ringLayout): slot i has an epoch list (Float64, EPOCH_STRIDE: how many, then the epochs),
 * a record (RECORD_LENGTH bytes, layout below) and a packet (packetLength bytes). Position p is
 * slot p % capacity. After a worker has unwrapped a slot it holds the outcome: the record, and in
 * the packet area the outgoing packet (forward) or the payload (final, `length` bytes from the
 * start of the slot).
 */
import { BackchannelError } from '../errors.js';
import { NODE_ID_LENGTH, RECIPIENT_ID_LENGTH, REPLAY_TAG_LENGTH, SURB_ID_LENGTH } from '../sphinx/constants.js';
import { geometryFromForwardPayload, geometryFromUserPayload } from '../sphinx/geometry.js';
import type { Geometry } from '../sphinx/geometry.js';
import { MAX_EPOCHS_PER_UNWRAP, OUTCOME_CODES } from './unwrap.js';
import type { UnwrapOutcome } from './unwrap.js';

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
      // Opened in place, the packet is already where it goes.
      if (o.packet.buffer !== slot.buffer || o.packet.byteOffset !== slot.byteOffset) slot.set(o.packet);
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

/**
 * Reads record `rec` and its slot back into an outcome; every array returned is a fresh copy, a
 * forward packet into what `allocatePacket` gives (packetLength zero bytes) when it is given.
 */
export function decodeOutcome(slot: Uint8Array, rec: Uint8Array, allocatePacket: (() => Uint8Array) | null = null): UnwrapOutcome {
  const view = new DataView(rec.buffer, rec.byteOffset, RECORD_LENGTH);
  switch (rec[RecordOffset.kind]) {
    case RecordKind.forward:
      return {
        kind: 'forward',
        epoch: view.getFloat64(RecordOffset.epoch),
        nextHop: rec.slice(RecordOffset.id, RecordOffset.id + NODE_ID_LENGTH),
        delayMs: view.getUint32(RecordOffset.number),
        packet: copyPacket(slot, allocatePacket),
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


function copyPacket(slot: Uint8Array, allocate: (() => Uint8Array) | null): Uint8Array {
  const out = allocate?.();
  // The pool checks its allocator once; anything else is copied as without one.
  if (out === undefined || out.length !== slot.length) return slot.slice();
  out.set(slot);
  return out;
}
