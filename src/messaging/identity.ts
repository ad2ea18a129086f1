/**
 * Long-term identities (an X25519 key pair and an ML-KEM-768 key pair), one-time prekeys, and the
 * bundle a contact receives: what the initiator of a session needs and nothing more. Nothing here
 * is signed: a bundle reaches its holder through an authenticated channel (a PAKE, or a session
 * with an introducer), which is what vouches for it.
 */
import type { CryptoBackend } from '../crypto/types.js';
import { BackchannelError } from '../errors.js';
import { abytes, aint, wipe } from '../util/bytes.js';
import { Reader, Writer } from './_codec.js';
import { DH_LENGTH, KEM_PUBLIC_LENGTH, KEM_SEED_LENGTH, MESSAGING_VERSION } from './constants.js';
import { type KemKeyPair, kemKeyPairFromSeed } from './kem.js';

/** Unconsumed one-time prekeys a party keeps at most; the oldest go first when it makes more. */
export const MAX_PREKEYS = 1000;

/** A party's long-term keys. The secret fields are wiped by `wipeIdentity`. */
export interface Identity {
  dhSecret: Uint8Array;
  dhPublic: Uint8Array;
  /** The 64-byte ML-KEM seed the key pair is derived from (FIPS 203 d ‖ z): what the encoding stores. */
  kemSeed: Uint8Array;
  kem: KemKeyPair;
}

/** A new identity from the backend's randomness. */
export function generateIdentity(c: CryptoBackend): Identity {
  const dhSecret = c.randomBytes(DH_LENGTH);
  const kemSeed = c.randomBytes(KEM_SEED_LENGTH);
  return { dhSecret, dhPublic: c.x25519Base(dhSecret), kemSeed, kem: kemKeyPairFromSeed(kemSeed) };
}

/** version ‖ X25519 secret (32) ‖ ML-KEM seed (64) ‖ SHA-256 check sum: 129 bytes; the public halves are derived again on decoding. */
export function encodeIdentity(id: Identity): Uint8Array {
  return new Writer().u8(MESSAGING_VERSION).bytes(id.dhSecret).bytes(id.kemSeed).finishChecked();
}

/**
 * @throws {BackchannelError} ERR_MSG_ENCODING on a wrong version, length or trailing bytes.
 */
export function decodeIdentity(c: CryptoBackend, bytes: Uint8Array): Identity {
  abytes('bytes', bytes);
  const r = Reader.checked(bytes, 'identity');
  if (r.u8() !== MESSAGING_VERSION) r.fail('unknown version');
  const dhSecret = r.bytes(DH_LENGTH);
  const kemSeed = r.bytes(KEM_SEED_LENGTH);
  r.end();
  return { dhSecret, dhPublic: c.x25519Base(dhSecret), kemSeed, kem: kemKeyPairFromSeed(kemSeed) };
}

/** Overwrites an identity's secrets. */
export function wipeIdentity(id: Identity): void {
  wipe(id.dhSecret, id.kemSeed, id.kem.secretKey);
}

/** What a contact receives to open a session: identity keys and one one-time X25519 prekey. */
export interface Bundle {
  identityKey: Uint8Array;
  kemPublicKey: Uint8Array;
  prekeyId: number;
  prekey: Uint8Array;
}

/** Bundle encoding: version ‖ identity key (32) ‖ ML-KEM-768 key (1184) ‖ prekey id (u32) ‖ prekey (32): 1,253 bytes. */
export const BUNDLE_LENGTH = 1 + DH_LENGTH + KEM_PUBLIC_LENGTH + 4 + DH_LENGTH;

export function encodeBundle(b: Bundle): Uint8Array {
  abytes('identityKey', b.identityKey, DH_LENGTH);
  abytes('kemPublicKey', b.kemPublicKey, KEM_PUBLIC_LENGTH);
  aint('prekeyId', b.prekeyId, 0, 0xffffffff);
  abytes('prekey', b.prekey, DH_LENGTH);
  return new Writer().u8(MESSAGING_VERSION).bytes(b.identityKey).bytes(b.kemPublicKey).u32(b.prekeyId).bytes(b.prekey).finish();
}

