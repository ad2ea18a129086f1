/**
 * The Noise Protocol Framework's three state objects (revision 34, section 5): CipherState,
 * SymmetricState and HandshakeState, over any pattern of ./patterns.ts and any suite that a
 * NoiseCrypto serves.
 */
import { BackchannelError } from '../errors.js';
import { abytes, wipe } from '../util/bytes.js';
import type { NoiseAead, NoiseCrypto, NoiseHash } from './crypto.js';
import { KEY_LENGTH, NONCE_LENGTH, TAG_LENGTH } from './crypto.js';
import type { ProtocolName, Token } from './patterns.js';
import { parseProtocolName } from './patterns.js';

/** The largest Noise message, handshake or transport (section 3). */
export const MAX_MESSAGE_LENGTH = 65535;
const DH_LENGTH = 32;
const EMPTY = new Uint8Array(0);

function err(code: 'ERR_NOISE_STATE' | 'ERR_NOISE_KEY' | 'ERR_NOISE_DECRYPT' | 'ERR_NOISE_LENGTH' | 'ERR_NOISE_NONCE', message: string): BackchannelError {
  return new BackchannelError(code, `noise: ${message}`);
}

/**
 * A key and a 64-bit nonce counter (section 5.1). The counter is kept as two 32-bit halves so that
 * every value up to 2^64 - 2 is exact; 2^64 - 1 is reserved for rekeying.
 */
export class CipherState {
  readonly #aead: NoiseAead;
  #k: Uint8Array | null = null;
  #hi = 0;
  #lo = 0;
  readonly #nonce = new Uint8Array(NONCE_LENGTH);

  constructor(aead: NoiseAead, key?: Uint8Array) {
    this.#aead = aead;
    if (key) this.initializeKey(key);
  }

