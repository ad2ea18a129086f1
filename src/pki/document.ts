/**
 * The consensus document: its canonical encoding, its hash, the authorities' signatures over it,
 * the signed-document container served over HTTP, and epoch arithmetic. Layouts are in
 * docs/directory.md.
 *
 * Portable: no `node:` imports.
 */
import { sha512_256 } from '@noble/hashes/sha2.js';
import { BackchannelError } from '../errors.js';
import { abytes, aint, concatBytes, toHex } from '../util/bytes.js';
import { checkNodeFields, hasServices, readNodeFields, writeNodeFields } from './descriptor.js';
import type { Ed25519 } from './ed25519.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SEED_LENGTH, ED25519_SIGNATURE_LENGTH } from './ed25519.js';
import { Reader, Writer } from './encoding.js';
import type { AuthorityInfo, ConsensusDocument, DocumentNode, DocumentSignature, NetworkParameters, SignedDocument } from './types.js';

/** First byte of a document: the format and its version. */
export const DOCUMENT_FORMAT = 0x02;
/**
 * A document in which some node lists services: the format-2 layout with a services byte after
 * each node's fields. A document without services is still written as format 2, byte for byte as
 * before, so documents of older networks decode as they did.
 */
export const DOCUMENT_FORMAT_SERVICES = 0x07;
/** First byte of the signed-document container. */
export const SIGNED_DOCUMENT_FORMAT = 0x03;

/** Longest signed document a client reads (HTTP bodies are capped at this). */
export const MAX_SIGNED_DOCUMENT_LENGTH = 1024 * 1024;
/** Most signatures a container carries: more authorities than any deployment has (DESIGN: 3 to 9). */
export const MAX_DOCUMENT_SIGNATURES = 255;
/** Longest document: the container's cap less room for the most signatures. */
export const MAX_DOCUMENT_LENGTH = MAX_SIGNED_DOCUMENT_LENGTH - 2 - 4 - MAX_DOCUMENT_SIGNATURES * (ED25519_PUBLIC_KEY_LENGTH + ED25519_SIGNATURE_LENGTH);
/** A document lists each node's mix keys for its epoch and the next one. */
export const DOCUMENT_MIX_KEYS = 2;
/** SHA-512/256 output. */
export const DOCUMENT_HASH_LENGTH = 32;

/** Signatures are over this prefix ‖ documentHash(bytes), so that they cannot pass for any other signed object. */
const SIGNATURE_CONTEXT = new TextEncoder().encode('backchannel/document/v1\0');

function invalid(what: string): BackchannelError {
  return new BackchannelError('ERR_PKI_ENCODING', `pki: ${what}`);
}

// ---------------------------------------------------------------------------------------------
// Epochs

/** The epoch that contains `nowMs`: epoch n covers [n·period, (n+1)·period). */
export function epochAt(nowMs: number, periodMs: number): number {
  aint('periodMs', periodMs, 1, 0xffffffff);
  if (typeof nowMs !== 'number' || !Number.isFinite(nowMs) || nowMs < 0) throw new RangeError('"nowMs" expected a non-negative finite number');
  return Math.floor(nowMs / periodMs);
}

/** When `epoch` starts, in milliseconds since the Unix epoch. */
export function epochStart(epoch: number, periodMs: number): number {
  aint('epoch', epoch, 0, Number.MAX_SAFE_INTEGER);
  aint('periodMs', periodMs, 1, 0xffffffff);
  return epoch * periodMs;
}

/** A document for epoch E may be used until the end of epoch E + 1 (its mix keys cover E + 1). */
export function documentExpiresAt(epoch: number, periodMs: number): number {
  return epochStart(epoch + 2, periodMs);
}

/** A majority of `n` authorities: floor(n/2) + 1. */
export function defaultThreshold(n: number): number {
  aint('n', n, 1, MAX_DOCUMENT_SIGNATURES);
  return Math.floor(n / 2) + 1;
}

// ---------------------------------------------------------------------------------------------
// Parameters and node order

