/**
 * A server's secret keys, in files under its dataDir (types.ts: configs carry public keys only):
 *
 * - `identity.key`: the Ed25519 seed that signs descriptors (nodes) or votes and documents
 *   (authorities); its public key names the node in the network.
 * - `link.key`: the X25519 static key of the node's Noise XK links (mixes and gateways).
 * - `mixkeys.json`: one X25519 Sphinx key per epoch, deleted once the epoch is over, so that a
 *   key seized later cannot unwrap packets recorded earlier.
 *
 * Key files are JSON, `{"type": "ed25519-seed" | "x25519-private", "secret": hex}`, mode 0600,
 * written atomically (see _fs.ts). Errors name the file, never its content. One process at a time
 * may use a dataDir.
 *
 * Limits: the hex strings that JSON.parse returns cannot be wiped (JavaScript strings are
 * immutable), and a deleted mix key may survive in free disk blocks until they are reused.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { nodeBackend } from '../crypto/node.js';
import { BackchannelError } from '../errors.js';
import type { MixKey } from '../pki/types.js';
import { aint, fromHex, wipe } from '../util/bytes.js';
import { writeFileAtomic } from './_fs.js';

export const IDENTITY_KEY_FILE = 'identity.key';
export const LINK_KEY_FILE = 'link.key';
export const MIX_KEYS_FILE = 'mixkeys.json';
export const KEY_FILE_MODE = 0o600;
export const DATA_DIR_MODE = 0o700;
/** Ed25519 seeds (RFC 8032 §5.1.5) and X25519 private keys (RFC 7748) are 32 bytes. */
export const SECRET_KEY_LENGTH = 32;
/** Mix keys kept at once: epochs ahead plus a few behind; far more means deleteBefore is never called. */
export const MAX_STORED_MIX_KEYS = 1024;
/** Key files are tiny; a bigger file is the wrong file. */
const MAX_KEY_FILE_BYTES = 1 << 20;

export type KeyFileType = 'ed25519-seed' | 'x25519-private' | 'hmac-sha256';
/** A token-admission gateway's key that mints invitation tokens (src/wire/admission.ts). */
export const ADMISSION_TOKEN_KEY_FILE = 'admission-token.key';

export interface KeyOptions {
  /** Where new secrets come from (default: nodeBackend.randomBytes, the system CSPRNG). */
  readonly randomBytes?: (length: number) => Uint8Array;
}

export interface IdentityKeyPair {
  /** The Ed25519 seed (RFC 8032's private key). */
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  /** True when this call created the file. */
  readonly created: boolean;
  /** True when the file is readable or writable by group or others (mode & 0o077); the caller should warn. */
  readonly insecurePermissions: boolean;
}

export interface LinkKeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly created: boolean;
  readonly insecurePermissions: boolean;
}

function keysError(message: string, cause?: unknown): BackchannelError {
  return new BackchannelError('ERR_KEYS', `keys: ${message}`, cause === undefined ? undefined : { cause });
}

function fsReason(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'I/O error';
}

/**
 * Creates `dataDir` (mode 0700) when it is missing.
 * @throws {BackchannelError} ERR_KEYS when it cannot be created or is not a folder.
 */
export function ensureDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: DATA_DIR_MODE });
  } catch (e) {
    throw keysError(`cannot create the data folder (${fsReason(e)})`, e);
  }
  if (!statSync(dataDir).isDirectory()) throw keysError('the data folder is not a folder');
}

const HEX_DIGITS = '0123456789abcdef';

/** UTF-8 bytes of `parts`, byte arrays written as lower-case hex, without a string of the secret. */
function assemble(parts: readonly (string | Uint8Array)[]): Buffer {
  let n = 0;
  for (const p of parts) n += typeof p === 'string' ? Buffer.byteLength(p) : 2 * p.length;
  const out = Buffer.alloc(n);
  let off = 0;
  for (const p of parts) {
    if (typeof p === 'string') {
      off += out.write(p, off);
    } else {
      for (const b of p) {
        out[off++] = HEX_DIGITS.charCodeAt(b >> 4);
        out[off++] = HEX_DIGITS.charCodeAt(b & 15);
      }
    }
  }
  return out;
}

/** Writes `bytes` atomically (mode 0600), then wipes them. */
function writeSecretFile(path: string, file: string, bytes: Buffer, exclusive: boolean): boolean {
  try {
    return writeFileAtomic(path, bytes, { mode: KEY_FILE_MODE, exclusive });
  } catch (e) {
    throw keysError(`cannot write ${file} (${fsReason(e)})`, e);
  } finally {
    wipe(bytes);
  }
}

