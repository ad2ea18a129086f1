/**
 * The Double Ratchet with header encryption (Signal's specification, section 4) and a
 * post-quantum ratchet on top of it, as one `Session` whose whole state encodes to bytes.
 *
 * Post-quantum ratchet: a party that has sent PQ_RATCHET_MESSAGES messages, or waited
 * PQ_RATCHET_INTERVAL_MS, since its last completed step *offers* a fresh ML-KEM-768 key in the
 * (encrypted) header of every message it sends until it is answered. The peer encapsulates to the
 * first offer it reads and mixes the shared secret into the root KDF of its next sending chain
 * (KDF_RK_HE(rk, dh ‖ ss)); every header of that chain carries the ciphertext as the *answer*. The
 * offerer reads the answer in the header that starts that chain (sealed with the next-header key,
 * which precedes the mix), decapsulates, and mixes the same secret into the same root step. A
 * header carries an offer or an answer, never both, so that a message stays within 2 kB.
 *
 * Each decryption works on a copy of the state and commits it only once the body has been
 * authenticated: a forged, corrupted or replayed message changes nothing (the spec's note on
 * rolling back, section 3.5). Every replaced key is wiped at the commit. The AEADs (XChaCha20-
 * Poly1305 for headers, ChaCha20-Poly1305 for bodies) come from the crypto backend: native
 * libsodium on Node, @noble/ciphers in a browser.
 */
import type { CryptoBackend } from '../crypto/types.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import { abytes, concatBytes, equalBytes, idKey, wipe } from '../util/bytes.js';
import { Reader, Writer } from './_codec.js';
import {
  DH_LENGTH,
  HEADER_ANSWER_LENGTH,
  HEADER_BASE_LENGTH,
  HEADER_NONCE_LENGTH,
  HEADER_OFFER_LENGTH,
  KEM_CIPHERTEXT_LENGTH,
  KEM_PUBLIC_LENGTH,
  KEM_SECRET_LENGTH,
  KEM_SHARED_LENGTH,
  KEY_LENGTH,
  MAX_MESSAGE_LENGTH,
  MAX_PLAINTEXT_LENGTH,
  MAX_SKIP_PER_CHAIN,
  MAX_SKIPPED_HEADER_KEYS,
  MAX_SKIPPED_KEYS,
  MESSAGE_TYPE_PREKEY,
  MESSAGE_TYPE_RATCHET,
  MESSAGING_VERSION,
  PQ_ANSWER,
  PQ_NONE,
  PQ_OFFER,
  PQ_RATCHET_INTERVAL_MS,
  PQ_RATCHET_MESSAGES,
  PREKEY_FIELDS_LENGTH,
  TAG_LENGTH,
} from './constants.js';
import { kdfChain, kdfRoot } from './kdf.js';
import { kemDecapsulate, kemEncapsulate, kemGenerate } from './kem.js';

/** What a session needs from its host: the crypto backend (and its randomness) and a clock in milliseconds. */
export interface MessagingComponents {
  crypto: CryptoBackend;
  now: () => number;
}

/** An offered ML-KEM key whose answer has not come back yet. */
interface PqOffer {
  id: number;
  secretKey: Uint8Array;
}

/** An answer to the peer's offer: its ciphertext and, until a sending chain has mixed it in, the shared secret. */
interface PqAnswer {
  id: number;
  ciphertext: Uint8Array;
  secret: Uint8Array | null;
}

/**
 * The ratchet state (spec section 3.2 with 4.2's header keys). Fields are replaced, never
 * changed in place, so that a shallow copy is a transaction (see `decrypt`).
 */
