/**
 * A client's admission to its gateway, carried in the payload of the third Noise handshake
 * message (link.ts, HANDSHAKE_PAYLOAD_LENGTH bytes, encrypted and bound to the client's static
 * key): nothing, a proof of work, or an invitation token the gateway's operator issued. The
 * gateway's side is src/server/admission.ts. Portable: no `node:` imports.
 *
 * Layout: kind (1 byte: 0 none, 1 work, 2 token) ‖ body (32 bytes). Work: nonce (16) ‖ zeros (16).
 * Token: id (16) ‖ tag (16), tag = HMAC-SHA256(operator key, TOKEN_DOMAIN ‖ id)[0..16].
 *
 * The proof of work is hashcash over SHA-256: digest = SHA-256(gateway identity key (32) ‖ client
 * link key (32) ‖ nonce (16) ‖ WORK_DOMAIN), and it counts when the digest starts with `bits` zero
 * bits. (The two keys fill the first block, so that a solver compresses only the second per
 * attempt: _work-sha256.ts.) Bound to the client's link key, a proof admits that key
 * only; bound to the gateway's identity, nothing can be computed for a gateway before it exists,
 * nor reused at another one. It is not bound to the epoch, so that an honest client pays once per
 * gateway, not every 20 minutes (docs/network.md, "Admission", says what that costs whom).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { abytes, aint, equalBytes } from '../util/bytes.js';
import { TwoBlockSha256 } from './_work-sha256.js';

/** The payload length: what link.ts carries in every handshake (HANDSHAKE_PAYLOAD_LENGTH there). */
export const ADMISSION_LENGTH = 33;
export const WORK_NONCE_LENGTH = 16;
export const TOKEN_ID_LENGTH = 16;
export const TOKEN_TAG_LENGTH = 16;
export const TOKEN_LENGTH = TOKEN_ID_LENGTH + TOKEN_TAG_LENGTH;

/**
 * The default cost of admission: 2^20 SHA-256 evaluations expected (a few seconds on one core of
 * the development machine, `npm run bench -- admission`, and about 5× that on a phone); what it
 * costs an attacker per 1,000 identities is in docs/network.md, "Admission".
 */
export const ADMISSION_WORK_BITS = 20;
/** The most work a gateway may ask (bits): 2^40 evaluations would take a phone weeks. */
export const MAX_ADMISSION_WORK_BITS = 40;

const WORK_DOMAIN = new TextEncoder().encode('backchannel admission work v1');
const TOKEN_DOMAIN = new TextEncoder().encode('backchannel admission token v1');

export type Admission =
  | { readonly kind: 'none' }
  | { readonly kind: 'work'; readonly nonce: Uint8Array }
  | { readonly kind: 'token'; readonly token: Uint8Array };

const KIND = { none: 0, work: 1, token: 2 } as const;

/** What the admission code needs of the crypto backend. */
export interface AdmissionCrypto {
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
}

/**
 * Encodes an admission for the handshake payload.
 * @throws {RangeError} for a nonce or token of the wrong length.
 */
export function encodeAdmission(a: Admission): Uint8Array {
  const out = new Uint8Array(ADMISSION_LENGTH);
  out[0] = KIND[a.kind];
  if (a.kind === 'work') {
    abytes('nonce', a.nonce, WORK_NONCE_LENGTH);
    out.set(a.nonce, 1);
  } else if (a.kind === 'token') {
    abytes('token', a.token, TOKEN_LENGTH);
    out.set(a.token, 1);
  }
  return out;
}

/** Decodes a handshake payload; anything that is not a well-formed admission is `none` (an older peer sends no payload). */
export function decodeAdmission(payload: Uint8Array): Admission {
  if (!(payload instanceof Uint8Array) || payload.length !== ADMISSION_LENGTH) return { kind: 'none' };
  switch (payload[0]) {
    case KIND.work:
      for (let i = 1 + WORK_NONCE_LENGTH; i < ADMISSION_LENGTH; i++) if (payload[i] !== 0) return { kind: 'none' };
      return { kind: 'work', nonce: payload.slice(1, 1 + WORK_NONCE_LENGTH) };
    case KIND.token:
      return { kind: 'token', token: payload.slice(1, 1 + TOKEN_LENGTH) };
    default:
      return { kind: 'none' };
  }
}

