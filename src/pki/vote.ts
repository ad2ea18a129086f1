/**
 * What authorities send each other: a vote (an authority's signed set of descriptors for one
 * epoch) and a signature message (an authority's signature over the document it computed).
 * Layouts are in docs/directory.md.
 *
 * Portable: no `node:` imports.
 */
import { BackchannelError } from '../errors.js';
import { abytes, aint, concatBytes, toHex } from '../util/bytes.js';
import { MAX_DESCRIPTOR_LENGTH, verifyDescriptor } from './descriptor.js';
import { DOCUMENT_HASH_LENGTH, compareBytes } from './document.js';
import type { Ed25519 } from './ed25519.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SEED_LENGTH, ED25519_SIGNATURE_LENGTH } from './ed25519.js';
import { Reader, Writer } from './encoding.js';
import type { AuthorityInfo, Descriptor } from './types.js';

/** First byte of a vote. */
export const VOTE_FORMAT = 0x04;
/** First byte of a signature message. */
export const SIGNATURE_MESSAGE_FORMAT = 0x05;

/** Longest vote: it carries a descriptor per node, so it is capped like a signed document (1 MiB). */
export const MAX_VOTE_LENGTH = 1024 * 1024;
/** A signature message has one fixed length. */
export const SIGNATURE_MESSAGE_LENGTH = 1 + 8 + DOCUMENT_HASH_LENGTH + ED25519_PUBLIC_KEY_LENGTH + ED25519_SIGNATURE_LENGTH;

const VOTE_CONTEXT = new TextEncoder().encode('backchannel/vote/v1\0');

/** A descriptor as it travels in a vote: its signed bytes and what they say. */
export interface VotedDescriptor {
  readonly bytes: Uint8Array;
  readonly descriptor: Descriptor;
}

/** A verified vote. */
export interface Vote {
  readonly epoch: number;
  /** The voting authority's identity key. */
  readonly authority: Uint8Array;
  /** One descriptor per node, in ascending order of identity key. */
  readonly descriptors: readonly VotedDescriptor[];
}

/** An authority's signature over the document it computed for `epoch`. */
export interface SignatureMessage {
  readonly epoch: number;
  readonly documentHash: Uint8Array;
  readonly authority: Uint8Array;
  readonly signature: Uint8Array;
}

function invalid(what: string): BackchannelError {
  return new BackchannelError('ERR_PKI_ENCODING', `pki: ${what}`);
}

function byIdentity(a: VotedDescriptor, b: VotedDescriptor): number {
  return compareBytes(a.descriptor.identityKey, b.descriptor.identityKey);
}

/**
 * Encodes and signs a vote for `epoch` by the authority whose seed is `seed`. Descriptors are put
 * in ascending order of identity key.
 * @throws {RangeError} when two descriptors share an identity key, or the vote would exceed MAX_VOTE_LENGTH.
 */
export function signVote(epoch: number, descriptors: readonly VotedDescriptor[], seed: Uint8Array, ed: Ed25519): Uint8Array {
  aint('epoch', epoch, 0, Number.MAX_SAFE_INTEGER);
  abytes('seed', seed, ED25519_SEED_LENGTH);
  if (descriptors.length > 0xffff) throw new RangeError('"descriptors" more than 65535');
  const sorted = [...descriptors].sort(byIdentity);
  for (let i = 1; i < sorted.length; i++) {
    if (byIdentity(sorted[i - 1]!, sorted[i]!) === 0) throw new RangeError('"descriptors" two descriptors for one node');
  }
  const w = new Writer().u8(VOTE_FORMAT).u64(epoch).raw(ed.publicKeyFromSeed(seed)).u16(sorted.length);
  for (const d of sorted) {
    abytes('descriptor bytes', d.bytes);
    if (d.bytes.length > MAX_DESCRIPTOR_LENGTH) throw new RangeError('"descriptor bytes" too long');
    w.prefixed(d.bytes, 2);
  }
  if (w.length + ED25519_SIGNATURE_LENGTH > MAX_VOTE_LENGTH) throw new RangeError('"descriptors" too many for one vote');
  const body = w.finish();
  return concatBytes(body, ed.sign(seed, concatBytes(VOTE_CONTEXT, body)));
}

/** Options of verifyVote. */
export interface VerifyVoteOptions {
  /** Authorities whose votes are accepted. */
  readonly authorities: readonly AuthorityInfo[];
  readonly ed: Ed25519;
  /** When set, the vote must be for this epoch. */
  readonly epoch?: number;
}