interface Core {
  initiator: boolean;
  /** Associated data: initiator identity key ‖ responder identity key. */
  ad: Uint8Array;
  dhsSecret: Uint8Array;
  dhsPublic: Uint8Array;
  dhr: Uint8Array | null;
  rk: Uint8Array;
  cks: Uint8Array | null;
  ckr: Uint8Array | null;
  ns: number;
  nr: number;
  pn: number;
  hks: Uint8Array | null;
  hkr: Uint8Array | null;
  nhks: Uint8Array;
  nhkr: Uint8Array;
  /** Initiator, until it first reads a reply: the set-up fields its messages carry. */
  prekeyFields: Uint8Array | null;
  /** Responder: initiator identity key ‖ ephemeral key ‖ prekey id, to recognise the initiator's repeated set-up. */
  setupId: Uint8Array | null;
  pqOwn: PqOffer | null;
  pqNextId: number;
  pqSentSince: number;
  pqLastMs: number;
  /** An answer not yet mixed into a sending chain. */
  pqPending: PqAnswer | null;
  /** The answer the current sending chain carries (secret already mixed in, so null). */
  pqChain: PqAnswer | null;
  /** The highest offer id of the peer answered so far (ids start at 1). */
  pqAnswered: number;
}

/** Every byte array a core holds, to wipe what a commit replaces. */
function arraysOf(s: Core): Uint8Array[] {
  const out: Uint8Array[] = [s.dhsSecret, s.rk, s.nhks, s.nhkr];
  for (const a of [s.cks, s.ckr, s.hks, s.hkr, s.prekeyFields, s.pqOwn?.secretKey, s.pqPending?.secret, s.pqPending?.ciphertext, s.pqChain?.ciphertext]) if (a) out.push(a);
  return out;
}

/** A skipped message key (spec MKSKIPPED), under the header key of its chain. */
interface Skipped {
  hk: Uint8Array;
  n: number;
  mk: Uint8Array;
}

/** A decoded header. */
interface Header {
  dh: Uint8Array;
  pn: number;
  n: number;
  kind: number;
  pqId: number;
  pq: Uint8Array | null;
}

/** The parsed frame of a message, as views into it. */
interface Frame {
  type: number;
  prekeyFields: Uint8Array | null;
  nonce: Uint8Array;
  sealedHeader: Uint8Array;
  body: Uint8Array;
  /** Everything before the body: the body's associated data after the session's own. */
  prefix: Uint8Array;
}

const VALID_SEALED_HEADER_LENGTHS = [HEADER_BASE_LENGTH, HEADER_OFFER_LENGTH, HEADER_ANSWER_LENGTH].map((n) => n + TAG_LENGTH);

const decryptError = (): BackchannelError => new BackchannelError('ERR_MSG_DECRYPT', 'messaging: message does not authenticate in this session');

/**
 * Splits a message into its fields.
 * @throws {BackchannelError} ERR_MSG_ENCODING on an unknown type, a bad header length or a short message.
 */
export function parseFrame(message: Uint8Array): Frame {
  abytes('message', message);
  const r = new Reader(message, 'message');
  if (message.length > MAX_MESSAGE_LENGTH) r.fail('longer than a message can be');
  const type = r.u8();
  if (type !== MESSAGE_TYPE_PREKEY && type !== MESSAGE_TYPE_RATCHET) r.fail('unknown type');
  const prekeyFields = type === MESSAGE_TYPE_PREKEY ? r.view(PREKEY_FIELDS_LENGTH) : null;
  const nonce = r.view(HEADER_NONCE_LENGTH);
  const hlen = r.u16();
  if (!VALID_SEALED_HEADER_LENGTHS.includes(hlen)) r.fail('bad header length');
  const sealedHeader = r.view(hlen);
  const prefix = message.subarray(0, r.offset);
  if (r.remaining < TAG_LENGTH) r.fail('truncated');
  const body = r.view(r.remaining);
  return { type, prekeyFields, nonce, sealedHeader, body, prefix };
}

function encodeHeader(dh: Uint8Array, pn: number, n: number, kind: number, pqId: number, pq: Uint8Array | null): Uint8Array {
  const w = new Writer(HEADER_BASE_LENGTH + (pq === null ? 0 : 4 + pq.length)).bytes(dh).u32(pn).u32(n).u8(kind);
  if (kind !== PQ_NONE) w.u32(pqId).bytes(pq!);
  return w.finish();
}

