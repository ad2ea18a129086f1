/**
 * What the messenger puts inside a ratchet message (the content), and how a ratchet message and
 * an attachment travel as client messages. See docs/messaging.md, "Conversations".
 *
 * Content, the plaintext of one ratchet message (at most MAX_CONTENT_LENGTH bytes, so that the
 * ratchet message fits a one-fragment body whatever its header carries):
 *
 *     hello    = 0x01 ‖ sent at (u64 ms)
 *     text     = 0x02 ‖ msg id (8) ‖ sent at (u64) ‖ length (u16) ‖ UTF-8
 *     receipt  = 0x03 ‖ count (u8, 1..MAX_RECEIPT_IDS) ‖ msg id (8) × count
 *     file     = 0x04 ‖ msg id (8) ‖ sent at (u64) ‖ attachment id (16) ‖ key (32) ‖ length (u32)
 *                ‖ SHA-256 of the file (32) ‖ flags (u8: bit 0 = the file is a long text)
 *                ‖ name length (u16) ‖ UTF-8 name
 *     introduction (0x10), from an introducer to each of the two it introduces:
 *       offer    = 0x10 ‖ 0x01 ‖ introduction id (16) ‖ sent at (u64) ‖ name length (u8) ‖ UTF-8
 *                  name (what the introducer calls the other party)
 *       card     = 0x10 ‖ 0x02 ‖ introduction id (16) ‖ part (u8) ‖ parts (u8) ‖ length (u16) ‖ bytes
 *                  (the other party's card, in INTRO_CARD_PARTS pieces)
 *     introduction answer (0x11), from each of the two to the introducer:
 *       decline  = 0x11 ‖ introduction id (16) ‖ 0x00
 *       accept   = 0x11 ‖ introduction id (16) ‖ 0x01 ‖ prekey id (u32) ‖ prekey (32) ‖ gateway (32)
 *                  ‖ mailbox (32) (the fresh half of a card; the introducer adds the identity keys
 *                  it knows for the sender)
 *     rotation = 0x12 ‖ gateway (32) ‖ mailbox (32): write to me at this address from now on
 *     0x13..0x1f reserved: read as "unsupported", dropped and counted.
 *
 * Client message bodies, every one carrying a ratchet message exactly BODY_LENGTH bytes long:
 *
 *     ratchet body    = length (u16) ‖ ratchet message ‖ zeros to BODY_LENGTH
 *     attachment body = ATTACHMENT_MAGIC (8) ‖ attachment id (16) ‖ ChaCha20-Poly1305(key, nonce 0,
 *                       ad = magic ‖ id, file) — its length shows the file's size, as any file does.
 *
 * Portable.
 */
import { BackchannelError } from '../errors.js';
import { Reader, Writer } from './_codec.js';
import { MAX_MESSAGE_LENGTH, MAX_PLAINTEXT_LENGTH } from './constants.js';

export const CONTENT_HELLO = 0x01;
export const CONTENT_TEXT = 0x02;
export const CONTENT_RECEIPT = 0x03;
export const CONTENT_FILE = 0x04;
/** Introductions (offers and cards from the introducer; answers to it); the mailbox a contact is to write to from now on. */
export const CONTENT_INTRODUCTION = 0x10;
export const CONTENT_INTRODUCTION_ANSWER = 0x11;
export const CONTENT_MAILBOX_ROTATION = 0x12;
export const CONTENT_RESERVED_LAST = 0x1f;

export const MSG_ID_LENGTH = 8;
export const INTRO_ID_LENGTH = 16;
/** A forwarded card travels in this many pieces (a card, 1,318 bytes, is more than one content). */
export const INTRO_CARD_PARTS = 3;
/** Bytes of a card in one piece (the last one holds the rest). */
export const INTRO_CARD_PART_LENGTH = 440;
/** The longest suggested name in an offer (UTF-8 bytes). */
export const MAX_INTRO_NAME = 255;
const INTRO_OFFER = 1;
const INTRO_CARD = 2;
export const ATTACHMENT_ID_LENGTH = 16;
export const FILE_KEY_LENGTH = 32;
export const SHA256_LENGTH = 32;
export const MAX_RECEIPT_IDS = 64;
/** The longest file name carried (UTF-8 bytes). */
export const MAX_FILE_NAME = 255;
/**
 * Every client message carrying a ratchet message has this length: one fragment at the default
 * geometry (a 2,000-byte user payload with a SURB leaves 1,929 bytes per fragment, less the
 * client message's 2-byte header; src/client/frames.ts), so that a text, a receipt or a hello
 * costs one packet.
 */