/**
 * @throws {BackchannelError} ERR_MSG_ENCODING on a wrong version, length or trailing bytes. The
 *   keys themselves are checked when used (ERR_MSG_KEY).
 */
export function decodeBundle(bytes: Uint8Array): Bundle {
  abytes('bytes', bytes);
  const r = new Reader(bytes, 'bundle');
  if (r.u8() !== MESSAGING_VERSION) r.fail('unknown version');
  const identityKey = r.bytes(DH_LENGTH);
  const kemPublicKey = r.bytes(KEM_PUBLIC_LENGTH);
  const prekeyId = r.u32();
  const prekey = r.bytes(DH_LENGTH);
  r.end();
  return { identityKey, kemPublicKey, prekeyId, prekey };
}

/** A party's unconsumed one-time prekeys (secret halves) by id, and the next id to hand out. */
export interface PrekeyStore {
  nextId: number;
  keys: Map<number, Uint8Array>;
}

export function createPrekeyStore(): PrekeyStore {
  return { nextId: 0, keys: new Map() };
}

/**
 * Makes a one-time prekey and returns the bundle that carries it. When the store already holds
 * MAX_PREKEYS, the oldest is dropped (a contact who was given it can no longer open a session).
 * @throws {BackchannelError} ERR_MSG_PREKEY when the 2^32 prekey ids are used up.
 */
export function createBundle(c: CryptoBackend, id: Identity, store: PrekeyStore): Bundle {
  if (store.nextId > 0xffffffff) throw new BackchannelError('ERR_MSG_PREKEY', 'messaging: prekey ids exhausted');
  const secret = c.randomBytes(DH_LENGTH);
  const prekeyId = store.nextId++;
  store.keys.set(prekeyId, secret);
  while (store.keys.size > MAX_PREKEYS) {
    const oldest = store.keys.keys().next().value as number;
    wipe(store.keys.get(oldest));
    store.keys.delete(oldest);
  }
  return { identityKey: id.dhPublic.slice(), kemPublicKey: id.kem.publicKey.slice(), prekeyId, prekey: c.x25519Base(secret) };
}

/** version ‖ next id (u64: up to 2^32) ‖ count (u32) ‖ (id (u32) ‖ secret (32)) in ascending id order ‖ SHA-256 check sum. */
export function encodePrekeyStore(store: PrekeyStore): Uint8Array {
  const w = new Writer().u8(MESSAGING_VERSION).u64(store.nextId).u32(store.keys.size);
  for (const id of [...store.keys.keys()].sort((a, b) => a - b)) w.u32(id).bytes(store.keys.get(id)!);
  return w.finishChecked();
}

/**
 * @throws {BackchannelError} ERR_MSG_ENCODING on a wrong version, a count past MAX_PREKEYS, ids
 *   out of order or not below the next id, truncation or trailing bytes.
 */
export function decodePrekeyStore(bytes: Uint8Array): PrekeyStore {
  abytes('bytes', bytes);
  const r = Reader.checked(bytes, 'prekey store');
  if (r.u8() !== MESSAGING_VERSION) r.fail('unknown version');
  const nextId = r.u64();
  if (nextId > 2 ** 32) r.fail('next id out of range');
  const count = r.u32();
  if (count > MAX_PREKEYS) r.fail('too many prekeys');
  const keys = new Map<number, Uint8Array>();
  let last = -1;
  for (let i = 0; i < count; i++) {
    const id = r.u32();
    if (id <= last || id >= nextId) r.fail('prekey ids out of order');
    last = id;
    keys.set(id, r.bytes(DH_LENGTH));
  }
  r.end();
  return { nextId, keys };
}

/** Removes and returns the secret of prekey `id`, or undefined when it is unknown or was consumed already. */
export function takePrekey(store: PrekeyStore, id: number): Uint8Array | undefined {
  const secret = store.keys.get(id);
  store.keys.delete(id);
  return secret;
}
