/**
 * The rendezvous service's wire format and which gateway serves a channel (docs/messaging.md,
 * "Contacts by code"). Two clients who share an invite code meet at a channel of one gateway:
 * each sends a Sphinx packet to the well-known recipient RENDEZVOUS_RECIPIENT there, whose
 * forward payload carries a SURB and a request; the gateway answers through the SURB, in the
 * emission slot an acknowledgement would take. It keeps at most one posting per side per
 * channel, and learns no address or gateway of either side (the request carries none; the SURB
 * hides where the answer goes).
 *
 *   request = version (1) ‖ op (1) ‖ channel (u16) ‖ side (1) ‖ token (16) ‖ lifetime s (u32)
 *             ‖ posting length (u16) ‖ posting
 *   answer  = version (1) ‖ status (1) ‖ posting length (u16) ‖ posting   (zero-padded)
 *
 * op `post` stores (or replaces) the sender's posting for its side and answers with the other
 * side's; `read` only answers. The first post of a side claims it with its token: a post with
 * another token is answered `taken` (an inviter then draws another channel). Big-endian integers.
 * Portable: no `node:` imports.
 */
import { sha512_256 } from '@noble/hashes/sha2.js';
import { BackchannelError } from '../errors.js';
import type { ConsensusDocument, DocumentNode } from '../pki/types.js';
import { abytes, concatBytes } from '../util/bytes.js';
import { compareBytes } from '../pki/document.js';

/**
 * The Sphinx recipient id of the rendezvous service at every gateway: 32 bytes of 0xff. No
 * mailbox can have it (a mailbox id is an X25519 public key, a canonical field element below
 * 2^255 - 19), and the all-zero id is drop cover.
 */
export const RENDEZVOUS_RECIPIENT: Uint8Array = new Uint8Array(32).fill(0xff);
/** The directory's name for the service (a gateway's descriptor lists it). */
export const RENDEZVOUS_SERVICE = 'rendezvous';
export const RENDEZVOUS_VERSION = 1;
/** A side's claim on a channel: random, kept by the client, compared in constant time. */
export const RENDEZVOUS_TOKEN_LENGTH = 16;
/** Bytes of a request before its posting. */
export const RENDEZVOUS_REQUEST_HEADER = 1 + 1 + 2 + 1 + RENDEZVOUS_TOKEN_LENGTH + 4 + 2;
/** Bytes of an answer before its posting. */
export const RENDEZVOUS_ANSWER_HEADER = 1 + 1 + 2;
/**
 * The longest posting: what fits a request in the default 2,000-byte user payload with room to
 * spare. A contact card (about 1,400 bytes), sealed, with a CPace share and its confirmation tag
 * fits.
 */
export const MAX_POSTING_LENGTH = 1800;
/** The highest channel number the wire carries (codes use fewer: code.ts). */
export const MAX_RENDEZVOUS_CHANNEL = 0xffff;

export type RendezvousOp = 'post' | 'read';
/** 0: the inviter; 1: the one who accepts. */
export type RendezvousSide = 0 | 1;
/** empty: the other side has posted nothing yet; posting: here it is; taken: the side is another's; full: no room for a new channel; bad: the request did not parse. */
export type RendezvousStatus = 'empty' | 'posting' | 'taken' | 'full' | 'bad';

const OPS: readonly RendezvousOp[] = ['post', 'read'];
const STATUSES: readonly RendezvousStatus[] = ['empty', 'posting', 'taken', 'full', 'bad'];

export interface RendezvousRequest {
  readonly op: RendezvousOp;
  readonly channel: number;
  readonly side: RendezvousSide;
  readonly token: Uint8Array;
  /** How long the channel should live from its first posting, in seconds (the gateway caps it). */
  readonly lifetimeS: number;
  /** The posting (empty for `read`). */
  readonly posting: Uint8Array;
}

export interface RendezvousAnswer {
  readonly status: RendezvousStatus;
  /** The other side's posting when `status` is `posting`; empty otherwise. */
  readonly posting: Uint8Array;
}

function wireError(message: string): BackchannelError {
  return new BackchannelError('ERR_RENDEZVOUS', `rendezvous: ${message}`);
}

/**
 * Encodes a request.
 * @throws {RangeError} for a field out of range (a caller's mistake).
 */
export function encodeRendezvousRequest(req: RendezvousRequest): Uint8Array {
  abytes('token', req.token, RENDEZVOUS_TOKEN_LENGTH);
  abytes('posting', req.posting);
  if (!Number.isInteger(req.channel) || req.channel < 0 || req.channel > MAX_RENDEZVOUS_CHANNEL) throw new RangeError('"channel" out of range');
  if (!Number.isInteger(req.lifetimeS) || req.lifetimeS < 0 || req.lifetimeS > 0xffffffff) throw new RangeError('"lifetimeS" out of range');
  if (req.posting.length > MAX_POSTING_LENGTH) throw new RangeError(`"posting" longer than ${MAX_POSTING_LENGTH} bytes`);
  if (req.op === 'read' && req.posting.length !== 0) throw new RangeError('a read carries no posting');
  const out = new Uint8Array(RENDEZVOUS_REQUEST_HEADER + req.posting.length);
  const v = new DataView(out.buffer);
  out[0] = RENDEZVOUS_VERSION;
  out[1] = OPS.indexOf(req.op) + 1;
  v.setUint16(2, req.channel);
  out[4] = req.side;
  out.set(req.token, 5);
  v.setUint32(5 + RENDEZVOUS_TOKEN_LENGTH, req.lifetimeS);
  v.setUint16(9 + RENDEZVOUS_TOKEN_LENGTH, req.posting.length);
  out.set(req.posting, RENDEZVOUS_REQUEST_HEADER);
  return out;
}

