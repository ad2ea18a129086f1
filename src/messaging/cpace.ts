/**
 * CPace on ristretto255 with SHA-512 (draft-irtf-cfrg-cpace, cipher suite CPACE-RISTR255-SHA512),
 * in its initiator/responder form, plus the key confirmation the draft suggests (section "Key
 * confirmation"): each side sends MAC(mac_key, its own message), and a wrong password shows on
 * both sides before anything else is sent under the key.
 *
 * Names follow the draft: PRS (the password-related string), CI (channel identifier), sid, ADa/ADb,
 * Ya/Yb, MSGa/MSGb, K, ISK. The group comes from @noble/curves (ristretto255, RFC 9496), the
 * hash from @noble/hashes. Portable: no `node:` imports; randomness is passed in.
 */
import { ristretto255, ristretto255_hasher } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { BackchannelError } from '../errors.js';
import { abytes, concatBytes, equalBytes, wipe } from '../util/bytes.js';

const te = new TextEncoder();
const Point = ristretto255.Point;
/** A ristretto255 group element (internal representation). */
export interface RistrettoPoint {
  multiply(n: bigint): RistrettoPoint;
  toBytes(): Uint8Array;
  is0(): boolean;
}

/** G_Ristretto255.DSI (draft section "CPace group objects G_Ristretto255 and G_Decaf448"). */
export const CPACE_DSI = te.encode('CPaceRistretto255');
/** G.DSI || "_ISK", the domain of the ISK hash. */
const DSI_ISK = te.encode('CPaceRistretto255_ISK');
/** The key-confirmation key's prefix (draft section "Key confirmation": mac_key = H.hash("CPaceMac" || ISK)). */
const MAC_PREFIX = te.encode('CPaceMac');
/** H.s_in_bytes for SHA-512: the input block size that the generator string's padding fills. */
const SHA512_BLOCK = 128;
/** Encoded ristretto255 elements and scalars. */
export const CPACE_POINT_LENGTH = 32;
/** G_Ristretto255.group_size_bits: scalars are sampled with the bits above it cleared. */
const GROUP_SIZE_BITS = 252;
/** H.b_in_bytes for SHA-512: ISK and the confirmation tags. */
export const CPACE_ISK_LENGTH = 64;
export const CPACE_TAG_LENGTH = 64;
/** G.I: the encoding of the neutral element. */
const IDENTITY = new Uint8Array(CPACE_POINT_LENGTH);

function pakeError(message: string): BackchannelError {
  return new BackchannelError('ERR_INVITE_PAKE', `cpace: ${message}`);
}

/** prepend_len (draft appendix): the LEB128 length of `data`, then `data`. */
export function prependLen(data: Uint8Array): Uint8Array {
  abytes('data', data);
  const len: number[] = [];
  let n = data.length;
  for (;;) {
    if (n < 128) len.push(n);
    else len.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
    if (n === 0) break;
  }
  return concatBytes(Uint8Array.from(len), data);
}

/** lv_cat (draft appendix; prefix_free_cat in older drafts): every part with its length prepended. */
export function prefixFreeCat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(...parts.map(prependLen));
}

/**
 * Splits a prefix-free concatenation into exactly `count` parts.
 * @throws {BackchannelError} ERR_INVITE_PAKE when the lengths do not add up to the message's length.
 */
export function parsePrefixFree(msg: Uint8Array, count: number): Uint8Array[] {
  abytes('msg', msg);
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < msg.length && out.length < count) {
    let len = 0;
    let shift = 1;
    for (let i = 0; ; i++) {
      if (off >= msg.length || i > 3) throw pakeError('a message with a bad length field');
      const b = msg[off++]!;
      len += (b & 0x7f) * shift;
      shift *= 128;
      if ((b & 0x80) === 0) break;
    }
    if (off + len > msg.length) throw pakeError('a message shorter than its length fields');
    out.push(msg.subarray(off, off + len));
    off += len;
  }
  if (out.length !== count || off !== msg.length) throw pakeError('a message whose length fields do not match its length');
  return out;
}

/** generator_string (draft section "Common function for computing generators"). */
export function generatorString(dsi: Uint8Array, prs: Uint8Array, ci: Uint8Array, sid: Uint8Array, sInBytes = SHA512_BLOCK): Uint8Array {
  const zpad = Math.max(0, sInBytes - 1 - prependLen(prs).length - prependLen(dsi).length);
  return prefixFreeCat(dsi, prs, new Uint8Array(zpad), ci, sid);
}

/** G.calculate_generator: one_way_map(SHA-512(generator_string)) (RFC 9496 element derivation). */
export function calculateGenerator(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): RistrettoPoint {
  const gen = generatorString(CPACE_DSI, prs, ci, sid);
  const h = sha512(gen);
  try {
    return ristretto255_hasher.deriveToCurve!(h);
  } finally {
    wipe(gen, h);
  }
}