/** @throws {BackchannelError} ERR_PKI_ENCODING naming the first parameter out of range. */
export function checkParams(p: NetworkParameters): void {
  if (typeof p !== 'object' || p === null) throw invalid('parameters are not an object');
  const int = (v: number, min: number, max: number): boolean => Number.isInteger(v) && v >= min && v <= max;
  const rate = (v: number): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0 && !Object.is(v, -0);
  if (!int(p.epochPeriodMs, 1, 0xffffffff)) throw invalid('epoch period out of range');
  if (!int(p.hops, 1, 0xff)) throw invalid('hops out of range');
  if (!int(p.userPayloadLength, 1, 0xffffffff)) throw invalid('user payload length out of range');
  if (typeof p.withSurb !== 'boolean') throw invalid('withSurb is not a boolean');
  if (!int(p.layers, 1, 0xff)) throw invalid('layers out of range');
  if (!rate(p.mixMeanDelayMs)) throw invalid('mean mix delay out of range');
  if (!rate(p.sendRatePerS) || !rate(p.loopRatePerS) || !rate(p.fetchRatePerS) || !rate(p.gatewayRatePerClientPerS)) throw invalid('rates must be finite and non-negative');
}

function writeParams(w: Writer, p: NetworkParameters): void {
  checkParams(p);
  w.u32(p.epochPeriodMs).u8(p.hops).u32(p.userPayloadLength).bool(p.withSurb).u8(p.layers);
  w.f64(p.mixMeanDelayMs).f64(p.sendRatePerS).f64(p.loopRatePerS).f64(p.fetchRatePerS).f64(p.gatewayRatePerClientPerS);
}

function readParams(r: Reader): NetworkParameters {
  const p: NetworkParameters = {
    epochPeriodMs: r.u32('epoch period'),
    hops: r.u8('hops'),
    userPayloadLength: r.u32('user payload length'),
    withSurb: r.bool('withSurb'),
    layers: r.u8('layers'),
    mixMeanDelayMs: r.f64('mean mix delay'),
    sendRatePerS: r.f64('send rate'),
    loopRatePerS: r.f64('loop rate'),
    fetchRatePerS: r.f64('fetch rate'),
    gatewayRatePerClientPerS: r.f64('gateway rate'),
  };
  checkParams(p);
  return p;
}

/** Lexicographic order of byte strings (not constant time: for public keys and hashes only). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The document order (types.ts): gateways first, then mixes by layer; within each, by identity key bytes. */
export function compareNodes(a: Pick<DocumentNode, 'role' | 'layer' | 'identityKey'>, b: Pick<DocumentNode, 'role' | 'layer' | 'identityKey'>): number {
  const rank = (n: Pick<DocumentNode, 'role' | 'layer'>): number => (n.role === 'gateway' ? 0 : n.layer);
  return rank(a) - rank(b) || compareBytes(a.identityKey, b.identityKey);
}

function checkDocumentNodes(doc: ConsensusDocument): void {
  const seen = new Set<string>();
  let prev: DocumentNode | undefined;
  for (const node of doc.nodes) {
    checkNodeFields(node, DOCUMENT_MIX_KEYS);
    if (node.role === 'mix' && node.layer > doc.params.layers) throw invalid('a mix is in a layer past the network layers');
    if (node.mixKeys[0]!.epoch !== doc.epoch) throw invalid("a node's first mix key is not for the document epoch");
    if (prev !== undefined && compareNodes(prev, node) >= 0) throw invalid('nodes are not in document order');
    const id = toHex(node.identityKey);
    if (seen.has(id)) throw invalid('a node is listed twice');
    seen.add(id);
    prev = node;
  }
}

// ---------------------------------------------------------------------------------------------
// Documents

/**
 * The canonical bytes of a document: what is hashed and signed.
 * @throws {BackchannelError} ERR_PKI_ENCODING when a field breaks a rule, the nodes are out of
 *   order, or the document is longer than MAX_DOCUMENT_LENGTH.
 */
export function encodeDocument(doc: ConsensusDocument): Uint8Array {
  if (typeof doc !== 'object' || doc === null) throw invalid('document is not an object');
  if (!Number.isSafeInteger(doc.epoch) || doc.epoch < 0) throw invalid('document epoch out of range');
  if (!Array.isArray(doc.nodes) || doc.nodes.length > 0xffff) throw invalid('too many nodes');
  checkParams(doc.params);
  checkDocumentNodes(doc);
  const services = doc.nodes.some(hasServices);
  const w = new Writer().u8(services ? DOCUMENT_FORMAT_SERVICES : DOCUMENT_FORMAT).u64(doc.epoch);
  writeParams(w, doc.params);
  w.u16(doc.nodes.length);
  for (const node of doc.nodes) {
    writeNodeFields(w, node, DOCUMENT_MIX_KEYS, services);
    if (w.length > MAX_DOCUMENT_LENGTH) throw invalid('document too long');
  }
  return w.finish();
}

