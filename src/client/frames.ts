/**
 * What travels inside a packet's user payload, end to end between clients.
 *
 * A message is encoded once, then cut into fragments of equal frame length:
 *
 *     message  = version (1) ‖ surbCount (1) ‖ SURBs (surbCount × geometry.surbLength) ‖ body
 *     fragment = kind = 1 (1) ‖ messageId (16) ‖ index (2) ‖ count (2) ‖ length (2) ‖ data ‖ zeros
 *     loop     = kind = 2 (1) ‖ zeros
 *
 * Integers are big-endian. A forward packet's user payload is the frame sealed to the recipient's
 * mailbox key (envelope.ts); a reply through a SURB carries the frame as it is (the SURB's own
 * encryption hides it), padded with zeros to the payload length. Every frame of a geometry has the
 * same length, so frames tell no sizes. Portable: no `node:` imports.
 */
import { BackchannelError } from '../errors.js';
import type { Geometry } from '../sphinx/geometry.js';
import { ENVELOPE_OVERHEAD } from './envelope.js';

export const FRAME_FRAGMENT = 1;
export const FRAME_LOOP = 2;
export const MESSAGE_VERSION = 1;
export const MESSAGE_ID_LENGTH = 16;
/** kind, message id, index, count, data length. */
export const FRAGMENT_HEADER_LENGTH = 1 + MESSAGE_ID_LENGTH + 2 + 2 + 2;
const MESSAGE_HEADER_LENGTH = 2;
/** The longest message body a client accepts: 1 MiB, a few hundred fragments at the default geometry. */
export const MAX_MESSAGE_LENGTH = 1 << 20;
/** The most reply SURBs one message may carry. */
export const MAX_REPLY_SURBS = 32;
/** The most fragments a message may have (the count field is 16 bits). */
export const MAX_FRAGMENTS = 0xffff;

export type Frame =
  | { readonly kind: 'fragment'; readonly messageId: Uint8Array; readonly index: number; readonly count: number; readonly data: Uint8Array }
  | { readonly kind: 'loop' };

function frameError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_FRAME', `frame: ${message}`);
}

function messageError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_MESSAGE', `message: ${message}`);
}

/** The frame length of a geometry: the user payload less the envelope. */
export function frameLength(g: Geometry): number {
  const n = g.userForwardPayloadLength - ENVELOPE_OVERHEAD;
  if (n <= FRAGMENT_HEADER_LENGTH || n > g.forwardPayloadLength) throw frameError('the geometry leaves no room for a fragment');
  return n;
}

/** Message bytes one fragment carries. */
export function fragmentCapacity(g: Geometry): number {
  return frameLength(g) - FRAGMENT_HEADER_LENGTH;
}

/**
 * Encodes a message body with the reply SURBs it carries.
 * @throws {BackchannelError} ERR_CLIENT_MESSAGE for an empty or too long body, too many SURBs or a
 *   SURB of the wrong length.
 */
export function encodeMessage(g: Geometry, body: Uint8Array, replySurbs: readonly Uint8Array[]): Uint8Array {
  if (!(body instanceof Uint8Array) || body.length === 0) throw messageError('the body is empty');
  if (body.length > MAX_MESSAGE_LENGTH) throw messageError(`the body is longer than ${MAX_MESSAGE_LENGTH} bytes`);
  if (replySurbs.length > MAX_REPLY_SURBS) throw messageError(`at most ${MAX_REPLY_SURBS} reply SURBs`);
  const out = new Uint8Array(MESSAGE_HEADER_LENGTH + replySurbs.length * g.surbLength + body.length);
  out[0] = MESSAGE_VERSION;
  out[1] = replySurbs.length;
  let off = MESSAGE_HEADER_LENGTH;
  for (const s of replySurbs) {
    if (s.length !== g.surbLength) throw messageError(`a SURB is ${g.surbLength} bytes`);
    out.set(s, off);
    off += s.length;
  }
  out.set(body, off);
  return out;
}