export const BODY_LENGTH = 1927;
/**
 * The longest content: what keeps the largest ratchet message (a set-up or a post-quantum offer
 * in the header: MAX_MESSAGE_LENGTH − MAX_PLAINTEXT_LENGTH = 1,288 bytes around the content)
 * within BODY_LENGTH less its length field: 637 bytes.
 */
export const MAX_CONTENT_LENGTH = BODY_LENGTH - 2 - (MAX_MESSAGE_LENGTH - MAX_PLAINTEXT_LENGTH);
/** Text bytes one text content holds (618); a longer text travels as an attachment flagged as text. */
export const MAX_INLINE_TEXT = MAX_CONTENT_LENGTH - (1 + MSG_ID_LENGTH + 8 + 2);
export const ATTACHMENT_MAGIC = new TextEncoder().encode('BCATTCH1');
export const ATTACHMENT_OVERHEAD = ATTACHMENT_MAGIC.length + ATTACHMENT_ID_LENGTH + 16;
/** The client's message limit (src/client/frames.ts MAX_MESSAGE_LENGTH, 1 MiB) less the attachment framing. */
export const MAX_FILE_LENGTH = (1 << 20) - ATTACHMENT_OVERHEAD;
export const FLAG_LONG_TEXT = 1;

export type Content =
  | { readonly kind: 'hello'; readonly sentAt: number }
  | { readonly kind: 'text'; readonly msgId: Uint8Array; readonly sentAt: number; readonly text: string }
  | { readonly kind: 'receipt'; readonly msgIds: readonly Uint8Array[] }
  | {
      readonly kind: 'file';
      readonly msgId: Uint8Array;
      readonly sentAt: number;
      readonly attachmentId: Uint8Array;
      readonly key: Uint8Array;
      readonly length: number;
      readonly sha256: Uint8Array;
      readonly longText: boolean;
      readonly name: string;
    }
  | { readonly kind: 'intro-offer'; readonly introId: Uint8Array; readonly sentAt: number; readonly name: string }
  | { readonly kind: 'intro-card'; readonly introId: Uint8Array; readonly part: number; readonly parts: number; readonly bytes: Uint8Array }
  | { readonly kind: 'intro-decline'; readonly introId: Uint8Array }
  | {
      readonly kind: 'intro-accept';
      readonly introId: Uint8Array;
      readonly prekeyId: number;
      readonly prekey: Uint8Array;
      readonly gateway: Uint8Array;
      readonly mailbox: Uint8Array;
    }
  | { readonly kind: 'rotation'; readonly gateway: Uint8Array; readonly mailbox: Uint8Array }
  | { readonly kind: 'unsupported'; readonly type: number };

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

function utf8(r: Reader, n: number): string {
  try {
    return td.decode(r.view(n));
  } catch {
    return r.fail('text is not UTF-8');
  }
}

/**
 * @throws {BackchannelError} ERR_MSG_TOO_LONG for a text or name past its limit.
 */
export function encodeContent(c: Content): Uint8Array {
  const out = writeContent(c);
  if (out.length > MAX_CONTENT_LENGTH) throw new BackchannelError('ERR_MSG_TOO_LONG', `messenger: a content holds at most ${MAX_CONTENT_LENGTH} bytes`);
  return out;
}