/**
 * Decodes a request from a forward payload's body (zero padding after the posting is allowed:
 * the body is always the payload's full length).
 * @throws {BackchannelError} ERR_RENDEZVOUS for anything malformed.
 */
export function decodeRendezvousRequest(body: Uint8Array): RendezvousRequest {
  abytes('body', body);
  if (body.length < RENDEZVOUS_REQUEST_HEADER) throw wireError('request too short');
  if (body[0] !== RENDEZVOUS_VERSION) throw wireError('unknown request version');
  const op = OPS[body[1]! - 1];
  if (op === undefined) throw wireError('unknown op');
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const channel = v.getUint16(2);
  const side = body[4]!;
  if (side !== 0 && side !== 1) throw wireError('unknown side');
  const token = body.slice(5, 5 + RENDEZVOUS_TOKEN_LENGTH);
  const lifetimeS = v.getUint32(5 + RENDEZVOUS_TOKEN_LENGTH);
  const len = v.getUint16(9 + RENDEZVOUS_TOKEN_LENGTH);
  if (len > MAX_POSTING_LENGTH || RENDEZVOUS_REQUEST_HEADER + len > body.length) throw wireError('posting length out of range');
  if (op === 'read' && len !== 0) throw wireError('a read carries no posting');
  if (op === 'post' && len === 0) throw wireError('an empty posting');
  return { op, channel, side, token, lifetimeS, posting: body.slice(RENDEZVOUS_REQUEST_HEADER, RENDEZVOUS_REQUEST_HEADER + len) };
}

/** Encodes an answer into exactly `length` bytes (zero-padded): what a SURB reply carries. */
export function encodeRendezvousAnswer(answer: RendezvousAnswer, length: number): Uint8Array {
  abytes('posting', answer.posting);
  if (RENDEZVOUS_ANSWER_HEADER + answer.posting.length > length) throw new RangeError('answer longer than the payload');
  const out = new Uint8Array(length);
  out[0] = RENDEZVOUS_VERSION;
  out[1] = STATUSES.indexOf(answer.status);
  new DataView(out.buffer).setUint16(2, answer.posting.length);
  out.set(answer.posting, RENDEZVOUS_ANSWER_HEADER);
  return out;
}

/** @throws {BackchannelError} ERR_RENDEZVOUS for a malformed answer. */
export function decodeRendezvousAnswer(bytes: Uint8Array): RendezvousAnswer {
  abytes('bytes', bytes);
  if (bytes.length < RENDEZVOUS_ANSWER_HEADER || bytes[0] !== RENDEZVOUS_VERSION) throw wireError('malformed answer');
  const status = STATUSES[bytes[1]!];
  if (status === undefined) throw wireError('unknown answer status');
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(2);
  if (len > MAX_POSTING_LENGTH || RENDEZVOUS_ANSWER_HEADER + len > bytes.length) throw wireError('answer posting length out of range');
  if ((status === 'posting') !== len > 0) throw wireError('answer posting does not match its status');
  return { status, posting: bytes.slice(RENDEZVOUS_ANSWER_HEADER, RENDEZVOUS_ANSWER_HEADER + len) };
}

const te = new TextEncoder();
const SELECT_DOMAIN = te.encode('backchannel rendezvous v1 gateway');

/**
 * The gateway that serves `channel` under `doc`: among the gateways that list the rendezvous
 * service, the one with the highest SHA-512/256(domain ‖ channel ‖ identity key) (rendezvous
 * hashing: both sides pick the same gateway from the same document, and a gateway that joins or
 * leaves moves only the channels it wins or held). Undefined when no gateway offers the service.
 */
export function rendezvousGateway(doc: ConsensusDocument, channel: number): DocumentNode | undefined {
  if (!Number.isInteger(channel) || channel < 0 || channel > MAX_RENDEZVOUS_CHANNEL) throw new RangeError('"channel" out of range');
  const ch = new Uint8Array([channel >> 8, channel & 0xff]);
  let best: DocumentNode | undefined;
  let bestScore: Uint8Array | undefined;
  for (const n of doc.nodes) {
    if (n.role !== 'gateway' || !(n.services ?? []).includes(RENDEZVOUS_SERVICE)) continue;
    const score = sha512_256(concatBytes(SELECT_DOMAIN, ch, n.identityKey));
    if (bestScore === undefined || compareBytes(score, bestScore) > 0) {
      best = n;
      bestScore = score;
    }
  }
  return best;
}
