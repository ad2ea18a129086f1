/**
 * Safety numbers: 60 digits that two contacts compare in person (or over a channel they trust)
 * to check that each holds the other's real identity keys, and that no one in the middle (a
 * lying introducer, a card swapped on its way) gave them someone else's.
 *
 * For each party, 30 digits from its identity keys:
 *
 *     h0 = SHA-256("Backchannel safety number v1" ‖ X25519 identity key ‖ ML-KEM-768 key)
 *     h(i+1) = SHA-256(h(i) ‖ X25519 identity key), SAFETY_ITERATIONS times
 *     digits = for each of the first six 5-byte pieces of h: the piece as a big-endian integer
 *              mod 100000, as 5 digits
 *
 * The number is the two parties' 30 digits, the party whose X25519 key sorts lower first, so
 * both sides print the same. The iterations make a search for keys with a chosen half of the
 * number cost 2^12 hashes per try more. Both keys are covered: a swapped ML-KEM key changes the
 * number as a swapped X25519 key does. Portable.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from '../util/bytes.js';

export const SAFETY_ITERATIONS = 4096;
const LABEL = new TextEncoder().encode('Backchannel safety number v1');

function half(dhKey: Uint8Array, kemKey: Uint8Array): string {
  let h = sha256(concatBytes(LABEL, dhKey, kemKey));
  for (let i = 0; i < SAFETY_ITERATIONS; i++) h = sha256(concatBytes(h, dhKey));
  let out = '';
  for (let i = 0; i < 6; i++) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + h[5 * i + j]!;
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

/** Bytewise comparison (-1, 0, 1). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** The 60-digit safety number of two parties, in 12 groups of 5 digits separated by spaces. */
export function safetyNumber(ours: { dhKey: Uint8Array; kemKey: Uint8Array }, theirs: { dhKey: Uint8Array; kemKey: Uint8Array }): string {
  const a = half(ours.dhKey, ours.kemKey);
  const b = half(theirs.dhKey, theirs.kemKey);
  const digits = compareBytes(ours.dhKey, theirs.dhKey) <= 0 ? a + b : b + a;
  return digits.match(/.{5}/g)!.join(' ');
}