function writeContent(c: Content): Uint8Array {
  const w = new Writer(MAX_CONTENT_LENGTH);
  switch (c.kind) {
    case 'hello':
      w.u8(CONTENT_HELLO).u64(c.sentAt);
      break;
    case 'text': {
      const t = te.encode(c.text);
      if (t.length > MAX_INLINE_TEXT) throw new BackchannelError('ERR_MSG_TOO_LONG', `messenger: a text content holds at most ${MAX_INLINE_TEXT} bytes`);
      w.u8(CONTENT_TEXT).bytes(c.msgId).u64(c.sentAt).u16(t.length).bytes(t);
      break;
    }
    case 'receipt':
      if (c.msgIds.length === 0 || c.msgIds.length > MAX_RECEIPT_IDS) throw new RangeError('receipt: 1 to 64 ids');
      w.u8(CONTENT_RECEIPT).u8(c.msgIds.length);
      for (const id of c.msgIds) w.bytes(id);
      break;
    case 'file': {
      const n = te.encode(c.name);
      if (n.length > MAX_FILE_NAME) throw new BackchannelError('ERR_MSG_TOO_LONG', `messenger: a file name holds at most ${MAX_FILE_NAME} bytes`);
      w.u8(CONTENT_FILE).bytes(c.msgId).u64(c.sentAt).bytes(c.attachmentId).bytes(c.key).u32(c.length).bytes(c.sha256).u8(c.longText ? FLAG_LONG_TEXT : 0).u16(n.length).bytes(n);
      break;
    }
    case 'intro-offer': {
      const n = te.encode(c.name);
      if (n.length > MAX_INTRO_NAME) throw new BackchannelError('ERR_MSG_TOO_LONG', `messenger: a suggested name holds at most ${MAX_INTRO_NAME} bytes`);
      w.u8(CONTENT_INTRODUCTION).u8(INTRO_OFFER).bytes(c.introId).u64(c.sentAt).u8(n.length).bytes(n);
      break;
    }
    case 'intro-card':
      if (c.bytes.length > INTRO_CARD_PART_LENGTH) throw new RangeError('introduction card piece too long');
      w.u8(CONTENT_INTRODUCTION).u8(INTRO_CARD).bytes(c.introId).u8(c.part).u8(c.parts).u16(c.bytes.length).bytes(c.bytes);
      break;
    case 'intro-decline':
      w.u8(CONTENT_INTRODUCTION_ANSWER).bytes(c.introId).u8(0);
      break;
    case 'intro-accept':
      w.u8(CONTENT_INTRODUCTION_ANSWER).bytes(c.introId).u8(1).u32(c.prekeyId).bytes(c.prekey).bytes(c.gateway).bytes(c.mailbox);
      break;
    case 'rotation':
      if (c.gateway.length !== 32 || c.mailbox.length !== 32) throw new RangeError('rotation: 32-byte gateway and mailbox');
      w.u8(CONTENT_MAILBOX_ROTATION).bytes(c.gateway).bytes(c.mailbox);
      break;
    case 'unsupported':
      w.u8(c.type);
      break;
  }
  return w.finish();
}

/**
 * @throws {BackchannelError} ERR_MSG_ENCODING for content that is malformed (truncated, trailing
 *   bytes, not UTF-8, unknown kind outside the reserved range).
 */