function decodeHeader(bytes: Uint8Array): Header {
  const r = new Reader(bytes, 'header');
  const dh = r.bytes(DH_LENGTH);
  const pn = r.u32();
  const n = r.u32();
  const kind = r.u8();
  let pqId = 0;
  let pq: Uint8Array | null = null;
  if (kind === PQ_OFFER || kind === PQ_ANSWER) {
    pqId = r.u32();
    if (pqId === 0) r.fail('post-quantum id 0');
    pq = r.bytes(kind === PQ_OFFER ? KEM_PUBLIC_LENGTH : KEM_CIPHERTEXT_LENGTH);
  } else if (kind !== PQ_NONE) r.fail('unknown post-quantum kind');
  r.end();
  return { dh, pn, n, kind, pqId, pq };
}

/** HDECRYPT: the header under `hk` (XChaCha20-Poly1305), or null when it does not authenticate. */
function openHeader(c: CryptoBackend, hk: Uint8Array, headerAd: Uint8Array, f: Frame): Uint8Array | null {
  return c.chacha20Poly1305Open(hk, f.nonce, headerAd, f.sealedHeader);
}

/** The header's associated data: the session's, then the message type. */
function headerAdOf(ad: Uint8Array, type: number): Uint8Array {
  return concatBytes(ad, Uint8Array.of(type));
}

/** DH with a peer's public key; a small-order key (which only a broken or hostile peer sends) is ERR_MSG_KEY. */
export function dh(c: CryptoBackend, secret: Uint8Array, pub: Uint8Array): Uint8Array {
  try {
    return c.x25519(secret, pub);
  } catch (cause) {
    if (isBackchannelError(cause, 'ERR_CRYPTO_LOW_ORDER')) throw new BackchannelError('ERR_MSG_KEY', 'messaging: peer sent a small-order X25519 key', { cause });
    throw cause;
  }
}

/** A set of skipped message keys bounded by MAX_SKIPPED_KEYS and MAX_SKIPPED_HEADER_KEYS, oldest evicted first. */
class SkippedKeys {
  /** By header key then counter, in insertion order. */
  readonly entries = new Map<string, Skipped>();
  /** Distinct header keys (the cache's own copies) and how many entries use each, in insertion order. */
  readonly headerKeys = new Map<string, { hk: Uint8Array; count: number }>();

  private static key(hkId: string, n: number): string {
    return `${hkId}:${n}`;
  }

  get(hk: Uint8Array, n: number): Skipped | undefined {
    return this.entries.get(SkippedKeys.key(idKey(hk), n));
  }

  add(hk: Uint8Array, n: number, mk: Uint8Array): void {
    const hkId = idKey(hk);
    let h = this.headerKeys.get(hkId);
    if (!h) {
      while (this.headerKeys.size >= MAX_SKIPPED_HEADER_KEYS) this.dropHeaderKey(this.headerKeys.keys().next().value as string);
      h = { hk: hk.slice(), count: 0 };
      this.headerKeys.set(hkId, h);
    }
    h.count++;
    this.entries.set(SkippedKeys.key(hkId, n), { hk: h.hk, n, mk });
    while (this.entries.size > MAX_SKIPPED_KEYS) this.remove(this.entries.values().next().value as Skipped);
  }

  remove(s: Skipped): void {
    const hkId = idKey(s.hk);
    if (!this.entries.delete(SkippedKeys.key(hkId, s.n))) return;
    wipe(s.mk);
    const h = this.headerKeys.get(hkId)!;
    if (--h.count === 0) {
      this.headerKeys.delete(hkId);
      wipe(h.hk);
    }
  }

  private dropHeaderKey(hkId: string): void {
    for (const s of [...this.entries.values()]) if (idKey(s.hk) === hkId) this.remove(s);
  }

  wipeAll(): void {
    for (const s of this.entries.values()) wipe(s.mk);
    for (const h of this.headerKeys.values()) wipe(h.hk);
    this.entries.clear();
    this.headerKeys.clear();
  }
}