function scalarFromBytes(y: Uint8Array): bigint {
  let n = 0n;
  for (let i = y.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(y[i]!);
  return n;
}

/**
 * G.sample_scalar (the draft's recommendation): 32 random bytes with the bits above
 * group_size_bits cleared, read little-endian. Zero (probability 2^-252) is drawn again.
 */
export function sampleScalar(randomBytes: (n: number) => Uint8Array): Uint8Array {
  for (;;) {
    const y = randomBytes(CPACE_POINT_LENGTH);
    abytes('random bytes', y, CPACE_POINT_LENGTH);
    y[31]! &= (1 << (GROUP_SIZE_BITS - 248)) - 1;
    let acc = 0;
    for (const b of y) acc |= b;
    if (acc !== 0) return y;
  }
}

/** G.scalar_mult(y, g): encode(g^y). */
export function scalarMult(y: Uint8Array, g: RistrettoPoint): Uint8Array {
  abytes('y', y, CPACE_POINT_LENGTH);
  const s = scalarFromBytes(y) % Point.Fn.ORDER;
  if (s === 0n) return IDENTITY.slice();
  return g.multiply(s).toBytes();
}

/** G.scalar_mult_vfy(y, X): encode(decode(X)^y), or G.I when X does not decode. */
export function scalarMultVfy(y: Uint8Array, x: Uint8Array): Uint8Array {
  abytes('X', x, CPACE_POINT_LENGTH);
  let p: RistrettoPoint;
  try {
    p = Point.fromBytes(x);
  } catch {
    return IDENTITY.slice();
  }
  if (p.is0()) return IDENTITY.slice();
  return scalarMult(y, p);
}

/** What both sides share before the run: the password-related string, the channel identifier, the session id. */
export interface CpaceInputs {
  readonly prs: Uint8Array;
  readonly ci: Uint8Array;
  readonly sid: Uint8Array;
}

/** One side's state after its first step: its secret scalar and the message it sent. */
export interface CpaceShare {
  /** y: the secret scalar; wipe it once the run ends. */
  readonly y: Uint8Array;
  /** MSG = lv_cat(Y, AD): what the side sends. */
  readonly msg: Uint8Array;
}

/**
 * A side's first step: g = calculate_generator(PRS, CI, sid), Y = g^y, MSG = lv_cat(Y, AD).
 * `y` may be given (test vectors); otherwise it is sampled from `randomBytes`.
 */
export function cpaceShare(inputs: CpaceInputs, ad: Uint8Array, randomBytes: (n: number) => Uint8Array, y?: Uint8Array): CpaceShare {
  abytes('PRS', inputs.prs);
  abytes('CI', inputs.ci);
  abytes('sid', inputs.sid);
  abytes('AD', ad);
  const scalar = y === undefined ? sampleScalar(randomBytes) : y.slice();
  const g = calculateGenerator(inputs.prs, inputs.ci, inputs.sid);
  const Y = scalarMult(scalar, g);
  return { y: scalar, msg: prefixFreeCat(Y, ad) };
}

/** Y and AD of a received message. @throws {BackchannelError} ERR_INVITE_PAKE when it does not parse. */
export function parseShare(msg: Uint8Array): { readonly Y: Uint8Array; readonly ad: Uint8Array } {
  const [Y, ad] = parsePrefixFree(msg, 2) as [Uint8Array, Uint8Array];
  if (Y.length !== CPACE_POINT_LENGTH) throw pakeError('a share of the wrong length');
  return { Y, ad };
}

/**
 * ISK = H.hash(lv_cat(DSI || "_ISK", sid, K) || transcript_ir(Ya, ADa, Yb, ADb)) with
 * transcript_ir = MSGa || MSGb, the initiator/responder
 * transcript (MSGa is the initiator's). `own` is this side's share; `role` says which it is.
 * @throws {BackchannelError} ERR_INVITE_PAKE for a message that does not parse or a K that is the
 *   neutral element (an invalid or identity point from the peer).
 */
export function cpaceIsk(inputs: CpaceInputs, own: CpaceShare, theirMsg: Uint8Array, role: 'initiator' | 'responder'): Uint8Array {
  const { Y } = parseShare(theirMsg);
  const K = scalarMultVfy(own.y, Y);
  try {
    if (equalBytes(K, IDENTITY)) throw pakeError('the peer sent an invalid point');
    const [msgA, msgB] = role === 'initiator' ? [own.msg, theirMsg] : [theirMsg, own.msg];
    const input = concatBytes(prefixFreeCat(DSI_ISK, inputs.sid, K), msgA, msgB);
    try {
      return sha512(input);
    } finally {
      wipe(input);
    }
  } finally {
    wipe(K);
  }
}

/** Key confirmation: T = HMAC-SHA512(mac_key, MSG) with mac_key = SHA-512("CPaceMac" || ISK). */
export function confirmationTag(isk: Uint8Array, msg: Uint8Array): Uint8Array {
  abytes('ISK', isk, CPACE_ISK_LENGTH);
  const macKey = sha512(concatBytes(MAC_PREFIX, isk));
  try {
    return hmac(sha512, macKey, msg);
  } finally {
    wipe(macKey);
  }
}

/** Checks the peer's tag over its own message in constant time. */
export function verifyConfirmation(isk: Uint8Array, theirMsg: Uint8Array, tag: Uint8Array): boolean {
  const want = confirmationTag(isk, theirMsg);
  try {
    return tag.length === CPACE_TAG_LENGTH && equalBytes(want, tag);
  } finally {
    wipe(want);
  }
}