/** Leading zero bits of a digest. */
export function leadingZeroBits(digest: Uint8Array): number {
  let bits = 0;
  for (const b of digest) {
    if (b === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(b) - 24;
  }
  return bits;
}

/**
 * The bits of work a nonce proves for this client key at this gateway.
 * @throws {RangeError} for keys or a nonce of the wrong length.
 */
export function workBits(gatewayIdentity: Uint8Array, clientKey: Uint8Array, nonce: Uint8Array): number {
  abytes('gatewayIdentity', gatewayIdentity, 32);
  abytes('clientKey', clientKey, 32);
  abytes('nonce', nonce, WORK_NONCE_LENGTH);
  const m = new Uint8Array(64 + WORK_NONCE_LENGTH + WORK_DOMAIN.length);
  m.set(gatewayIdentity, 0);
  m.set(clientKey, 32);
  m.set(nonce, 64);
  m.set(WORK_DOMAIN, 64 + WORK_NONCE_LENGTH);
  return leadingZeroBits(sha256(m));
}

export interface SolveOptions {
  /** Evaluations between two yields to the caller's event loop (and progress reports). Default 65536. */
  readonly chunk?: number;
  /** Gives the event loop a turn between chunks (e.g. a zero timer); none by default (runs through). */
  readonly yieldNow?: () => Promise<void>;
  /** Told after each chunk: evaluations so far, and how many are expected in all (2^bits). */
  readonly onProgress?: (tried: number, expected: number) => void;
  /** Stops the search when it returns true (the client stops); the solve then resolves null. */
  readonly cancelled?: () => boolean;
}

/**
 * Finds a nonce proving `bits` of work for this client key at this gateway: 2^bits evaluations
 * expected (geometric: one in 20 solves takes three times as long).
 * @throws {RangeError} for keys of the wrong length or bits out of range.
 */
export async function solveWork(gatewayIdentity: Uint8Array, clientKey: Uint8Array, bits: number, options: SolveOptions = {}): Promise<Uint8Array | null> {
  abytes('gatewayIdentity', gatewayIdentity, 32);
  abytes('clientKey', clientKey, 32);
  aint('bits', bits, 0, MAX_ADMISSION_WORK_BITS);
  const chunk = options.chunk ?? 65536;
  aint('chunk', chunk, 1, 2 ** 30);
  const first = new Uint8Array(64);
  first.set(gatewayIdentity, 0);
  first.set(clientKey, 32);
  const rest = new Uint8Array(WORK_NONCE_LENGTH + WORK_DOMAIN.length);
  rest.set(WORK_DOMAIN, WORK_NONCE_LENGTH);
  const h = new TwoBlockSha256(first, rest);
  const expected = 2 ** bits;
  // The counter fills the nonce's last 6 bytes (2^48 evaluations: far past the largest cost).
  const at = WORK_NONCE_LENGTH - 6;
  for (let tried = 0; tried < 2 ** 48; ) {
    const end = tried + chunk;
    for (; tried < end; tried++) {
      h.set(at, tried);
      if (h.leadingZeros() >= bits) {
        const nonce = new Uint8Array(WORK_NONCE_LENGTH);
        for (let i = 0, n = tried; i < 6; i++, n = Math.floor(n / 256)) nonce[WORK_NONCE_LENGTH - 1 - i] = n & 0xff;
        return nonce;
      }
    }
    options.onProgress?.(tried, expected);
    if (options.cancelled?.() === true) return null;
    if (options.yieldNow) await options.yieldNow();
  }
  return null;
}

/**
 * Mints an invitation token: a 16-byte id (fresh randomness) and its tag under the operator's key.
 * @throws {RangeError} for a key shorter than 32 bytes or an id of the wrong length.
 */
export function mintToken(crypto: AdmissionCrypto, key: Uint8Array, id: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length < 32) throw new RangeError('"key" expected at least 32 bytes');
  abytes('id', id, TOKEN_ID_LENGTH);
  const token = new Uint8Array(TOKEN_LENGTH);
  token.set(id, 0);
  token.set(tokenTag(crypto, key, id), TOKEN_ID_LENGTH);
  return token;
}

/** Whether a token carries a valid tag under the operator's key (compared in constant time). */
export function tokenValid(crypto: AdmissionCrypto, key: Uint8Array, token: Uint8Array): boolean {
  if (!(token instanceof Uint8Array) || token.length !== TOKEN_LENGTH) return false;
  return equalBytes(tokenTag(crypto, key, token.subarray(0, TOKEN_ID_LENGTH)), token.subarray(TOKEN_ID_LENGTH));
}

function tokenTag(crypto: AdmissionCrypto, key: Uint8Array, id: Uint8Array): Uint8Array {
  const m = new Uint8Array(TOKEN_DOMAIN.length + TOKEN_ID_LENGTH);
  m.set(TOKEN_DOMAIN, 0);
  m.set(id, TOKEN_DOMAIN.length);
  return crypto.hmacSha256(key, m).subarray(0, TOKEN_TAG_LENGTH);
}