/** A decryption in progress: a copy of the core and the skipped-key changes to apply if it succeeds. */
interface Txn {
  s: Core;
  add: { hk: Uint8Array; n: number; mk: Uint8Array }[];
  remove: Skipped | null;
  /** Keys made inside the transaction and replaced inside it (intermediate chain keys): wiped at the end either way. */
  replaced: Uint8Array[];
  /** A post-quantum step of our own completed in this message. */
  pqCompleted: boolean;
}

/**
 * One party's end of a session: encrypts and decrypts messages and encodes its state.
 * Made by `initiateSession` / `acceptSession` (x3dh.ts) or `Session.decode`.
 */
export class Session {
  private core: Core;
  private readonly skipped: SkippedKeys;
  private readonly c: MessagingComponents;

  private constructor(core: Core, skipped: SkippedKeys, c: MessagingComponents) {
    this.core = core;
    this.skipped = skipped;
    this.c = c;
  }

  /** @internal Used by x3dh.ts. */
  static fromCore(core: Core, c: MessagingComponents): Session {
    return new Session(core, new SkippedKeys(), c);
  }

  /** The peer's X25519 identity key. */
  get remoteIdentityKey(): Uint8Array {
    return this.core.initiator ? this.core.ad.slice(32, 64) : this.core.ad.slice(0, 32);
  }

  /** Our own X25519 identity key. */
  get localIdentityKey(): Uint8Array {
    return this.core.initiator ? this.core.ad.slice(0, 32) : this.core.ad.slice(32, 64);
  }

  /** Skipped message keys held (messages that may still arrive out of order). */
  get skippedCount(): number {
    return this.skipped.entries.size;
  }

  /** True while this (initiating) side has not read a reply, so its messages still carry the set-up. */
  get awaitingReply(): boolean {
    return this.core.prekeyFields !== null;
  }

  /** True while an offered ML-KEM key of ours waits for its answer. */
  get pqOfferOutstanding(): boolean {
    return this.core.pqOwn !== null;
  }

  /**
   * RatchetEncryptHE (spec section 4.3), with the set-up fields while no reply has come and the
   * post-quantum offer or answer in the header when one is due.
   * @throws {RangeError} when `plaintext` is longer than MAX_PLAINTEXT_LENGTH.
   * @throws {BackchannelError} ERR_MSG_TOO_LONG when the sending counter is exhausted.
   */
  encrypt(plaintext: Uint8Array): Uint8Array {
    abytes('plaintext', plaintext);
    if (plaintext.length > MAX_PLAINTEXT_LENGTH) throw new RangeError(`"plaintext" expected at most ${MAX_PLAINTEXT_LENGTH} bytes, got length=${plaintext.length}`);
    const s = this.core;
    const c = this.c.crypto;
    if (s.cks === null || s.hks === null) throw new BackchannelError('ERR_MSG_DECRYPT', 'messaging: session cannot send before it has read the first message');
    if (s.ns >= 0xffffffff) throw new BackchannelError('ERR_MSG_TOO_LONG', 'messaging: sending chain exhausted');
    // An offer once the quota of messages or time is reached; not while set-up fields fill the header's room.
    if (s.pqOwn === null && s.prekeyFields === null && (s.pqSentSince >= PQ_RATCHET_MESSAGES || this.c.now() - s.pqLastMs >= PQ_RATCHET_INTERVAL_MS)) {
      s.pqOwn = { id: s.pqNextId, secretKey: kemGenerate(c).secretKey };
      s.pqNextId = s.pqNextId >= 0xffffffff ? 1 : s.pqNextId + 1;
    }
    const { ck, mk } = kdfChain(c, s.cks);
    wipe(s.cks);
    s.cks = ck;
    let header: Uint8Array;
    if (s.pqChain) header = encodeHeader(s.dhsPublic, s.pn, s.ns, PQ_ANSWER, s.pqChain.id, s.pqChain.ciphertext);
    else if (s.pqOwn) header = encodeHeader(s.dhsPublic, s.pn, s.ns, PQ_OFFER, s.pqOwn.id, kemPublicOf(s.pqOwn.secretKey));
    else header = encodeHeader(s.dhsPublic, s.pn, s.ns, PQ_NONE, 0, null);
    const type = s.prekeyFields ? MESSAGE_TYPE_PREKEY : MESSAGE_TYPE_RATCHET;
    const nonce = c.randomBytes(HEADER_NONCE_LENGTH);
    const sealedHeader = c.chacha20Poly1305Seal(s.hks, nonce, headerAdOf(s.ad, type), header);
    // The message in one buffer: type ‖ [set-up] ‖ nonce ‖ header length ‖ sealed header ‖ sealed body.
    const prefixLength = 1 + (s.prekeyFields ? s.prekeyFields.length : 0) + HEADER_NONCE_LENGTH + 2 + sealedHeader.length;
    const out = new Uint8Array(prefixLength + plaintext.length + TAG_LENGTH);
    let off = 0;
    out[off++] = type;
    if (s.prekeyFields) {
      out.set(s.prekeyFields, off);
      off += s.prekeyFields.length;
    }
    out.set(nonce, off);
    off += HEADER_NONCE_LENGTH;
    out[off++] = sealedHeader.length >>> 8;
    out[off++] = sealedHeader.length & 0xff;
    out.set(sealedHeader, off);
    try {
      out.set(sealBody(c, mk, s.ad, out.subarray(0, prefixLength), plaintext), prefixLength);
      s.ns++;
      if (s.pqSentSince < 0xffffffff) s.pqSentSince++;
      return out;
    } finally {
      wipe(mk, header);
    }
  }