/** Reads a key-bearing file: its JSON (or undefined when missing) and whether its mode is too open. */
function readSecretFile(path: string, file: string): { json: unknown; insecurePermissions: boolean } | undefined {
  let bytes: Buffer;
  let mode: number;
  try {
    mode = statSync(path).mode;
    bytes = readFileSync(path);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return undefined;
    throw keysError(`cannot read ${file} (${fsReason(e)})`, e);
  }
  try {
    if (bytes.length > MAX_KEY_FILE_BYTES) throw keysError(`${file} is not a key file (larger than ${MAX_KEY_FILE_BYTES} bytes)`);
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw keysError(`${file} is corrupt (not JSON)`);
    }
    return { json, insecurePermissions: process.platform !== 'win32' && (mode & 0o077) !== 0 };
  } finally {
    wipe(bytes);
  }
}

/** Checks `{ ...fields }` has exactly `keys`; names the problem, never the content. */
function exactObject(file: string, what: string, value: unknown, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw keysError(`${file} is corrupt (${what} is not an object)`);
  const own = Object.keys(value);
  if (own.length !== keys.length || !keys.every((k) => Object.hasOwn(value, k))) {
    throw keysError(`${file} is corrupt (${what} must have exactly the fields ${keys.join(', ')})`);
  }
  return value as Record<string, unknown>;
}

function secretFrom(file: string, what: string, value: unknown): Uint8Array {
  if (typeof value !== 'string' || value.length !== 2 * SECRET_KEY_LENGTH) throw keysError(`${file} is corrupt (${what} is not ${2 * SECRET_KEY_LENGTH} hex digits)`);
  try {
    return fromHex(value);
  } catch {
    throw keysError(`${file} is corrupt (${what} is not ${2 * SECRET_KEY_LENGTH} hex digits)`);
  }
}

function parseKeyFile(file: string, json: unknown, type: KeyFileType): Uint8Array {
  const o = exactObject(file, 'the file', json, ['type', 'secret']);
  if (o['type'] !== type) throw keysError(`${file} is not an ${type} key file`);
  return secretFrom(file, 'secret', o['secret']);
}

/**
 * Loads the key in `<dataDir>/<file>`, or creates it from fresh randomness when the file is
 * missing. Creation never replaces a file another process wrote in the meantime: that one wins.
 */
function loadOrCreateSecret(dataDir: string, file: string, type: KeyFileType, options: KeyOptions): { secret: Uint8Array; created: boolean; insecurePermissions: boolean } {
  ensureDataDir(dataDir);
  const path = join(dataDir, file);
  for (let attempt = 0; attempt < 2; attempt++) {
    const existing = readSecretFile(path, file);
    if (existing !== undefined) return { secret: parseKeyFile(file, existing.json, type), created: false, insecurePermissions: existing.insecurePermissions };
    const secret = (options.randomBytes ?? nodeBackend.randomBytes)(SECRET_KEY_LENGTH);
    if (!(secret instanceof Uint8Array) || secret.length !== SECRET_KEY_LENGTH) throw new RangeError(`"randomBytes" expected to return ${SECRET_KEY_LENGTH} bytes`);
    if (writeSecretFile(path, file, assemble([`{"type":"${type}","secret":"`, secret, '"}\n']), true)) {
      return { secret, created: true, insecurePermissions: false };
    }
    wipe(secret);
  }
  throw keysError(`${file} changed while it was being created`);
}

/** RFC 8410: PKCS#8 DER of an Ed25519 private key is this prefix followed by the 32-byte seed. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** RFC 8410: SPKI DER of an Ed25519 public key is this 12-byte prefix followed by the 32-byte key. */
const ED25519_SPKI_PREFIX_LENGTH = 12;

/**
 * The Ed25519 public key of a 32-byte seed (RFC 8032 §5.1.5), through node:crypto.
 * @throws {TypeError|RangeError} when `seed` is not 32 bytes.
 */
export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.length !== SECRET_KEY_LENGTH) {
    throw new RangeError(`"seed" expected Uint8Array of length ${SECRET_KEY_LENGTH}`);
  }
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, seed]);
  try {
    const spki = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
    return new Uint8Array(spki.subarray(ED25519_SPKI_PREFIX_LENGTH));
  } finally {
    wipe(der);
  }
}