/**
 * Decodes a document strictly: the only accepted bytes are those encodeDocument produces.
 * @throws {BackchannelError} ERR_PKI_ENCODING. @throws {TypeError} when `bytes` is not a Uint8Array.
 */
export function decodeDocument(bytes: Uint8Array): ConsensusDocument {
  abytes('bytes', bytes);
  if (bytes.length > MAX_DOCUMENT_LENGTH) throw invalid('document too long');
  const r = new Reader(bytes);
  const format = r.u8('document format');
  if (format !== DOCUMENT_FORMAT && format !== DOCUMENT_FORMAT_SERVICES) throw invalid('unknown document format');
  const services = format === DOCUMENT_FORMAT_SERVICES;
  const epoch = r.u64('document epoch');
  const params = readParams(r);
  const count = r.u16('node count');
  const nodes: DocumentNode[] = [];
  for (let i = 0; i < count; i++) nodes.push(readNodeFields(r, DOCUMENT_MIX_KEYS, services));
  r.end('document');
  if (services && !nodes.some(hasServices)) throw invalid('a services document lists no service');
  const doc: ConsensusDocument = { epoch, params, nodes };
  checkDocumentNodes(doc);
  return doc;
}

/** SHA-512/256 of a document's bytes: what authorities sign and exchange. */
export function documentHash(bytes: Uint8Array): Uint8Array {
  abytes('bytes', bytes);
  return sha512_256(bytes);
}

/** What an authority's signature covers: a context string ‖ the document hash. */
function signatureMessage(hash: Uint8Array): Uint8Array {
  return concatBytes(SIGNATURE_CONTEXT, hash);
}

/**
 * An authority's signature over a document's bytes (over its hash, with a context prefix).
 * @throws {TypeError|RangeError} for a seed that is not 32 bytes.
 */
export function signDocument(bytes: Uint8Array, seed: Uint8Array, ed: Ed25519): Uint8Array {
  abytes('bytes', bytes);
  abytes('seed', seed, ED25519_SEED_LENGTH);
  return ed.sign(seed, signatureMessage(documentHash(bytes)));
}

/** The same signature, made from a hash the caller already has. */
export function signDocumentHash(hash: Uint8Array, seed: Uint8Array, ed: Ed25519): Uint8Array {
  abytes('hash', hash, DOCUMENT_HASH_LENGTH);
  abytes('seed', seed, ED25519_SEED_LENGTH);
  return ed.sign(seed, signatureMessage(hash));
}

/** True when `signature` is `authority`'s signature over the document whose hash is `hash`. */
export function verifyDocumentSignature(authority: Uint8Array, hash: Uint8Array, signature: Uint8Array, ed: Ed25519): boolean {
  abytes('hash', hash, DOCUMENT_HASH_LENGTH);
  return ed.verify(authority, signatureMessage(hash), signature);
}

/**
 * The valid signatures among `signatures`: each by a listed authority, at most one per authority,
 * in ascending order of authority key. Unknown signers and bad signatures are left out silently.
 */
export function validSignatures(hash: Uint8Array, signatures: readonly DocumentSignature[], authorities: readonly AuthorityInfo[], ed: Ed25519): DocumentSignature[] {
  const listed = new Set(authorities.map((a) => toHex(a.identityKey)));
  const counted = new Map<string, DocumentSignature>();
  for (const s of signatures) {
    const id = toHex(s.authority);
    if (!listed.has(id) || counted.has(id)) continue;
    if (verifyDocumentSignature(s.authority, hash, s.signature, ed)) counted.set(id, { authority: s.authority, signature: s.signature });
  }
  return [...counted.values()].sort((a, b) => compareBytes(a.authority, b.authority));
}

// ---------------------------------------------------------------------------------------------
// The signed-document container

/**
 * The container served over HTTP: the document bytes and the signatures collected for them. The
 * container itself is not signed; signatures are written in ascending order of authority key, one
 * per authority.
 * @throws {BackchannelError} ERR_PKI_ENCODING for too many signatures or an oversized document.
 */