  /**
   * RatchetDecryptHE (spec section 4.3): skipped keys first, then the current receiving header
   * key, then the next one (a DH ratchet step, with the post-quantum secret when the header
   * answers our offer). The state changes only when the body authenticates.
   * @throws {BackchannelError} ERR_MSG_ENCODING for a malformed message; ERR_MSG_DECRYPT when it
   *   does not authenticate under any key of this session; ERR_MSG_REPLAY when it was read
   *   already (or its key was evicted); ERR_MSG_SKIP_LIMIT when it is further ahead than
   *   MAX_SKIP_PER_CHAIN (it is then lost); ERR_MSG_KEY for a small-order ratchet key.
   */
  decrypt(message: Uint8Array): Uint8Array {
    const f = parseFrame(message);
    const s0 = this.core;
    if (f.type === MESSAGE_TYPE_PREKEY) {
      // Only the responder reads set-up messages, and only the initiator's own set-up.
      if (s0.setupId === null || !equalBytes(f.prekeyFields!.subarray(0, s0.setupId.length), s0.setupId)) throw decryptError();
    }
    const txn: Txn = { s: { ...s0 }, add: [], remove: null, replaced: [], pqCompleted: false };
    let plaintext: Uint8Array;
    try {
      plaintext = this.decryptIn(txn, f);
    } catch (err) {
      const keep = new Set(arraysOf(s0));
      for (const a of [...arraysOf(txn.s), ...txn.replaced]) if (!keep.has(a)) wipe(a);
      for (const a of txn.add) wipe(a.mk);
      throw err;
    }
    // Commit: wipe what the new state no longer holds, then apply the skipped-key changes.
    const s = txn.s;
    if (txn.pqCompleted) {
      s.pqSentSince = 0;
      s.pqLastMs = this.c.now();
    }
    s.prekeyFields = null;
    // The cache copies the header keys it stores, so it goes before the wipe.
    if (txn.remove) this.skipped.remove(txn.remove);
    for (const a of txn.add) this.skipped.add(a.hk, a.n, a.mk);
    const keep = new Set(arraysOf(s));
    for (const a of [...arraysOf(s0), ...txn.replaced]) if (!keep.has(a)) wipe(a);
    this.core = s;
    return plaintext;
  }