/**
 * The node's or authority's Ed25519 identity from `<dataDir>/identity.key`, created when missing.
 * @throws {BackchannelError} ERR_KEYS when the file is corrupt, of another type or unreadable.
 * @example const { seed, publicKey } = loadOrCreateIdentity(config.dataDir);
 */
export function loadOrCreateIdentity(dataDir: string, options: KeyOptions = {}): IdentityKeyPair {
  const { secret, created, insecurePermissions } = loadOrCreateSecret(dataDir, IDENTITY_KEY_FILE, 'ed25519-seed', options);
  return { seed: secret, publicKey: ed25519PublicKey(secret), created, insecurePermissions };
}

/**
 * The node's X25519 link (Noise static) key from `<dataDir>/link.key`, created when missing.
 * @throws {BackchannelError} ERR_KEYS when the file is corrupt, of another type or unreadable.
 */
export function loadOrCreateLinkKey(dataDir: string, options: KeyOptions = {}): LinkKeyPair {
  const { secret, created, insecurePermissions } = loadOrCreateSecret(dataDir, LINK_KEY_FILE, 'x25519-private', options);
  return { privateKey: secret, publicKey: nodeBackend.x25519Base(secret), created, insecurePermissions };
}

/**
 * A gateway's key that mints and checks invitation tokens, from `<dataDir>/admission-token.key`
 * (mode 0600), created when missing. The caller wipes it when done.
 * @throws {BackchannelError} ERR_KEYS when the file is corrupt, of another type or unreadable.
 */
export function loadOrCreateAdmissionTokenKey(dataDir: string, options: KeyOptions = {}): { key: Uint8Array; created: boolean; insecurePermissions: boolean } {
  const { secret, created, insecurePermissions } = loadOrCreateSecret(dataDir, ADMISSION_TOKEN_KEY_FILE, 'hmac-sha256', options);
  return { key: secret, created, insecurePermissions };
}

/** One epoch's Sphinx key pair. The arrays belong to the store: deleteBefore and close wipe them. */
export interface MixKeyPair {
  readonly epoch: number;
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

const MIX_KEYS_TYPE = 'x25519-mix-keys';

/**
 * Per-epoch X25519 mix keys in `<dataDir>/mixkeys.json`:
 * `{"type": "x25519-mix-keys", "keys": [{"epoch": n, "secret": hex}, ...]}`, rewritten atomically
 * on every change. The file and memory always agree: a change that cannot be written is not made.
 */
export class MixKeyStore {
  /** True when mixkeys.json was readable or writable by group or others when opened. */
  readonly insecurePermissions: boolean;
  readonly #path: string;
  readonly #random: (length: number) => Uint8Array;
  readonly #keys = new Map<number, MixKeyPair>();

  private constructor(path: string, random: (length: number) => Uint8Array, insecurePermissions: boolean) {
    this.#path = path;
    this.#random = random;
    this.insecurePermissions = insecurePermissions;
  }

  /**
   * Opens the store of `dataDir` (creating the folder, not the file, when missing).
   * @throws {BackchannelError} ERR_KEYS when mixkeys.json is corrupt or unreadable.
   * @example const store = MixKeyStore.open(config.dataDir); store.ensure([epoch, epoch + 1]);
   */
  static open(dataDir: string, options: KeyOptions = {}): MixKeyStore {
    ensureDataDir(dataDir);
    const path = join(dataDir, MIX_KEYS_FILE);
    const existing = readSecretFile(path, MIX_KEYS_FILE);
    const store = new MixKeyStore(path, options.randomBytes ?? nodeBackend.randomBytes, existing?.insecurePermissions ?? false);
    if (existing !== undefined) {
      try {
        store.#load(existing.json);
      } catch (e) {
        store.close();
        throw e;
      }
    }
    return store;
  }

