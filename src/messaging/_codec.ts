/**
 * A small canonical binary codec: fixed-width big-endian integers and byte strings of fixed or
 * u16/u32-prefixed length. The reader is strict: a short input, a value out of range or bytes left
 * over is an ERR_MSG_ENCODING error, never an exception of another kind.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { BackchannelError } from '../errors.js';
import { equalBytes } from '../util/bytes.js';

/** SHA-256 length: the check sum at the end of stored encodings. */
const CHECKSUM_LENGTH = 32;

/** Appends fields to a growing buffer. */
export class Writer {
  private buf: Uint8Array;
  private len = 0;

  /** `capacity`: the expected length, so that a writer of known size allocates once. */
  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = Math.max(16, this.buf.length * 2);
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf.fill(0);
    this.buf = next;
  }

  u8(v: number): this {
    this.reserve(1);
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.reserve(2);
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.reserve(4);
    for (let s = 24; s >= 0; s -= 8) this.buf[this.len++] = (v >>> s) & 0xff;
    return this;
  }

  /** A non-negative integer below 2^53 as 8 bytes (timestamps in milliseconds). */
  u64(v: number): this {
    this.u32(Math.floor(v / 2 ** 32));
    return this.u32(v >>> 0);
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /**
   * Like `finish`, with SHA-256 of the content appended: stored state (identity, prekeys,
   * sessions) detects any corruption on disk, in key bytes too, not only in its structure. It
   * is a check sum, not a MAC: whoever can write the file can write a valid one.
   */
  finishChecked(): Uint8Array {
    this.bytes(sha256(this.buf.subarray(0, this.len)));
    return this.finish();
  }

  /** A fresh copy of what was written; the working buffer (which may hold secrets) is wiped. */
  finish(): Uint8Array {
    const out = this.buf.slice(0, this.len);
    this.buf.fill(0);
    return out;
  }
}

/** Reads fields in order; every failure is ERR_MSG_ENCODING with `what` naming the encoding. */
export class Reader {
  private off = 0;
  private readonly buf: Uint8Array;
  private readonly what: string;

  constructor(buf: Uint8Array, what: string) {
    this.buf = buf;
    this.what = what;
  }

  /** A reader over `buf` without its trailing check sum, which must match (see Writer.finishChecked). */
  static checked(buf: Uint8Array, what: string): Reader {
    const r = new Reader(buf, what);
    if (buf.length < CHECKSUM_LENGTH) r.fail('truncated');
    const content = buf.subarray(0, buf.length - CHECKSUM_LENGTH);
    if (!equalBytes(sha256(content), buf.subarray(content.length))) r.fail('check sum mismatch (corrupted or truncated)');
    return new Reader(content, what);
  }

  fail(reason: string): never {
    throw new BackchannelError('ERR_MSG_ENCODING', `messaging: invalid ${this.what}: ${reason}`);
  }

  private need(n: number): void {
    if (this.off + n > this.buf.length) this.fail('truncated');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.off++]!;
  }

  u16(): number {
    this.need(2);
    const v = (this.buf[this.off]! << 8) | this.buf[this.off + 1]!;
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const o = this.off;
    this.off += 4;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }

  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi >= 2 ** 21) this.fail('integer out of range');
    return hi * 2 ** 32 + lo;
  }

  /** A 0 or 1 byte. */
  bool(): boolean {
    const v = this.u8();
    if (v > 1) this.fail('flag is neither 0 nor 1');
    return v === 1;
  }

  /** `n` bytes, copied (the caller owns them). */
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.off, this.off + n);
    this.off += n;
    return out;
  }

  /** `n` bytes as a view into the input, for parsing messages without copying. */
  view(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  get offset(): number {
    return this.off;
  }

  get remaining(): number {
    return this.buf.length - this.off;
  }

  /** Refuses trailing bytes: one value has one encoding. */
  end(): void {
    if (this.off !== this.buf.length) this.fail('trailing bytes');
  }
}