/**
 * Decodes a vote and checks it: signed by a listed authority (checked before any descriptor is
 * looked at, so that forged votes cost one verification), every descriptor valid and signed, one
 * per node in ascending order of identity key.
 * @throws {BackchannelError} ERR_PKI_ENCODING (malformed), ERR_PKI_UNAUTHORIZED (unknown
 *   authority), ERR_PKI_SIGNATURE (bad vote or descriptor signature), ERR_PKI_EPOCH (other epoch).
 */
export function verifyVote(bytes: Uint8Array, opts: VerifyVoteOptions): Vote {
  abytes('bytes', bytes);
  if (bytes.length > MAX_VOTE_LENGTH) throw invalid('vote too long');
  if (bytes.length < 1 + 8 + ED25519_PUBLIC_KEY_LENGTH + 2 + ED25519_SIGNATURE_LENGTH) throw invalid('vote too short');
  const body = bytes.subarray(0, bytes.length - ED25519_SIGNATURE_LENGTH);
  const signature = bytes.subarray(bytes.length - ED25519_SIGNATURE_LENGTH);
  const r = new Reader(body);
  if (r.u8('vote format') !== VOTE_FORMAT) throw invalid('unknown vote format');
  const epoch = r.u64('vote epoch');
  const authority = r.raw(ED25519_PUBLIC_KEY_LENGTH, 'authority key');
  const id = toHex(authority);
  const signer = opts.authorities.find((a) => toHex(a.identityKey) === id);
  if (signer === undefined) throw new BackchannelError('ERR_PKI_UNAUTHORIZED', 'pki: vote from an authority that is not listed');
  if (!opts.ed.verify(authority, concatBytes(VOTE_CONTEXT, body), signature)) {
    throw new BackchannelError('ERR_PKI_SIGNATURE', `pki: bad signature on the vote of authority ${signer.name}`);
  }
  if (opts.epoch !== undefined && epoch !== opts.epoch) {
    throw new BackchannelError('ERR_PKI_EPOCH', `pki: vote is for epoch ${epoch}, expected ${opts.epoch}`);
  }
  const count = r.u16('descriptor count');
  const descriptors: VotedDescriptor[] = [];
  for (let i = 0; i < count; i++) {
    const d = r.prefixed(2, MAX_DESCRIPTOR_LENGTH, 'descriptor');
    const voted = { bytes: d, descriptor: verifyDescriptor(d, opts.ed) };
    const prev = descriptors[descriptors.length - 1];
    if (prev !== undefined && byIdentity(prev, voted) >= 0) throw invalid('vote descriptors are not in ascending order of identity key');
    descriptors.push(voted);
  }
  r.end('vote');
  return { epoch, authority, descriptors };
}

/** Encodes a signature message. @throws {TypeError|RangeError} for fields of the wrong length. */
export function encodeSignatureMessage(m: SignatureMessage): Uint8Array {
  aint('epoch', m.epoch, 0, Number.MAX_SAFE_INTEGER);
  abytes('documentHash', m.documentHash, DOCUMENT_HASH_LENGTH);
  abytes('authority', m.authority, ED25519_PUBLIC_KEY_LENGTH);
  abytes('signature', m.signature, ED25519_SIGNATURE_LENGTH);
  return new Writer().u8(SIGNATURE_MESSAGE_FORMAT).u64(m.epoch).raw(m.documentHash).raw(m.authority).raw(m.signature).finish();
}

/**
 * Decodes a signature message (structure only: the signature is checked against the document hash
 * by verifyDocumentSignature).
 * @throws {BackchannelError} ERR_PKI_ENCODING.
 */
export function decodeSignatureMessage(bytes: Uint8Array): SignatureMessage {
  abytes('bytes', bytes);
  if (bytes.length !== SIGNATURE_MESSAGE_LENGTH) throw invalid('signature message has the wrong length');
  const r = new Reader(bytes);
  if (r.u8('signature message format') !== SIGNATURE_MESSAGE_FORMAT) throw invalid('unknown signature message format');
  const m: SignatureMessage = {
    epoch: r.u64('epoch'),
    documentHash: r.raw(DOCUMENT_HASH_LENGTH, 'document hash'),
    authority: r.raw(ED25519_PUBLIC_KEY_LENGTH, 'authority key'),
    signature: r.raw(ED25519_SIGNATURE_LENGTH, 'signature'),
  };
  r.end('signature message');
  return m;
}
