/**
 * Byte helpers shared by every protocol module. Portable: no `node:` imports.
 */

/** Throws a TypeError unless `value` is a Uint8Array, and a RangeError unless its length is one of `lengths`. */
export function abytes(name: string, value: unknown, ...lengths: number[]): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`"${name}" expected Uint8Array, got ${value === null ? 'null' : typeof value}`);
  }
  if (lengths.length > 0 && !lengths.includes(value.length)) {
    throw new RangeError(`"${name}" expected Uint8Array of length ${lengths.join(' or ')}, got length=${value.length}`);
  }
}

/** Throws unless `value` is an integer in [min, max]. */
export function aint(name: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`"${name}" expected an integer, got ${typeof value === 'number' ? String(value) : typeof value}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`"${name}" expected an integer in [${min}, ${max}], got ${value}`);
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A compact Map key for a byte string (one character per byte): about three times cheaper to
 * make and to hash than toHex, for identifiers looked up per packet. Not for display or logs.
 * For short byte strings (keys and ids): the bytes are passed as call arguments, which engines
 * cap at some tens of thousands.
 */
export function idKey(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!];
  return out;
}

/**
 * Parses hex (either case, even length, nothing else).
 * @throws {TypeError} when `hex` is not a string; {RangeError} when it is not valid hex.
 */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== 'string') throw new TypeError(`"hex" expected string, got ${typeof hex}`);
  if (hex.length % 2 !== 0) throw new RangeError(`"hex" expected an even number of digits, got ${hex.length}`);
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw new RangeError('"hex" contains a character that is not a hex digit');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Concatenates byte arrays into a new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Compares in time that depends only on the lengths, never on the contents. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** True when every byte is zero, in time that depends only on the length. */
export function isZero(a: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]!;
  return acc === 0;
}

/** dst[i] = a[i] ^ b[i] for i < dst.length; `dst` may alias either input. */
export function xorInto(dst: Uint8Array, a: Uint8Array, b: Uint8Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] = a[i]! ^ b[i]!;
}

/** Overwrites secrets with zeros. */
export function wipe(...arrays: (Uint8Array | undefined)[]): void {
  for (const a of arrays) a?.fill(0);
}