export function encodeSignedDocument(documentBytes: Uint8Array, signatures: readonly DocumentSignature[]): Uint8Array {
  abytes('documentBytes', documentBytes);
  if (documentBytes.length > MAX_DOCUMENT_LENGTH) throw invalid('document too long');
  const unique = new Map<string, DocumentSignature>();
  for (const s of signatures) {
    abytes('authority', s.authority, ED25519_PUBLIC_KEY_LENGTH);
    abytes('signature', s.signature, ED25519_SIGNATURE_LENGTH);
    const id = toHex(s.authority);
    if (!unique.has(id)) unique.set(id, s);
  }
  if (unique.size > MAX_DOCUMENT_SIGNATURES) throw invalid('too many signatures');
  const w = new Writer().u8(SIGNED_DOCUMENT_FORMAT).prefixed(documentBytes, 4).u8(unique.size);
  for (const s of [...unique.values()].sort((a, b) => compareBytes(a.authority, b.authority))) w.raw(s.authority).raw(s.signature);
  return w.finish();
}

/**
 * Splits a container into document bytes and signatures, checking only its structure (any order
 * of signatures, duplicates allowed: verification counts each authority once).
 * @throws {BackchannelError} ERR_PKI_ENCODING.
 */
export function decodeSignedDocument(bytes: Uint8Array): { bytes: Uint8Array; signatures: DocumentSignature[] } {
  abytes('bytes', bytes);
  if (bytes.length > MAX_SIGNED_DOCUMENT_LENGTH) throw invalid('signed document too long');
  const r = new Reader(bytes);
  if (r.u8('container format') !== SIGNED_DOCUMENT_FORMAT) throw invalid('unknown signed document format');
  const documentBytes = r.prefixed(4, MAX_DOCUMENT_LENGTH, 'document');
  const count = r.u8('signature count');
  const signatures: DocumentSignature[] = [];
  for (let i = 0; i < count; i++) {
    signatures.push({ authority: r.raw(ED25519_PUBLIC_KEY_LENGTH, 'authority key'), signature: r.raw(ED25519_SIGNATURE_LENGTH, 'signature') });
  }
  r.end('signed document');
  return { bytes: documentBytes, signatures };
}

/** Options of verifySignedDocument. */
export interface VerifyDocumentOptions {
  /** Every authority whose signature counts. */
  readonly authorities: readonly AuthorityInfo[];
  /** Valid signatures by distinct listed authorities needed, 1..authorities.length. */
  readonly threshold: number;
  readonly ed: Ed25519;
  /** When set, the document must be for this epoch. */
  readonly epoch?: number;
}

function checkThreshold(threshold: number, authorities: readonly AuthorityInfo[]): void {
  if (!Array.isArray(authorities)) throw new TypeError('"authorities" expected an array');
  aint('threshold', threshold, 1, Math.max(1, authorities.length));
}

/**
 * Decodes a signed-document container and checks it: a valid document, for `epoch` when given,
 * with at least `threshold` valid signatures by distinct listed authorities. The result carries
 * only the signatures that were counted.
 * @throws {BackchannelError} ERR_PKI_ENCODING (malformed), ERR_PKI_EPOCH (another epoch),
 *   ERR_PKI_THRESHOLD (too few valid signatures).
 * @example const signed = verifySignedDocument(body, { authorities, threshold: 2, ed: nodeEd25519, epoch });
 */
export function verifySignedDocument(bytes: Uint8Array, opts: VerifyDocumentOptions): SignedDocument {
  checkThreshold(opts.threshold, opts.authorities);
  const container = decodeSignedDocument(bytes);
  const document = decodeDocument(container.bytes);
  if (opts.epoch !== undefined && document.epoch !== opts.epoch) {
    throw new BackchannelError('ERR_PKI_EPOCH', `pki: document is for epoch ${document.epoch}, expected ${opts.epoch}`);
  }
  const signatures = validSignatures(documentHash(container.bytes), container.signatures, opts.authorities, opts.ed);
  if (signatures.length < opts.threshold) {
    throw new BackchannelError('ERR_PKI_THRESHOLD', `pki: document for epoch ${document.epoch} has ${signatures.length} valid signatures, needs ${opts.threshold}`);
  }
  return { document, bytes: container.bytes, signatures };
}