  private decryptIn(txn: Txn, f: Frame): Uint8Array {
    const s = txn.s;
    const c = this.c.crypto;
    const hAd = headerAdOf(s.ad, f.type);
    // TrySkippedMessageKeysHE.
    for (const { hk } of this.skipped.headerKeys.values()) {
      const hb = openHeader(c, hk, hAd, f);
      if (!hb) continue;
      const h = decodeHeader(hb);
      const found = this.skipped.get(hk, h.n);
      if (found) {
        txn.remove = found;
        this.readOffer(txn, h);
        return openBody(c, found.mk, s.ad, f);
      }
      // The current receiving chain may hold skipped keys too: a later counter there is new.
      if (!(s.hkr && equalBytes(hk, s.hkr))) throw replayError();
      break;
    }
    if (s.hkr) {
      const hb = openHeader(c, s.hkr, hAd, f);
      if (hb) {
        const h = decodeHeader(hb);
        if (h.n < s.nr) throw replayError();
        this.readOffer(txn, h);
        this.skipTo(txn, h.n);
        return this.readNext(txn, f);
      }
    }
    const hb = openHeader(c, s.nhkr, hAd, f);
    if (!hb) throw decryptError();
    const h = decodeHeader(hb);
    this.readOffer(txn, h);
    // A chain's first message is processed once; a copy of it after the step comes here no more (hkr matches).
    if (s.ckr !== null) {
      if (h.pn < s.nr) throw decryptError();
      this.skipTo(txn, h.pn);
    }
    this.dhRatchet(txn, h);
    this.skipTo(txn, h.n);
    return this.readNext(txn, f);
  }

  /** Reads the next message key of the receiving chain and opens the body with it. */
  private readNext(txn: Txn, f: Frame): Uint8Array {
    const s = txn.s;
    const { ck, mk } = kdfChain(this.c.crypto, s.ckr!);
    txn.replaced.push(s.ckr!);
    s.ckr = ck;
    s.nr++;
    try {
      return openBody(this.c.crypto, mk, s.ad, f);
    } finally {
      wipe(mk);
    }
  }

  /** SkipMessageKeysHE: keeps the keys of messages until counter `until` in the current receiving chain. */
  private skipTo(txn: Txn, until: number): void {
    const s = txn.s;
    if (s.ckr === null) return;
    if (until - s.nr > MAX_SKIP_PER_CHAIN) throw new BackchannelError('ERR_MSG_SKIP_LIMIT', `messaging: message is more than ${MAX_SKIP_PER_CHAIN} ahead in its chain`);
    while (s.nr < until) {
      const { ck, mk } = kdfChain(this.c.crypto, s.ckr);
      txn.add.push({ hk: s.hkr!, n: s.nr, mk });
      txn.replaced.push(s.ckr);
      s.ckr = ck;
      s.nr++;
    }
  }

  /** DHRatchetHE (spec section 4.3), with the post-quantum secrets of this step mixed into the root KDF. */
  private dhRatchet(txn: Txn, h: Header): void {
    const s = txn.s;
    const c = this.c.crypto;
    let pqIn: Uint8Array | undefined;
    if (h.kind === PQ_ANSWER) {
      // This chain's root step mixes the answer to our offer; without that offer we cannot follow it.
      if (s.pqOwn === null || s.pqOwn.id !== h.pqId) throw decryptError();
      pqIn = kemDecapsulate(s.pqOwn.secretKey, h.pq!);
      s.pqOwn = null;
      txn.pqCompleted = true;
    }
    s.pn = s.ns;
    s.ns = 0;
    s.nr = 0;
    s.hks = s.nhks;
    s.hkr = s.nhkr;
    s.dhr = h.dh;
    const dh1 = dh(c, s.dhsSecret, s.dhr);
    let recv;
    try {
      recv = kdfRoot(c, s.rk, dh1, pqIn);
    } finally {
      wipe(dh1, pqIn);
    }
    s.ckr = recv.ck;
    s.nhkr = recv.nhk;
    s.dhsSecret = c.randomBytes(DH_LENGTH);
    s.dhsPublic = c.x25519Base(s.dhsSecret);
    const out = s.pqPending;
    s.pqPending = null;
    s.pqChain = out ? { id: out.id, ciphertext: out.ciphertext, secret: null } : null;
    const dh2 = dh(c, s.dhsSecret, s.dhr);
    let send;
    try {
      send = kdfRoot(c, recv.rk, dh2, out?.secret ?? undefined);
    } finally {
      // out.secret belongs to the state before this message: the commit wipes it (a rollback keeps it).
      wipe(dh2, recv.rk);
    }
    s.rk = send.rk;
    s.cks = send.ck;
    s.nhks = send.nhk;
  }

