/**
 * What travels inside a packet's user payload, end to end between clients.
 *
 * A message is encoded once, then cut into fragments of equal frame length:
 *
 *     message  = version (1) ‖ surbCount (1) ‖ SURBs (surbCount × geometry.surbLength) ‖ [meta] ‖ body
 *     meta     = sentAt (6) ‖ nameLength (1) ‖ name (nameLength)          (version 2 only)
 *     fragment = kind = 1 (1) ‖ messageId (16) ‖ index (2) ‖ count (2) ‖ length (2) ‖ data ‖ zeros
 *     loop     = kind = 2 (1) ‖ zeros
 *
 * Version 2 (MESSAGE_VERSION_META, what the client writes) adds `meta`: the sender's clock when it
 * accepted the message, in whole seconds since the Unix epoch, and the name of the file the body
 * came from (UTF-8, 1 to MAX_FILE_NAME_LENGTH bytes, a plain file name: see isSafeFileName), or
 * nameLength 0 for a message that is not a file. Version 1 (no meta) is still read.
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
/** The first layout, without meta: still read, written only when no meta is given. */
export const MESSAGE_VERSION = 1;
/** The layout with the sender's clock and a file name. */
export const MESSAGE_VERSION_META = 2;
/** The longest file name a message carries (bytes of UTF-8). */
export const MAX_FILE_NAME_LENGTH = 255;
/** sentAt (6) and nameLength (1). */
const META_FIXED_LENGTH = 7;
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

/** What a version-2 message says about itself besides its body. */
export interface MessageMeta {
  /** The sender's clock when it accepted the message, in whole seconds since the Unix epoch. */
  readonly sentAtS: number;
  /** The name of the file the body is, or null for a plain message. */
  readonly fileName: string | null;
}

/** A decoded message: `meta` is null for a version-1 message. */
export interface DecodedMessage {
  readonly body: Uint8Array;
  readonly replySurbs: Uint8Array[];
  readonly meta: MessageMeta | null;
}

/**
 * Whether `name` is a plain file name that names a file inside any folder it is joined to: not
 * empty, at most MAX_FILE_NAME_LENGTH bytes of UTF-8, no "/" or "\\", not "." or "..", no control
 * characters (C0, DEL, C1), no bidirectional overrides. A received name is checked again before a
 * file is written.
 */
export function isSafeFileName(name: string): boolean {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..') return false;
  if (new TextEncoder().encode(name).length > MAX_FILE_NAME_LENGTH) return false;
  // eslint-disable-next-line no-control-regex
  return !/[/\\\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(name);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** 2^48: sentAt is six bytes. */
const SENT_AT_LIMIT = 2 ** 48;

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
 * Encodes a message body with the reply SURBs it carries: version 2 with `meta`, else version 1.
 * @throws {BackchannelError} ERR_CLIENT_MESSAGE for an empty or too long body, too many SURBs, a
 *   SURB of the wrong length, a sentAtS that is not a whole number in [0, 2^48) or a file name
 *   that isSafeFileName refuses.
 */
export function encodeMessage(g: Geometry, body: Uint8Array, replySurbs: readonly Uint8Array[], meta?: MessageMeta): Uint8Array {
  if (!(body instanceof Uint8Array) || body.length === 0) throw messageError('the body is empty');
  if (body.length > MAX_MESSAGE_LENGTH) throw messageError(`the body is longer than ${MAX_MESSAGE_LENGTH} bytes`);
  if (replySurbs.length > MAX_REPLY_SURBS) throw messageError(`at most ${MAX_REPLY_SURBS} reply SURBs`);
  let name: Uint8Array | null = null;
  if (meta !== undefined) {
    if (!Number.isSafeInteger(meta.sentAtS) || meta.sentAtS < 0 || meta.sentAtS >= SENT_AT_LIMIT) throw messageError('the send time is out of range');
    if (meta.fileName !== null) {
      if (!isSafeFileName(meta.fileName)) throw messageError(`a file name must be a plain name of 1 to ${MAX_FILE_NAME_LENGTH} bytes, without "/", "\\" or control characters`);
      name = new TextEncoder().encode(meta.fileName);
    }
  }
  const metaLength = meta === undefined ? 0 : META_FIXED_LENGTH + (name?.length ?? 0);
  const out = new Uint8Array(MESSAGE_HEADER_LENGTH + replySurbs.length * g.surbLength + metaLength + body.length);
  out[0] = meta === undefined ? MESSAGE_VERSION : MESSAGE_VERSION_META;
  out[1] = replySurbs.length;
  let off = MESSAGE_HEADER_LENGTH;
  for (const s of replySurbs) {
    if (s.length !== g.surbLength) throw messageError(`a SURB is ${g.surbLength} bytes`);
    out.set(s, off);
    off += s.length;
  }
  if (meta !== undefined) {
    const high = Math.floor(meta.sentAtS / 2 ** 32);
    const low = meta.sentAtS >>> 0;
    out[off++] = high >>> 8;
    out[off++] = high & 0xff;
    out[off++] = low >>> 24;
    out[off++] = (low >>> 16) & 0xff;
    out[off++] = (low >>> 8) & 0xff;
    out[off++] = low & 0xff;
    out[off++] = name?.length ?? 0;
    if (name !== null) {
      out.set(name, off);
      off += name.length;
    }
  }
  out.set(body, off);
  return out;
}

/** @throws {BackchannelError} ERR_CLIENT_FRAME for bytes that are not an encoded message (an unsafe file name included). */
export function decodeMessage(g: Geometry, bytes: Uint8Array): DecodedMessage {
  if (bytes.length < MESSAGE_HEADER_LENGTH + 1) throw frameError('message too short');
  const version = bytes[0];
  if (version !== MESSAGE_VERSION && version !== MESSAGE_VERSION_META) throw frameError('unknown message version');
  const n = bytes[1]!;
  if (n > MAX_REPLY_SURBS) throw frameError('too many reply SURBs');
  let bodyStart = MESSAGE_HEADER_LENGTH + n * g.surbLength;
  let meta: MessageMeta | null = null;
  if (version === MESSAGE_VERSION_META) {
    const o = bodyStart;
    if (bytes.length < o + META_FIXED_LENGTH) throw frameError('message too short');
    const sentAtS = ((bytes[o]! << 8) | bytes[o + 1]!) * 2 ** 32 + (((bytes[o + 2]! << 24) | (bytes[o + 3]! << 16) | (bytes[o + 4]! << 8) | bytes[o + 5]!) >>> 0);
    const nameLength = bytes[o + 6]!;
    bodyStart = o + META_FIXED_LENGTH + nameLength;
    let fileName: string | null = null;
    if (nameLength > 0) {
      if (bytes.length < bodyStart) throw frameError('message too short');
      try {
        fileName = strictUtf8.decode(bytes.subarray(o + META_FIXED_LENGTH, bodyStart));
      } catch {
        throw frameError('the file name is not UTF-8');
      }
      if (!isSafeFileName(fileName)) throw frameError('the file name is not a plain file name');
    }
    meta = { sentAtS, fileName };
  }
  if (bytes.length <= bodyStart || bytes.length - bodyStart > MAX_MESSAGE_LENGTH) throw frameError('message length out of range');
  const replySurbs: Uint8Array[] = [];
  for (let i = 0; i < n; i++) replySurbs.push(bytes.slice(MESSAGE_HEADER_LENGTH + i * g.surbLength, MESSAGE_HEADER_LENGTH + (i + 1) * g.surbLength));
  return { body: bytes.slice(bodyStart), replySurbs, meta };
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