  #load(json: unknown): void {
    const f = MIX_KEYS_FILE;
    const o = exactObject(f, 'the file', json, ['type', 'keys']);
    if (o['type'] !== MIX_KEYS_TYPE) throw keysError(`${f} is not an ${MIX_KEYS_TYPE} file`);
    const keys = o['keys'];
    if (!Array.isArray(keys) || keys.length > MAX_STORED_MIX_KEYS) throw keysError(`${f} is corrupt (keys is not an array of at most ${MAX_STORED_MIX_KEYS} entries)`);
    keys.forEach((entry: unknown, i) => {
      const e = exactObject(f, `keys[${i}]`, entry, ['epoch', 'secret']);
      const epoch = e['epoch'];
      if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) throw keysError(`${f} is corrupt (keys[${i}].epoch is not a whole number)`);
      if (this.#keys.has(epoch)) throw keysError(`${f} is corrupt (keys[${i}].epoch repeats an epoch)`);
      const privateKey = secretFrom(f, `keys[${i}].secret`, e['secret']);
      this.#keys.set(epoch, { epoch, privateKey, publicKey: nodeBackend.x25519Base(privateKey) });
    });
  }

  /** Rewrites the file with the keys of `epochs` (ascending). */
  #write(epochs: readonly number[]): void {
    const parts: (string | Uint8Array)[] = [`{"type":"${MIX_KEYS_TYPE}","keys":[`];
    epochs.forEach((epoch, i) => {
      parts.push(`${i === 0 ? '' : ','}\n{"epoch":${epoch},"secret":"`, this.#keys.get(epoch)!.privateKey, '"}');
    });
    parts.push(']}\n');
    writeSecretFile(this.#path, MIX_KEYS_FILE, assemble(parts), false);
  }

  /**
   * Creates and stores a key for each epoch in `epochs` that has none; returns the epochs created
   * (ascending).
   * @throws {RangeError} for an epoch that is not a non-negative safe integer.
   * @throws {BackchannelError} ERR_KEYS when the file cannot be written (nothing is created then),
   *   or when the store would hold more than MAX_STORED_MIX_KEYS keys.
   */
  ensure(epochs: readonly number[]): number[] {
    for (const e of epochs) aint('epoch', e, 0, Number.MAX_SAFE_INTEGER);
    const missing = [...new Set(epochs)].filter((e) => !this.#keys.has(e)).sort((a, b) => a - b);
    if (missing.length === 0) return [];
    if (this.#keys.size + missing.length > MAX_STORED_MIX_KEYS) throw keysError(`more than ${MAX_STORED_MIX_KEYS} mix keys stored; old ones must be deleted`);
    for (const epoch of missing) {
      const privateKey = this.#random(SECRET_KEY_LENGTH);
      if (!(privateKey instanceof Uint8Array) || privateKey.length !== SECRET_KEY_LENGTH) throw new RangeError(`"randomBytes" expected to return ${SECRET_KEY_LENGTH} bytes`);
      this.#keys.set(epoch, { epoch, privateKey, publicKey: nodeBackend.x25519Base(privateKey) });
    }
    try {
      this.#write(this.epochs());
    } catch (e) {
      for (const epoch of missing) {
        wipe(this.#keys.get(epoch)?.privateKey);
        this.#keys.delete(epoch);
      }
      throw e;
    }
    return missing;
  }

  /** The key pair of `epoch`, or undefined. */
  get(epoch: number): MixKeyPair | undefined {
    return this.#keys.get(epoch);
  }

  /**
   * The public keys of `epochs`, in the order given, as a descriptor lists them.
   * @throws {BackchannelError} ERR_KEYS when one of them has no key (call ensure first).
   */
  publicKeys(epochs: readonly number[]): MixKey[] {
    return epochs.map((epoch) => {
      const k = this.#keys.get(epoch);
      if (k === undefined) throw keysError(`no mix key for epoch ${epoch}`);
      return { epoch, publicKey: k.publicKey };
    });
  }

  /**
   * Deletes the keys of every epoch before `epoch`, from the file first and then from memory,
   * where they are wiped. Returns the epochs deleted (ascending).
   * @throws {BackchannelError} ERR_KEYS when the file cannot be written (nothing is deleted then).
   */
  deleteBefore(epoch: number): number[] {
    if (typeof epoch !== 'number' || Number.isNaN(epoch)) throw new TypeError('"epoch" expected a number');
    const old = this.epochs().filter((e) => e < epoch);
    if (old.length === 0) return [];
    this.#write(this.epochs().filter((e) => e >= epoch));
    for (const e of old) {
      wipe(this.#keys.get(e)?.privateKey);
      this.#keys.delete(e);
    }
    return old;
  }

  /** The epochs that have a key, ascending. */
  epochs(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  /** Wipes every key in memory (the file stays). The store is empty afterwards. */
  close(): void {
    for (const k of this.#keys.values()) wipe(k.privateKey);
    this.#keys.clear();
  }
}