  /** Answers the peer's offer (once per offer id): the secret waits for our next sending chain. */
  private readOffer(txn: Txn, h: Header): void {
    const s = txn.s;
    if (h.kind !== PQ_OFFER || h.pqId <= s.pqAnswered) return;
    const { ciphertext, sharedSecret } = kemEncapsulate(this.c.crypto, h.pq!);
    s.pqPending = { id: h.pqId, ciphertext, secret: sharedSecret };
    s.pqAnswered = h.pqId;
  }

  /** The whole state as bytes (see `decode`). The buffer holds secrets: the caller wipes it after storing it. */
  encode(): Uint8Array {
    const s = this.core;
    const w = new Writer().u8(MESSAGING_VERSION).u8(s.initiator ? 1 : 0).bytes(s.ad).bytes(s.dhsSecret);
    const opt = (a: Uint8Array | null): void => {
      if (a === null) w.u8(0);
      else w.u8(1).bytes(a);
    };
    opt(s.dhr);
    w.bytes(s.rk);
    opt(s.cks);
    opt(s.ckr);
    w.u32(s.ns).u32(s.nr).u32(s.pn);
    opt(s.hks);
    opt(s.hkr);
    w.bytes(s.nhks).bytes(s.nhkr);
    opt(s.prekeyFields);
    opt(s.setupId);
    if (s.pqOwn) w.u8(1).u32(s.pqOwn.id).bytes(s.pqOwn.secretKey);
    else w.u8(0);
    w.u32(s.pqNextId).u32(s.pqSentSince).u64(s.pqLastMs);
    if (s.pqPending) w.u8(1).u32(s.pqPending.id).bytes(s.pqPending.ciphertext).bytes(s.pqPending.secret!);
    else w.u8(0);
    if (s.pqChain) w.u8(1).u32(s.pqChain.id).bytes(s.pqChain.ciphertext);
    else w.u8(0);
    w.u32(s.pqAnswered);
    w.u32(this.skipped.entries.size);
    for (const e of this.skipped.entries.values()) w.bytes(e.hk).u32(e.n).bytes(e.mk);
    return w.finishChecked();
  }