  /** Sets a new key (the state takes a copy) and resets the nonce. */
  initializeKey(key: Uint8Array): void {
    abytes('key', key, KEY_LENGTH);
    if (this.#k) wipe(this.#k);
    this.#k = Uint8Array.from(key);
    this.#hi = 0;
    this.#lo = 0;
  }

  hasKey(): boolean {
    return this.#k !== null;
  }

  /** The next nonce as a number (exact below 2^53; for tests and diagnostics). */
  get nonce(): number {
    return this.#hi * 2 ** 32 + this.#lo;
  }

  #prepareNonce(): void {
    if (this.#hi === 0xffffffff && this.#lo === 0xffffffff) throw err('ERR_NOISE_NONCE', 'nonce space exhausted; rekey or start a new session');
    this.#aead.setNonce(this.#nonce, this.#hi, this.#lo);
  }

  #advance(): void {
    this.#lo = (this.#lo + 1) >>> 0;
    if (this.#lo === 0) this.#hi = (this.#hi + 1) >>> 0;
  }

  /**
   * Encrypts `plaintext` into `out` (which needs `plaintext.length + 16` bytes) and returns the
   * number of bytes written. Without a key the plaintext is copied unchanged, as the
   * specification says.
   */
  encryptInto(out: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): number {
    if (this.#k === null) {
      out.set(plaintext, 0);
      return plaintext.length;
    }
    if (plaintext.length + TAG_LENGTH > MAX_MESSAGE_LENGTH) throw err('ERR_NOISE_LENGTH', `plaintext of ${plaintext.length} bytes exceeds the Noise message limit`);
    this.#prepareNonce();
    this.#aead.encryptInto(out, this.#k, this.#nonce, ad, plaintext);
    this.#advance();
    return plaintext.length + TAG_LENGTH;
  }

  /**
   * Decrypts `ciphertext` into `out` and returns the plaintext length.
   * @throws {BackchannelError} ERR_NOISE_DECRYPT when the tag does not verify (the nonce is then
   *   not advanced), ERR_NOISE_LENGTH when the ciphertext is shorter than a tag or too long.
   */
  decryptInto(out: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): number {
    if (this.#k === null) {
      out.set(ciphertext, 0);
      return ciphertext.length;
    }
    if (ciphertext.length < TAG_LENGTH) throw err('ERR_NOISE_LENGTH', 'ciphertext shorter than its tag');
    if (ciphertext.length > MAX_MESSAGE_LENGTH) throw err('ERR_NOISE_LENGTH', 'ciphertext exceeds the Noise message limit');
    this.#prepareNonce();
    if (!this.#aead.decryptInto(out, this.#k, this.#nonce, ad, ciphertext)) throw err('ERR_NOISE_DECRYPT', 'message failed authentication');
    this.#advance();
    return ciphertext.length - TAG_LENGTH;
  }

  encrypt(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    abytes('ad', ad);
    abytes('plaintext', plaintext);
    const out = new Uint8Array(plaintext.length + (this.#k ? TAG_LENGTH : 0));
    this.encryptInto(out, ad, plaintext);
    return out;
  }

  decrypt(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    abytes('ad', ad);
    abytes('ciphertext', ciphertext);
    const out = new Uint8Array(Math.max(0, ciphertext.length - (this.#k ? TAG_LENGTH : 0)));
    this.decryptInto(out, ad, ciphertext);
    return out;
  }

  /** Rekey (section 4.2): the new key is the first 32 bytes of ENCRYPT(k, 2^64 - 1, "", zeros). */
  rekey(): void {
    if (this.#k === null) throw err('ERR_NOISE_STATE', 'rekey without a key');
    const n = new Uint8Array(NONCE_LENGTH);
    this.#aead.setNonce(n, 0xffffffff, 0xffffffff);
    const zeros = new Uint8Array(KEY_LENGTH);
    const out = new Uint8Array(KEY_LENGTH + TAG_LENGTH);
    this.#aead.encryptInto(out, this.#k, n, EMPTY, zeros);
    this.#k.set(out.subarray(0, KEY_LENGTH));
    wipe(out);
  }

  /** Wipes the key; the state can no longer encrypt. */
  destroy(): void {
    if (this.#k) wipe(this.#k);
    this.#k = null;
  }
}

/** HMAC (RFC 2104) over a Noise hash; keys here are never longer than a block. */
function hmac(hash: NoiseHash, key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const ipad = new Uint8Array(hash.blockLen).fill(0x36);
  const opad = new Uint8Array(hash.blockLen).fill(0x5c);
  for (let i = 0; i < key.length; i++) {
    ipad[i]! ^= key[i]!;
    opad[i]! ^= key[i]!;
  }
  const inner = hash.digest(ipad, ...data);
  const out = hash.digest(opad, inner);
  wipe(ipad, opad, inner);
  return out;
}

/** HKDF as Noise defines it (section 4.3): two or three outputs of HASHLEN bytes. */
function hkdf(hash: NoiseHash, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const temp = hmac(hash, chainingKey, ikm);
  const o1 = hmac(hash, temp, Uint8Array.of(1));
  const o2 = hmac(hash, temp, o1, Uint8Array.of(2));
  const result = [o1, o2];
  if (outputs === 3) result.push(hmac(hash, temp, o2, Uint8Array.of(3)));
  wipe(temp);
  return result;
}

/** The chaining key, the handshake hash and the handshake's CipherState (section 5.2). */
class SymmetricState {
  readonly hash: NoiseHash;
  readonly aead: NoiseAead;
  readonly cipher: CipherState;
  ck: Uint8Array;
  h: Uint8Array;

  constructor(protocolName: string, hash: NoiseHash, aead: NoiseAead) {
    this.hash = hash;
    this.aead = aead;
    this.cipher = new CipherState(aead);
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= hash.hashLen) {
      this.h = new Uint8Array(hash.hashLen);
      this.h.set(name);
    } else {
      this.h = hash.digest(name);
    }
    this.ck = Uint8Array.from(this.h);
  }

  mixHash(data: Uint8Array): void {
    this.h = this.hash.digest(this.h, data);
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.hash, this.ck, ikm, 2) as [Uint8Array, Uint8Array];
    wipe(this.ck);
    this.ck = ck;
    this.cipher.initializeKey(k.subarray(0, KEY_LENGTH));
    wipe(k);
  }

  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, h, k] = hkdf(this.hash, this.ck, ikm, 3) as [Uint8Array, Uint8Array, Uint8Array];
    wipe(this.ck);
    this.ck = ck;
    this.mixHash(h);
    this.cipher.initializeKey(k.subarray(0, KEY_LENGTH));
    wipe(h, k);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const c = this.cipher.encrypt(this.h, plaintext);
    this.mixHash(c);
    return c;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const p = this.cipher.decrypt(this.h, ciphertext);
    this.mixHash(ciphertext);
    return p;
  }

  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.hash, this.ck, EMPTY, 2) as [Uint8Array, Uint8Array];
    const c1 = new CipherState(this.aead, k1.subarray(0, KEY_LENGTH));
    const c2 = new CipherState(this.aead, k2.subarray(0, KEY_LENGTH));
    wipe(k1, k2);
    return [c1, c2];
  }

  destroy(): void {
    wipe(this.ck);
    this.cipher.destroy();
  }
}

export interface HandshakeOptions {
  /** `Noise_<pattern>_25519_<ChaChaPoly|AESGCM>_<SHA256|SHA512|BLAKE2s|BLAKE2b>`. */
  protocolName: string;
  initiator: boolean;
  prologue?: Uint8Array;
  /** This side's static private key, when the pattern uses one. */
  s?: Uint8Array;
  /** A fixed ephemeral private key (vector replay only); generated from the CSPRNG otherwise. */
  e?: Uint8Array;
  /** The peer's static public key, when the pattern has it as a pre-message. */
  rs?: Uint8Array;
  /** Pre-shared keys (32 bytes each), in the order the pattern's psk tokens use them. */
  psks?: readonly Uint8Array[];
}

/** A Noise handshake in progress; see createHandshake in ./index.ts. */
export interface Handshake {
  /** The protocol this handshake runs. */
  readonly protocol: ProtocolName;
  readonly initiator: boolean;
  /** True once every handshake message has been written or read. */
  readonly finished: boolean;
  /** True when the next handshake message is this side's to write. */
  readonly isMyTurn: boolean;
  /** The handshake hash h (a copy); after the last message it is the channel binding. */
  readonly handshakeHash: Uint8Array;
  /** The peer's static public key, once known (a copy), else null. */
  readonly remoteStatic: Uint8Array | null;
  writeMessage(payload?: Uint8Array): Uint8Array;
  readMessage(message: Uint8Array): Uint8Array;
  /** The transport cipher states, initiator-to-responder first. Once only, after `finished`. */
  split(): [CipherState, CipherState];
  /** Wipes every secret the handshake still holds. */
  destroy(): void;
}

class HandshakeState implements Handshake {
  readonly protocol: ProtocolName;
  readonly initiator: boolean;
  readonly #dh: NoiseCrypto['dh'];
  readonly #ss: SymmetricState;
  readonly #psk: boolean;
  readonly #psks: Uint8Array[];
  #s: { priv: Uint8Array; pub: Uint8Array } | null = null;
  #e: { priv: Uint8Array; pub: Uint8Array } | null = null;
  #fixedE: Uint8Array | null = null;
  #rs: Uint8Array | null = null;
  #re: Uint8Array | null = null;
  #index = 0;
  #failed = false;
  #split = false;

  constructor(crypto: NoiseCrypto, opts: HandshakeOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('noise: options must be an object');
    const protocol = parseProtocolName(opts.protocolName);
    this.protocol = protocol;
    this.initiator = Boolean(opts.initiator);
    this.#dh = crypto.dh;
    this.#ss = new SymmetricState(protocol.full, crypto.hash(protocol.hash), crypto.aead(protocol.cipher));
    this.#psk = protocol.pskCount > 0;
    const psks = opts.psks ?? [];
    if (psks.length !== protocol.pskCount) throw err('ERR_NOISE_KEY', `pattern ${protocol.pattern.name} needs ${protocol.pskCount} pre-shared key(s), got ${psks.length}`);
    this.#psks = psks.map((k, i) => {
      if (!(k instanceof Uint8Array) || k.length !== KEY_LENGTH) throw err('ERR_NOISE_KEY', `pre-shared key ${i} must be 32 bytes`);
      return Uint8Array.from(k);
    });

    const { pattern } = protocol;
    const mine = (i: number): boolean => (i % 2 === 0) === this.initiator;
    const myPre = this.initiator ? pattern.initiatorPreMessage : pattern.responderPreMessage;
    const peerPre = this.initiator ? pattern.responderPreMessage : pattern.initiatorPreMessage;
    const usesMyStatic = myPre.includes('s') || pattern.messages.some((m, i) => mine(i) && m.includes('s'))
      || pattern.messages.some((m) => m.includes('ss') || m.includes(this.initiator ? 'se' : 'es'));
    const peerSendsStatic = pattern.messages.some((m, i) => !mine(i) && m.includes('s'));

    if (usesMyStatic) {
      if (opts.s === undefined) throw err('ERR_NOISE_KEY', `pattern ${pattern.name} needs this side's static key`);
      this.#s = this.#keyPair(opts.s, 's');
    }
    if (opts.e !== undefined) {
      if (!(opts.e instanceof Uint8Array) || opts.e.length !== DH_LENGTH) throw err('ERR_NOISE_KEY', 'e must be a 32-byte private key');
      this.#fixedE = Uint8Array.from(opts.e);
    }
    if (peerPre.includes('s')) {
      if (!(opts.rs instanceof Uint8Array) || opts.rs.length !== DH_LENGTH) throw err('ERR_NOISE_KEY', `pattern ${pattern.name} needs the peer's 32-byte static public key (rs)`);
      this.#rs = Uint8Array.from(opts.rs);
    } else if (opts.rs !== undefined && peerSendsStatic) {
      throw err('ERR_NOISE_KEY', `pattern ${pattern.name} learns the peer's static key in the handshake; rs must not be given`);
    }

    const prologue = opts.prologue ?? EMPTY;
    abytes('prologue', prologue);
    this.#ss.mixHash(prologue);
    for (const t of pattern.initiatorPreMessage) this.#mixPreMessage(t, this.initiator);
    for (const t of pattern.responderPreMessage) this.#mixPreMessage(t, !this.initiator);
  }

  #keyPair(priv: Uint8Array, name: string): { priv: Uint8Array; pub: Uint8Array } {
    if (!(priv instanceof Uint8Array) || priv.length !== DH_LENGTH) throw err('ERR_NOISE_KEY', `${name} must be a 32-byte private key`);
    const copy = Uint8Array.from(priv);
    return { priv: copy, pub: this.#dh.x25519Base(copy) };
  }

  #mixPreMessage(token: Token, local: boolean): void {
    // The specification's patterns only ever pre-share static keys.
    if (token !== 's') throw err('ERR_NOISE_STATE', `unsupported pre-message token ${token}`);
    this.#ss.mixHash(local ? this.#s!.pub : this.#rs!);
  }

