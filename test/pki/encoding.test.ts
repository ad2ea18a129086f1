import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isBackchannelError } from '../../src/errors.js';
import { Reader, Writer } from '../../src/pki/encoding.js';
import { fromHex } from '../../src/util/bytes.js';

const encodingError = (e: unknown): boolean => isBackchannelError(e, 'ERR_PKI_ENCODING');

type Field =
  | { t: 'u8' | 'u16' | 'u32' | 'u64'; v: number }
  | { t: 'f64'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'bytes'; v: Uint8Array; w: 1 | 2 | 4 }
  | { t: 'string'; v: string; w: 1 | 2 | 4 };

const field: fc.Arbitrary<Field> = fc.oneof(
  fc.integer({ min: 0, max: 0xff }).map((v) => ({ t: 'u8' as const, v })),
  fc.integer({ min: 0, max: 0xffff }).map((v) => ({ t: 'u16' as const, v })),
  fc.integer({ min: 0, max: 0xffffffff }).map((v) => ({ t: 'u32' as const, v })),
  fc.maxSafeNat().map((v) => ({ t: 'u64' as const, v })),
  fc.double({ noNaN: true }).filter((v) => !Object.is(v, -0)).map((v) => ({ t: 'f64' as const, v })),
  fc.boolean().map((v) => ({ t: 'bool' as const, v })),
  fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(2 as const, 4 as const)).map(([v, w]) => ({ t: 'bytes' as const, v, w })),
  fc.tuple(fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom(1 as const, 2 as const, 4 as const)).map(([v, w]) => ({ t: 'string' as const, v, w })),
);

function write(fields: readonly Field[]): Uint8Array {
  const w = new Writer();
  for (const f of fields) {
    switch (f.t) {
      case 'u8': w.u8(f.v); break;
      case 'u16': w.u16(f.v); break;
      case 'u32': w.u32(f.v); break;
      case 'u64': w.u64(f.v); break;
      case 'f64': w.f64(f.v); break;
      case 'bool': w.bool(f.v); break;
      case 'bytes': w.prefixed(f.v, f.w); break;
      case 'string': w.string(f.v, f.w); break;
    }
  }
  return w.finish();
}

function read(bytes: Uint8Array, fields: readonly Field[]): unknown[] {
  const r = new Reader(bytes);
  const out = fields.map((f) => {
    switch (f.t) {
      case 'u8': return r.u8();
      case 'u16': return r.u16();
      case 'u32': return r.u32();
      case 'u64': return r.u64();
      case 'f64': return r.f64();
      case 'bool': return r.bool();
      case 'bytes': return r.prefixed(f.w);
      case 'string': return r.string(f.w);
    }
  });
  r.end();
  return out;
}

describe('the canonical codec', () => {
  test('any sequence of fields reads back as written', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 20 }), (fields) => {
        const bytes = write(fields);
        assert.deepEqual(read(bytes, fields), fields.map((f) => f.v));
        assert.deepEqual(write(fields), bytes);
      }),
    );
  });

  test('every truncation is a typed error', () => {
    fc.assert(
      fc.property(fc.array(field, { minLength: 1, maxLength: 10 }), fc.nat(), (fields, cut) => {
        const bytes = write(fields);
        if (bytes.length === 0) return;
        const short = bytes.subarray(0, cut % bytes.length);
        assert.throws(() => read(short, fields), encodingError);
      }),
    );
  });

  test('a trailing byte is a typed error', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 10 }), fc.integer({ min: 0, max: 255 }), (fields, extra) => {
        const bytes = write(fields);
        const longer = new Uint8Array([...bytes, extra]);
        assert.throws(() => read(longer, fields), encodingError);
      }),
    );
  });

  test('random input never escapes as anything but ERR_PKI_ENCODING', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.array(field, { maxLength: 8 }), (bytes, fields) => {
        try {
          read(bytes, fields);
        } catch (e) {
          assert.ok(encodingError(e), String(e));
        }
      }),
    );
  });

  test('values with a second encoding are refused', () => {
    assert.throws(() => new Reader(fromHex('0020000000000000')).u64(), encodingError); // 2^53
    assert.equal(new Reader(fromHex('001fffffffffffff')).u64(), Number.MAX_SAFE_INTEGER);
    assert.throws(() => new Reader(fromHex('7ff8000000000000')).f64(), encodingError); // NaN
    assert.throws(() => new Reader(fromHex('7ff8000000000001')).f64(), encodingError); // another NaN
    assert.throws(() => new Reader(fromHex('8000000000000000')).f64(), encodingError); // -0
    assert.throws(() => new Reader(fromHex('02')).bool(), encodingError);
    assert.throws(() => new Reader(fromHex('02c0af')).string(1), encodingError); // overlong '/'
    assert.throws(() => new Reader(fromHex('03eda080')).string(1), encodingError); // lone surrogate
    assert.equal(new Reader(fromHex('03efbbbf')).string(1), '\ufeff'); // a BOM is text, kept
  });

  test('a length past the caller maximum is refused before reading', () => {
    const r = new Reader(fromHex('0005' + '00'.repeat(5)));
    assert.throws(() => r.prefixed(2, 4), encodingError);
  });

  test('the writer checks its arguments', () => {
    assert.throws(() => new Writer().u8(256), RangeError);
    assert.throws(() => new Writer().u16(-1), RangeError);
    assert.throws(() => new Writer().u64(2 ** 53), RangeError);
    assert.throws(() => new Writer().u32(1.5), TypeError);
    assert.throws(() => new Writer().f64(NaN), RangeError);
    assert.throws(() => new Writer().f64(-0), RangeError);
    assert.throws(() => new Writer().prefixed(new Uint8Array(256), 1), RangeError);
    assert.throws(() => new Writer().raw('ab' as unknown as Uint8Array), TypeError);
    assert.throws(() => new Reader([1, 2] as unknown as Uint8Array), TypeError);
  });

  test('the writer grows past its first buffer whatever is written', () => {
    const big = new Uint8Array(5000).map((_, i) => i & 0xff);
    const w = new Writer().u8(7);
    for (let i = 0; i < 300; i++) w.u16(i);
    w.prefixed(big, 4).u64(2 ** 40).f64(0.5).raw(big);
    const r = new Reader(w.finish());
    assert.equal(r.u8(), 7);
    for (let i = 0; i < 300; i++) assert.equal(r.u16(), i);
    assert.deepEqual(r.prefixed(4), big);
    assert.equal(r.u64(), 2 ** 40);
    assert.equal(r.f64(), 0.5);
    assert.deepEqual(r.raw(5000), big);
    r.end();
  });

  test('integers are big-endian', () => {
    const b = new Writer().u16(0x0102).u32(0x03040506).u64(0x0708090a0b0c).finish();
    assert.deepEqual([...b], [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12]);
  });
});