  /**
   * Restores a session from `encode`'s bytes.
   * @throws {BackchannelError} ERR_MSG_ENCODING on a wrong version, a truncated or over-long
   *   input, a flag that is neither 0 nor 1, or skipped keys past the limits or repeated.
   */
  static decode(bytes: Uint8Array, components: MessagingComponents): Session {
    abytes('bytes', bytes);
    const c = components.crypto;
    const r = Reader.checked(bytes, 'session state');
    if (r.u8() !== MESSAGING_VERSION) r.fail('unknown version');
    const initiator = r.bool();
    const ad = r.bytes(2 * DH_LENGTH);
    const dhsSecret = r.bytes(DH_LENGTH);
    const opt = (n: number): Uint8Array | null => (r.bool() ? r.bytes(n) : null);
    const dhr = opt(DH_LENGTH);
    const rk = r.bytes(KEY_LENGTH);
    const cks = opt(KEY_LENGTH);
    const ckr = opt(KEY_LENGTH);
    const ns = r.u32();
    const nr = r.u32();
    const pn = r.u32();
    const hks = opt(KEY_LENGTH);
    const hkr = opt(KEY_LENGTH);
    const nhks = r.bytes(KEY_LENGTH);
    const nhkr = r.bytes(KEY_LENGTH);
    const prekeyFields = opt(PREKEY_FIELDS_LENGTH);
    const setupId = opt(2 * DH_LENGTH + 4);
    const pqOwn = r.bool() ? { id: r.u32(), secretKey: r.bytes(KEM_SECRET_LENGTH) } : null;
    const pqNextId = r.u32();
    const pqSentSince = r.u32();
    const pqLastMs = r.u64();
    const pqPending = r.bool() ? { id: r.u32(), ciphertext: r.bytes(KEM_CIPHERTEXT_LENGTH), secret: r.bytes(KEM_SHARED_LENGTH) } : null;
    const pqChain = r.bool() ? { id: r.u32(), ciphertext: r.bytes(KEM_CIPHERTEXT_LENGTH), secret: null } : null;
    const pqAnswered = r.u32();
    if (pqNextId === 0 || pqOwn?.id === 0 || pqPending?.id === 0 || pqChain?.id === 0) r.fail('post-quantum id 0');
    if (initiator ? setupId !== null : prekeyFields !== null) r.fail('set-up fields on the wrong side');
    const count = r.u32();
    if (count > MAX_SKIPPED_KEYS) r.fail('too many skipped keys');
    const skipped = new SkippedKeys();
    for (let i = 0; i < count; i++) {
      const hk = r.bytes(KEY_LENGTH);
      const n = r.u32();
      const mk = r.bytes(KEY_LENGTH);
      if (skipped.get(hk, n)) r.fail('repeated skipped key');
      if (!skipped.headerKeys.has(idKey(hk)) && skipped.headerKeys.size >= MAX_SKIPPED_HEADER_KEYS) r.fail('too many skipped header keys');
      skipped.add(hk, n, mk);
      wipe(hk);
    }
    r.end();
    const core: Core = {
      initiator, ad, dhsSecret, dhsPublic: c.x25519Base(dhsSecret), dhr, rk, cks, ckr, ns, nr, pn, hks, hkr, nhks, nhkr,
      prekeyFields, setupId, pqOwn, pqNextId, pqSentSince, pqLastMs, pqPending, pqChain, pqAnswered,
    };
    return new Session(core, skipped, components);
  }

  /** Overwrites every secret this session holds; it cannot be used afterwards. */
  destroy(): void {
    for (const a of arraysOf(this.core)) wipe(a);
    this.skipped.wipeAll();
  }
}

const replayError = (): BackchannelError => new BackchannelError('ERR_MSG_REPLAY', 'messaging: message was read already or its key has expired');

/** The ML-KEM-768 encapsulation key inside a decapsulation key (FIPS 203 §7.1: dk = dk_pke ‖ ek ‖ H(ek) ‖ z). */
export function kemPublicOf(secretKey: Uint8Array): Uint8Array {
  return secretKey.subarray(1152, 1152 + KEM_PUBLIC_LENGTH);
}

/** The body's nonce: zero, since each message key seals exactly one body (docs/messaging.md). */
const BODY_NONCE = new Uint8Array(12);

/**
 * ENCRYPT(mk, plaintext, AD ‖ prefix): ChaCha20-Poly1305 with the message key itself as the key
 * and a zero nonce. A message key is a KDF_CK output, uniform and used for this one body only, so
 * no further derivation is needed (the spec's HKDF step exists for AES-CBC + HMAC, which need
 * three values). Exported for the known-answer test.
 */
export function sealBody(c: CryptoBackend, mk: Uint8Array, ad: Uint8Array, prefix: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return c.chacha20Poly1305Seal(mk, BODY_NONCE, concatBytes(ad, prefix), plaintext);
}

/** DECRYPT(mk, body, AD ‖ prefix), as sealBody. */
function openBody(c: CryptoBackend, mk: Uint8Array, ad: Uint8Array, f: Frame): Uint8Array {
  const out = c.chacha20Poly1305Open(mk, BODY_NONCE, concatBytes(ad, f.prefix), f.body);
  if (out === null) throw decryptError();
  return out;
}

export type { Core as SessionCore };
