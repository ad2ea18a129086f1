/**
 * A tiny canonical binary codec for the directory's formats. Integers are big-endian; byte strings
 * and text carry a 1-, 2- or 4-byte length prefix; text is UTF-8. Reading is strict: short input,
 * trailing bytes, out-of-range values and any value with a second encoding (a NaN or -0 float, a
 * u64 past 2^53 - 1, a boolean other than 0 or 1, malformed UTF-8) throw ERR_PKI_ENCODING, so that
 * every value has exactly one encoding and two equal encodings mean two equal values.
 *
 * Portable: no `node:` imports.
 */
import { BackchannelError } from '../errors.js';
import { abytes, aint } from '../util/bytes.js';

/** Width of a length prefix, in bytes. */
export type PrefixWidth = 1 | 2 | 4;

const PREFIX_MAX: Record<PrefixWidth, number> = { 1: 0xff, 2: 0xffff, 4: 0xffffffff };

// 2^53 - 1: the largest integer a JavaScript number holds exactly (epochs, lengths).
const U64_HIGH_MAX = 0x1fffff;

const utf8Encoder = new TextEncoder();
// fatal: malformed UTF-8 (overlong forms, lone surrogates) is an error, not U+FFFD, which keeps
// decoding one-to-one; ignoreBOM: a leading U+FEFF is kept as text so that it re-encodes the same.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function encodingError(message: string): BackchannelError {
  return new BackchannelError('ERR_PKI_ENCODING', `pki: ${message}`);
}

/** Builds an encoding; every method checks its argument (TypeError / RangeError) and returns `this`. */
export class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  private reserve(n: number): number {
    const at = this.len;
    if (at + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < at + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.len = at + n;
    return at;
  }

  u8(value: number): this {
    aint('value', value, 0, 0xff);
    const at = this.reserve(1);
    this.view.setUint8(at, value);
    return this;
  }

  u16(value: number): this {
    aint('value', value, 0, 0xffff);
    const at = this.reserve(2);
    this.view.setUint16(at, value);
    return this;
  }

  u32(value: number): this {
    aint('value', value, 0, 0xffffffff);
    const at = this.reserve(4);
    this.view.setUint32(at, value);
    return this;
  }

  /** An unsigned 64-bit integer; only values up to Number.MAX_SAFE_INTEGER are representable. */
  u64(value: number): this {
    aint('value', value, 0, Number.MAX_SAFE_INTEGER);
    const at = this.reserve(8);
    this.view.setUint32(at, Math.floor(value / 0x100000000));
    this.view.setUint32(at + 4, value % 0x100000000);
    return this;
  }

  /** An IEEE 754 binary64; NaN and -0 have no canonical form and are refused. */
  f64(value: number): this {
    if (typeof value !== 'number') throw new TypeError(`"value" expected a number, got ${typeof value}`);
    if (Number.isNaN(value) || Object.is(value, -0)) throw new RangeError('"value" NaN and -0 have no canonical encoding');
    const at = this.reserve(8);
    this.view.setFloat64(at, value);
    return this;
  }

  bool(value: boolean): this {
    if (typeof value !== 'boolean') throw new TypeError(`"value" expected a boolean, got ${typeof value}`);
    return this.u8(value ? 1 : 0);
  }

  /** Bytes as they are, no length: the reader must know the length. */
  raw(bytes: Uint8Array): this {
    abytes('bytes', bytes);
    const at = this.reserve(bytes.length); // first: reserve may replace this.buf
    this.buf.set(bytes, at);
    return this;
  }

  /** A length prefix of `width` bytes, then the bytes. */
  prefixed(bytes: Uint8Array, width: PrefixWidth): this {
    abytes('bytes', bytes);
    if (bytes.length > PREFIX_MAX[width]) throw new RangeError(`"bytes" too long for a ${width}-byte length prefix: ${bytes.length}`);
    this.lengthPrefix(bytes.length, width);
    return this.raw(bytes);
  }

  /** UTF-8 text with a length prefix of `width` bytes (the prefix counts bytes, not characters). */
  string(text: string, width: PrefixWidth): this {
    if (typeof text !== 'string') throw new TypeError(`"text" expected a string, got ${typeof text}`);
    return this.prefixed(utf8Encoder.encode(text), width);
  }

  private lengthPrefix(n: number, width: PrefixWidth): void {
    if (width === 1) this.u8(n);
    else if (width === 2) this.u16(n);
    else this.u32(n);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.len;
  }

  /** A fresh copy of what was written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Reads an encoding strictly; every failure is ERR_PKI_ENCODING. Returned byte arrays are copies. */
export class Reader {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private pos = 0;

  /** @throws {TypeError} when `bytes` is not a Uint8Array. */
  constructor(bytes: Uint8Array) {
    abytes('bytes', bytes);
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private take(n: number, what: string): number {
    if (n > this.bytes.length - this.pos) throw encodingError(`input ends inside ${what}`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** Offset of the next byte to read. */
  get offset(): number {
    return this.pos;
  }

  /** Bytes left. */
  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  u8(what = 'u8'): number {
    return this.view.getUint8(this.take(1, what));
  }

  u16(what = 'u16'): number {
    return this.view.getUint16(this.take(2, what));
  }

  u32(what = 'u32'): number {
    return this.view.getUint32(this.take(4, what));
  }

  u64(what = 'u64'): number {
    const at = this.take(8, what);
    const high = this.view.getUint32(at);
    if (high > U64_HIGH_MAX) throw encodingError(`${what} exceeds 2^53 - 1`);
    return high * 0x100000000 + this.view.getUint32(at + 4);
  }

  f64(what = 'f64'): number {
    const v = this.view.getFloat64(this.take(8, what));
    if (Number.isNaN(v) || Object.is(v, -0)) throw encodingError(`${what} is NaN or -0`);
    return v;
  }

  bool(what = 'bool'): boolean {
    const v = this.u8(what);
    if (v > 1) throw encodingError(`${what} is neither 0 nor 1`);
    return v === 1;
  }

  /** Exactly `length` bytes. */
  raw(length: number, what = 'bytes'): Uint8Array {
    const at = this.take(length, what);
    return this.bytes.slice(at, at + length);
  }

  /** A view of exactly `length` bytes (no copy), for hashing or verifying in place. */
  borrow(length: number, what = 'bytes'): Uint8Array {
    const at = this.take(length, what);
    return this.bytes.subarray(at, at + length);
  }

  /** Length-prefixed bytes; a length above `max` is an error before anything is copied. */
  prefixed(width: PrefixWidth, max: number = PREFIX_MAX[width], what = 'bytes'): Uint8Array {
    const n = width === 1 ? this.u8(what) : width === 2 ? this.u16(what) : this.u32(what);
    if (n > max) throw encodingError(`${what} longer than ${max} bytes`);
    return this.raw(n, what);
  }

  /** Length-prefixed UTF-8 text of at most `max` bytes. */
  string(width: PrefixWidth, max: number = PREFIX_MAX[width], what = 'string'): string {
    const b = this.prefixed(width, max, what);
    try {
      return utf8Decoder.decode(b);
    } catch {
      throw encodingError(`${what} is not valid UTF-8`);
    }
  }

  /** Throws unless every byte was read. */
  end(what = 'input'): void {
    if (this.pos !== this.bytes.length) throw encodingError(`${this.bytes.length - this.pos} trailing bytes after ${what}`);
  }
}