  get finished(): boolean {
    return this.#index >= this.protocol.pattern.messages.length;
  }

  get isMyTurn(): boolean {
    return !this.finished && (this.#index % 2 === 0) === this.initiator;
  }

  get handshakeHash(): Uint8Array {
    return Uint8Array.from(this.#ss.h);
  }

  get remoteStatic(): Uint8Array | null {
    return this.#rs ? Uint8Array.from(this.#rs) : null;
  }

  #checkTurn(writing: boolean): readonly Token[] {
    if (this.#failed) throw err('ERR_NOISE_STATE', 'handshake already failed');
    if (this.finished) throw err('ERR_NOISE_STATE', 'handshake already finished');
    if (this.isMyTurn !== writing) throw err('ERR_NOISE_STATE', writing ? 'not our turn to write' : 'not our turn to read');
    return this.protocol.pattern.messages[this.#index]!;
  }

  #dhToken(token: 'ee' | 'es' | 'se' | 'ss'): void {
    const need = (k: Uint8Array | null | undefined, what: string): Uint8Array => {
      if (!k) throw err('ERR_NOISE_KEY', `token ${token} needs ${what}`);
      return k;
    };
    let priv: Uint8Array;
    let pub: Uint8Array;
    const i = this.initiator;
    switch (token) {
      case 'ee': priv = need(this.#e?.priv, 'e'); pub = need(this.#re, 're'); break;
      case 'ss': priv = need(this.#s?.priv, 's'); pub = need(this.#rs, 'rs'); break;
      case 'es': priv = need(i ? this.#e?.priv : this.#s?.priv, i ? 'e' : 's'); pub = need(i ? this.#rs : this.#re, i ? 'rs' : 're'); break;
      case 'se': priv = need(i ? this.#s?.priv : this.#e?.priv, i ? 's' : 'e'); pub = need(i ? this.#re : this.#rs, i ? 're' : 'rs'); break;
    }
    const shared = this.#dh.x25519(priv, pub);
    this.#ss.mixKey(shared);
    wipe(shared);
  }

  /** The length of the message this side writes next for a payload of `payloadLength` bytes. */
  #messageLength(tokens: readonly Token[], payloadLength: number): number {
    let hasKey = this.#ss.cipher.hasKey();
    let n = 0;
    for (const t of tokens) {
      if (t === 'e') {
        n += DH_LENGTH;
        if (this.#psk) hasKey = true;
      } else if (t === 's') n += DH_LENGTH + (hasKey ? TAG_LENGTH : 0);
      else hasKey = true;
    }
    return n + payloadLength + (hasKey ? TAG_LENGTH : 0);
  }

  writeMessage(payload: Uint8Array = EMPTY): Uint8Array {
    abytes('payload', payload);
    const tokens = this.#checkTurn(true);
    const length = this.#messageLength(tokens, payload.length);
    if (length > MAX_MESSAGE_LENGTH) throw err('ERR_NOISE_LENGTH', `handshake message of ${length} bytes exceeds the Noise message limit`);
    const out = new Uint8Array(length);
    let off = 0;
    try {
      for (const t of tokens) {
        if (t === 'e') {
          if (this.#e) throw err('ERR_NOISE_STATE', 'ephemeral key sent twice');
          const priv = this.#fixedE ?? this.#dh.randomBytes(DH_LENGTH);
          this.#e = this.#keyPair(priv, 'e');
          wipe(priv);
          out.set(this.#e.pub, off);
          off += DH_LENGTH;
          this.#ss.mixHash(this.#e.pub);
          if (this.#psk) this.#ss.mixKey(this.#e.pub);
        } else if (t === 's') {
          const c = this.#ss.encryptAndHash(this.#s!.pub);
          out.set(c, off);
          off += c.length;
        } else if (t === 'psk') {
          this.#ss.mixKeyAndHash(this.#psks.shift()!);
        } else {
          this.#dhToken(t);
        }
      }
      const c = this.#ss.encryptAndHash(payload);
      out.set(c, off);
    } catch (e) {
      this.#failed = true;
      throw e;
    }
    this.#index++;
    return out;
  }

  readMessage(message: Uint8Array): Uint8Array {
    abytes('message', message);
    const tokens = this.#checkTurn(false);
    if (message.length > MAX_MESSAGE_LENGTH) {
      this.#failed = true;
      throw err('ERR_NOISE_LENGTH', 'handshake message exceeds the Noise message limit');
    }
    let off = 0;
    const take = (n: number): Uint8Array => {
      if (off + n > message.length) throw err('ERR_NOISE_LENGTH', 'handshake message too short');
      const part = message.subarray(off, off + n);
      off += n;
      return part;
    };
    let payload: Uint8Array;
    try {
      for (const t of tokens) {
        if (t === 'e') {
          if (this.#re) throw err('ERR_NOISE_STATE', 'ephemeral key received twice');
          this.#re = Uint8Array.from(take(DH_LENGTH));
          this.#ss.mixHash(this.#re);
          if (this.#psk) this.#ss.mixKey(this.#re);
        } else if (t === 's') {
          if (this.#rs) throw err('ERR_NOISE_STATE', 'static key received twice');
          const c = take(DH_LENGTH + (this.#ss.cipher.hasKey() ? TAG_LENGTH : 0));
          this.#rs = this.#ss.decryptAndHash(c);
        } else if (t === 'psk') {
          this.#ss.mixKeyAndHash(this.#psks.shift()!);
        } else {
          this.#dhToken(t);
        }
      }
      payload = this.#ss.decryptAndHash(message.subarray(off));
    } catch (e) {
      this.#failed = true;
      throw e;
    }
    this.#index++;
    return payload;
  }

  split(): [CipherState, CipherState] {
    if (this.#failed) throw err('ERR_NOISE_STATE', 'handshake failed');
    if (!this.finished) throw err('ERR_NOISE_STATE', 'split before the handshake finished');
    if (this.#split) throw err('ERR_NOISE_STATE', 'split called twice');
    this.#split = true;
    const pair = this.#ss.split();
    this.#wipeKeys();
    return pair;
  }

  #wipeKeys(): void {
    if (this.#s) wipe(this.#s.priv);
    if (this.#e) wipe(this.#e.priv);
    if (this.#fixedE) wipe(this.#fixedE);
    for (const k of this.#psks) wipe(k);
    this.#ss.destroy();
  }

  destroy(): void {
    this.#failed = true;
    this.#wipeKeys();
  }
}

/** A handshake over the given primitives. */
export function createHandshakeWith(crypto: NoiseCrypto, opts: HandshakeOptions): Handshake {
  return new HandshakeState(crypto, opts);
}