/** @throws {BackchannelError} ERR_CLIENT_FRAME for bytes that are not an encoded message. */
export function decodeMessage(g: Geometry, bytes: Uint8Array): { body: Uint8Array; replySurbs: Uint8Array[] } {
  if (bytes.length < MESSAGE_HEADER_LENGTH + 1) throw frameError('message too short');
  if (bytes[0] !== MESSAGE_VERSION) throw frameError('unknown message version');
  const n = bytes[1]!;
  if (n > MAX_REPLY_SURBS) throw frameError('too many reply SURBs');
  const bodyStart = MESSAGE_HEADER_LENGTH + n * g.surbLength;
  if (bytes.length <= bodyStart || bytes.length - bodyStart > MAX_MESSAGE_LENGTH) throw frameError('message length out of range');
  const replySurbs: Uint8Array[] = [];
  for (let i = 0; i < n; i++) replySurbs.push(bytes.slice(MESSAGE_HEADER_LENGTH + i * g.surbLength, MESSAGE_HEADER_LENGTH + (i + 1) * g.surbLength));
  return { body: bytes.slice(bodyStart), replySurbs };
}

/** Cuts an encoded message into fragment frames. @throws {BackchannelError} ERR_CLIENT_MESSAGE past MAX_FRAGMENTS. */
export function fragmentFrames(g: Geometry, messageId: Uint8Array, encoded: Uint8Array): Uint8Array[] {
  if (messageId.length !== MESSAGE_ID_LENGTH) throw messageError(`a message id is ${MESSAGE_ID_LENGTH} bytes`);
  const len = frameLength(g);
  const cap = len - FRAGMENT_HEADER_LENGTH;
  const count = Math.max(1, Math.ceil(encoded.length / cap));
  if (count > MAX_FRAGMENTS) throw messageError('too many fragments');
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const data = encoded.subarray(i * cap, Math.min(encoded.length, (i + 1) * cap));
    const f = new Uint8Array(len);
    f[0] = FRAME_FRAGMENT;
    f.set(messageId, 1);
    let o = 1 + MESSAGE_ID_LENGTH;
    f[o++] = i >>> 8;
    f[o++] = i & 0xff;
    f[o++] = count >>> 8;
    f[o++] = count & 0xff;
    f[o++] = data.length >>> 8;
    f[o++] = data.length & 0xff;
    f.set(data, o);
    frames.push(f);
  }
  return frames;
}

/** A loop cover frame. */
export function loopFrame(g: Geometry): Uint8Array {
  const f = new Uint8Array(frameLength(g));
  f[0] = FRAME_LOOP;
  return f;
}

/**
 * Reads a frame (exactly frameLength bytes; a longer input is read up to that length and the rest
 * must be zero). Views into `frame`.
 * @throws {BackchannelError} ERR_CLIENT_FRAME for anything malformed.
 */
export function decodeFrame(g: Geometry, frame: Uint8Array): Frame {
  const len = frameLength(g);
  if (frame.length < len) throw frameError('frame too short');
  for (let i = len; i < frame.length; i++) if (frame[i] !== 0) throw frameError('non-zero padding');
  const kind = frame[0];
  if (kind === FRAME_LOOP) {
    for (let i = 1; i < len; i++) if (frame[i] !== 0) throw frameError('non-zero padding');
    return { kind: 'loop' };
  }
  if (kind !== FRAME_FRAGMENT) throw frameError('unknown frame kind');
  let o = 1 + MESSAGE_ID_LENGTH;
  const index = (frame[o]! << 8) | frame[o + 1]!;
  const count = (frame[o + 2]! << 8) | frame[o + 3]!;
  const dataLength = (frame[o + 4]! << 8) | frame[o + 5]!;
  o += 6;
  if (count === 0 || index >= count) throw frameError('fragment index out of range');
  if (dataLength === 0 || dataLength > len - FRAGMENT_HEADER_LENGTH) throw frameError('fragment length out of range');
  for (let i = o + dataLength; i < len; i++) if (frame[i] !== 0) throw frameError('non-zero padding');
  return { kind: 'fragment', messageId: frame.subarray(1, 1 + MESSAGE_ID_LENGTH), index, count, data: frame.subarray(o, o + dataLength) };
}