export function decodeContent(bytes: Uint8Array): Content {
  const r = new Reader(bytes, 'content');
  const type = r.u8();
  let c: Content;
  switch (type) {
    case CONTENT_HELLO:
      c = { kind: 'hello', sentAt: r.u64() };
      break;
    case CONTENT_TEXT: {
      const msgId = r.bytes(MSG_ID_LENGTH);
      const sentAt = r.u64();
      c = { kind: 'text', msgId, sentAt, text: utf8(r, r.u16()) };
      break;
    }
    case CONTENT_RECEIPT: {
      const n = r.u8();
      if (n === 0 || n > MAX_RECEIPT_IDS) r.fail('receipt count');
      const msgIds: Uint8Array[] = [];
      for (let i = 0; i < n; i++) msgIds.push(r.bytes(MSG_ID_LENGTH));
      c = { kind: 'receipt', msgIds };
      break;
    }
    case CONTENT_FILE: {
      const msgId = r.bytes(MSG_ID_LENGTH);
      const sentAt = r.u64();
      const attachmentId = r.bytes(ATTACHMENT_ID_LENGTH);
      const key = r.bytes(FILE_KEY_LENGTH);
      const length = r.u32();
      const sha256 = r.bytes(SHA256_LENGTH);
      const flags = r.u8();
      if ((flags & ~FLAG_LONG_TEXT) !== 0) r.fail('unknown file flags');
      const nameLength = r.u16();
      if (nameLength > MAX_FILE_NAME) r.fail('file name too long');
      if (length > MAX_FILE_LENGTH) r.fail('file too long');
      c = { kind: 'file', msgId, sentAt, attachmentId, key, length, sha256, longText: flags === FLAG_LONG_TEXT, name: utf8(r, nameLength) };
      break;
    }
    case CONTENT_INTRODUCTION: {
      const sub = r.u8();
      const introId = r.bytes(INTRO_ID_LENGTH);
      if (sub === INTRO_OFFER) {
        const sentAt = r.u64();
        c = { kind: 'intro-offer', introId, sentAt, name: utf8(r, r.u8()) };
      } else if (sub === INTRO_CARD) {
        const part = r.u8();
        const parts = r.u8();
        if (parts === 0 || part >= parts) r.fail('introduction card piece');
        const n = r.u16();
        if (n > INTRO_CARD_PART_LENGTH) r.fail('introduction card piece too long');
        c = { kind: 'intro-card', introId, part, parts, bytes: r.bytes(n) };
      } else return r.fail('unknown introduction message');
      break;
    }
    case CONTENT_INTRODUCTION_ANSWER: {
      const introId = r.bytes(INTRO_ID_LENGTH);
      const verdict = r.u8();
      if (verdict === 0) c = { kind: 'intro-decline', introId };
      else if (verdict === 1) {
        const prekeyId = r.u32();
        c = { kind: 'intro-accept', introId, prekeyId, prekey: r.bytes(32), gateway: r.bytes(32), mailbox: r.bytes(32) };
      } else return r.fail('unknown introduction answer');
      break;
    }
    case CONTENT_MAILBOX_ROTATION:
      c = { kind: 'rotation', gateway: r.bytes(32), mailbox: r.bytes(32) };
      break;
    default:
      if (type >= CONTENT_INTRODUCTION && type <= CONTENT_RESERVED_LAST) return { kind: 'unsupported', type };
      return r.fail('unknown content kind');
  }
  r.end();
  return c;
}

/** A ratchet message padded into a client message body of BODY_LENGTH bytes. */
export function padBody(ratchetMessage: Uint8Array): Uint8Array {
  if (ratchetMessage.length > BODY_LENGTH - 2) throw new RangeError('ratchet message too long for a body');
  const out = new Uint8Array(BODY_LENGTH);
  out[0] = ratchetMessage.length >>> 8;
  out[1] = ratchetMessage.length & 0xff;
  out.set(ratchetMessage, 2);
  return out;
}

/** The ratchet message inside a padded body, or null when `body` is not one (wrong length, bad length field, non-zero padding). */
export function unpadBody(body: Uint8Array): Uint8Array | null {
  if (body.length !== BODY_LENGTH) return null;
  const n = (body[0]! << 8) | body[1]!;
  if (n === 0 || n > BODY_LENGTH - 2) return null;
  for (let i = 2 + n; i < body.length; i++) if (body[i] !== 0) return null;
  return body.subarray(2, 2 + n);
}

/** The attachment id of an attachment body, or null when `body` is not one. */
export function attachmentIdOf(body: Uint8Array): Uint8Array | null {
  if (body.length < ATTACHMENT_OVERHEAD) return null;
  for (let i = 0; i < ATTACHMENT_MAGIC.length; i++) if (body[i] !== ATTACHMENT_MAGIC[i]) return null;
  return body.slice(ATTACHMENT_MAGIC.length, ATTACHMENT_MAGIC.length + ATTACHMENT_ID_LENGTH);
}
