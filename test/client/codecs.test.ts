// The portable client codecs against their doc comments: addresses (round trip on both crypto
// backends, every typo caught with a typed error that never echoes the input), frames and
// messages (round trips through fragmentation in any order, fixed frame lengths, every malformed
// header rejected, arbitrary bytes giving only typed errors), envelopes (round trip across
// backends, every flipped bit, truncation and wrong key giving null) and Poisson clocks in
// virtual time.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ADDRESS_PREFIX, decodeAddress, encodeAddress } from '../../src/client/address.js';
import { ENVELOPE_OVERHEAD, open, seal } from '../../src/client/envelope.js';
import {
  decodeFrame,
  decodeMessage,
  encodeMessage,
  FRAGMENT_HEADER_LENGTH,
  fragmentCapacity,
  fragmentFrames,
  FRAME_FRAGMENT,
  FRAME_LOOP,
  frameLength,
  loopFrame,
  MAX_FRAGMENTS,
  MAX_MESSAGE_LENGTH,
  MAX_REPLY_SURBS,
  MESSAGE_ID_LENGTH,
  MESSAGE_VERSION,
  MESSAGE_VERSION_META,
  MAX_FILE_NAME_LENGTH,
  isSafeFileName,
} from '../../src/client/frames.js';
import type { Frame } from '../../src/client/frames.js';
import { exponentialMs, PoissonClock, uniform01 } from '../../src/client/poisson.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { portableBackend } from '../../src/crypto/portable.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { isBackchannelError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import type { NoiseAead } from '../../src/noise/crypto.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import { portableNoiseCrypto } from '../../src/noise/crypto-portable.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import type { Geometry } from '../../src/sphinx/geometry.js';
import { seededBackend } from '../helpers/seeded.js';
import { ManualClock } from '../pki/fixtures.js';

const te = new TextEncoder();

/** Asserts that `f` throws a BackchannelError with `code`, and returns the error. */
function throwsCode(f: () => unknown, code: ErrorCode): Error {
  let caught: unknown = null;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== null, `expected ${code}, nothing was thrown`);
  assert.ok(isBackchannelError(caught, code), `expected ${code}, got ${String(caught)} (${(caught as { name?: unknown }).name as string})`);
  return caught;
}

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

describe('client addresses', () => {
  const B64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  /** Characters outside the base64url alphabet, some of which base64 or atob would tolerate. */
  const FOREIGN = ['+', '/', '=', ' ', '\t', '\n', '.', ',', '!', '~', '\0', 'é', 'ß', '\u00a0', '\ufeff', '🙂'];
  const anyChar = fc.oneof(fc.constantFrom(...B64URL_ALPHABET.split('')), fc.constantFrom(...FOREIGN));
  const address = fc.record({ gateway: key32, mailbox: key32 });

  /** The contract on a rejected input: ERR_CLIENT_ADDRESS, and the message does not echo it. */
  function rejected(text: string): void {
    for (const backend of [nodeBackend, portableBackend]) {
      const e = throwsCode(() => decodeAddress(backend, text), 'ERR_CLIENT_ADDRESS');
      // Strings of a few characters turn up in any English sentence; longer ones must not.
      if (text.length >= 8) assert.ok(!e.message.includes(text), 'the error message echoes the input');
      const body = text.trim().slice(ADDRESS_PREFIX.length);
      if (body.length >= 8) assert.ok(!e.message.includes(body), 'the error message echoes the input');
    }
  }

  it('round-trips random keys, gives the same 94-character "bc1" string on both backends', () => {
    fc.assert(
      fc.property(address, (a) => {
        const text = encodeAddress(nodeBackend, a);
        assert.equal(encodeAddress(portableBackend, a), text);
        assert.equal(text.length, 94);
        assert.ok(text.startsWith('bc1'));
        assert.equal(ADDRESS_PREFIX, 'bc1');
        assert.match(text.slice(3), /^[A-Za-z0-9_-]{91}$/);
        for (const backend of [nodeBackend, portableBackend]) {
          const d = decodeAddress(backend, text);
          assert.deepEqual(d.gateway, a.gateway);
          assert.deepEqual(d.mailbox, a.mailbox);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('round-trips the all-zero and all-0xff keys', () => {
    for (const fill of [0x00, 0xff]) {
      const a = { gateway: new Uint8Array(32).fill(fill), mailbox: new Uint8Array(32).fill(fill ^ 0xff) };
      const text = encodeAddress(portableBackend, a);
      assert.equal(text, encodeAddress(nodeBackend, a));
      assert.deepEqual(decodeAddress(nodeBackend, text), a);
    }
  });

  it('accepts surrounding white space', () => {
    const space = fc.stringMatching(/^[ \t\n\r\u00a0\ufeff]{0,6}$/);
    fc.assert(
      fc.property(address, space, space, (a, before, after) => {
        const text = encodeAddress(nodeBackend, a);
        const d = decodeAddress(portableBackend, before + text + after);
        assert.deepEqual(d.gateway, a.gateway);
        assert.deepEqual(d.mailbox, a.mailbox);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses keys that are not 32 bytes with ERR_CLIENT_ADDRESS', () => {
    const k = new Uint8Array(32);
    for (const [gateway, mailbox] of [
      [new Uint8Array(31), k],
      [k, new Uint8Array(33)],
      [new Uint8Array(0), new Uint8Array(0)],
    ] as const) {
      throwsCode(() => encodeAddress(nodeBackend, { gateway, mailbox }), 'ERR_CLIENT_ADDRESS');
    }
  });

  it('rejects any single-character substitution anywhere', () => {
    fc.assert(
      fc.property(address, fc.nat({ max: 93 }), anyChar, (a, pos, ch) => {
        const text = encodeAddress(nodeBackend, a);
        fc.pre(text[pos] !== ch);
        rejected(text.slice(0, pos) + ch + text.slice(pos + 1));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects every substitution of the last character (its two low bits are padding)', () => {
    const a = { gateway: new Uint8Array(32).fill(7), mailbox: new Uint8Array(32).fill(9) };
    const text = encodeAddress(nodeBackend, a);
    for (const ch of [...B64URL_ALPHABET, ...FOREIGN]) if (ch !== text[93]) rejected(text.slice(0, 93) + ch);
  });

  it('rejects a wrong or missing prefix', () => {
    const text = encodeAddress(nodeBackend, { gateway: new Uint8Array(32).fill(1), mailbox: new Uint8Array(32).fill(2) });
    rejected(text.slice(3));
    rejected('BC1' + text.slice(3));
    rejected('bc2' + text.slice(3));
    rejected('-' + text.slice(1));
  });

  it('rejects a truncated address, from either end', () => {
    fc.assert(
      fc.property(address, fc.integer({ min: 1, max: 94 }), fc.boolean(), (a, cut, fromEnd) => {
        const text = encodeAddress(nodeBackend, a);
        rejected(fromEnd ? text.slice(0, 94 - cut) : text.slice(cut));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects an extended address, characters appended or inserted', () => {
    fc.assert(
      fc.property(address, fc.array(anyChar, { minLength: 1, maxLength: 6 }), fc.nat({ max: 94 }), fc.boolean(), (a, extra, pos, append) => {
        const text = encodeAddress(nodeBackend, a);
        const more = extra.join('');
        const longer = append ? text + more : text.slice(0, pos) + more + text.slice(pos);
        // White space added at either end is surrounding white space, which is fine.
        fc.pre(longer.trim() !== text);
        rejected(longer);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects addresses 92 and 96 characters long (a base64 body of length 1 mod 4) with ERR_CLIENT_ADDRESS', () => {
    const text = encodeAddress(nodeBackend, { gateway: new Uint8Array(32).fill(1), mailbox: new Uint8Array(32).fill(2) });
    rejected(text.slice(0, 92));
    rejected(text + 'AA');
    rejected('bc1A');
  });

  it('rejects things that are not addresses at all', () => {
    for (const s of ['', '   ', 'bc1', 'bc1=', 'bc1' + '='.repeat(91), 'bc1' + 'A'.repeat(91), 'bc1' + '_'.repeat(91)]) rejected(s);
    throwsCode(() => decodeAddress(nodeBackend, 42 as unknown as string), 'ERR_CLIENT_ADDRESS');
  });
});

// ---------------------------------------------------------------------------------------------
// Frames and messages
// ---------------------------------------------------------------------------------------------

describe('client frames and messages', () => {
  const big = geometryFromUserPayload(5, 2000, true);
  const small = geometryFromUserPayload(5, 300, true);
  const geometries: readonly [string, Geometry][] = [
    ['5 hops, 2000 bytes', big],
    ['5 hops, 300 bytes', small],
  ];

  const randomSurbs = (g: Geometry): fc.Arbitrary<Uint8Array[]> =>
    fc.array(fc.uint8Array({ minLength: g.surbLength, maxLength: g.surbLength }), { maxLength: 3, size: 'max' });
  // size 'max': without it fast-check keeps arrays to a dozen bytes, one fragment.
  const body = fc.uint8Array({ minLength: 1, maxLength: 20000, size: 'max' });
  const messageId = fc.uint8Array({ minLength: MESSAGE_ID_LENGTH, maxLength: MESSAGE_ID_LENGTH });

  it('derives the frame length from the user payload less the envelope', () => {
    assert.equal(frameLength(big), 2000 - ENVELOPE_OVERHEAD);
    assert.equal(frameLength(small), 300 - ENVELOPE_OVERHEAD);
    for (const [, g] of geometries) assert.equal(fragmentCapacity(g), frameLength(g) - FRAGMENT_HEADER_LENGTH);
    assert.equal(FRAGMENT_HEADER_LENGTH, 23);
  });

  it('throws ERR_CLIENT_FRAME for a geometry with no room for a fragment, and works at the smallest one', () => {
    for (const user of [0, 10, ENVELOPE_OVERHEAD, ENVELOPE_OVERHEAD + FRAGMENT_HEADER_LENGTH]) {
      const tiny = geometryFromUserPayload(5, user, true);
      throwsCode(() => frameLength(tiny), 'ERR_CLIENT_FRAME');
      throwsCode(() => fragmentCapacity(tiny), 'ERR_CLIENT_FRAME');
      throwsCode(() => loopFrame(tiny), 'ERR_CLIENT_FRAME');
      throwsCode(() => decodeFrame(tiny, new Uint8Array(100)), 'ERR_CLIENT_FRAME');
      throwsCode(() => fragmentFrames(tiny, new Uint8Array(MESSAGE_ID_LENGTH), Uint8Array.of(1, 2, 3)), 'ERR_CLIENT_FRAME');
    }
    // One byte of data per fragment.
    const least = geometryFromUserPayload(5, ENVELOPE_OVERHEAD + FRAGMENT_HEADER_LENGTH + 1, true);
    assert.equal(fragmentCapacity(least), 1);
    const encoded = encodeMessage(least, te.encode('hello'), []);
    const frames = fragmentFrames(least, new Uint8Array(MESSAGE_ID_LENGTH), encoded);
    assert.equal(frames.length, encoded.length);
    const data = frames.map((f) => decodeFrame(least, f)).map((f) => (f.kind === 'fragment' ? f.data[0]! : -1));
    assert.deepEqual(Uint8Array.from(data), encoded);
  });

  for (const [name, g] of geometries) {
    describe(name, () => {
      it('round-trips a message with 0..3 reply SURBs', () => {
        fc.assert(
          fc.property(body, randomSurbs(g), (b, surbs) => {
            const encoded = encodeMessage(g, b, surbs);
            assert.equal(encoded.length, 2 + surbs.length * g.surbLength + b.length);
            assert.equal(encoded[0], MESSAGE_VERSION);
            assert.equal(encoded[1], surbs.length);
            const d = decodeMessage(g, encoded);
            assert.deepEqual(d.body, b);
            assert.deepEqual(d.replySurbs, surbs);
          }),
          { numRuns: 40 },
        );
      });

      it('round-trips a version-2 message: the send time in seconds and a file name (or none), with its SURBs', () => {
        const safeName = fc.string({ minLength: 1, maxLength: 40 }).filter(isSafeFileName);
        fc.assert(
          fc.property(body, randomSurbs(g), fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.option(safeName, { nil: null }), (b, surbs, sentAtS, fileName) => {
            const encoded = encodeMessage(g, b, surbs, { sentAtS, fileName });
            assert.equal(encoded[0], MESSAGE_VERSION_META);
            const d = decodeMessage(g, encoded);
            assert.deepEqual(d.body, b);
            assert.deepEqual(d.replySurbs, surbs);
            assert.deepEqual(d.meta, { sentAtS, fileName });
          }),
          { numRuns: 40 },
        );
        // A version-1 message still reads, without meta.
        const old = decodeMessage(g, Uint8Array.of(MESSAGE_VERSION, 0, 0x68, 0x69));
        assert.deepEqual(old, { body: Uint8Array.of(0x68, 0x69), replySurbs: [], meta: null });
      });

      it('refuses a file name that is not a plain name, when encoding and when decoding', () => {
        const unsafe = ['', '.', '..', '../x', 'a/b', 'a\\b', '/etc/passwd', 'x\u0000y', 'bell\u0007', 'esc\u001b[2J', 'rlo\u202egnp.exe', 'n'.repeat(MAX_FILE_NAME_LENGTH + 1)];
        for (const name of unsafe) {
          assert.equal(isSafeFileName(name), false, JSON.stringify(name));
          throwsCode(() => encodeMessage(g, Uint8Array.of(1), [], { sentAtS: 1, fileName: name }), 'ERR_CLIENT_MESSAGE');
        }
        for (const name of ['notes.txt', 'été.pdf', '.profile', 'a b', 'n'.repeat(MAX_FILE_NAME_LENGTH)]) assert.equal(isSafeFileName(name), true, name);
        // Made by hand: version 2 with "../x" as the name, and with a name that is not UTF-8.
        const by = (name: number[]): Uint8Array => Uint8Array.of(MESSAGE_VERSION_META, 0, 0, 0, 0, 0, 0, 1, name.length, ...name, 0x21);
        throwsCode(() => decodeMessage(g, by([0x2e, 0x2e, 0x2f, 0x78])), 'ERR_CLIENT_FRAME');
        throwsCode(() => decodeMessage(g, by([0xff, 0xfe])), 'ERR_CLIENT_FRAME');
        assert.equal(decodeMessage(g, by([0x61])).meta?.fileName, 'a');
        // Cut short inside the meta, and a name that runs past the end.
        throwsCode(() => decodeMessage(g, Uint8Array.of(MESSAGE_VERSION_META, 0, 0, 0, 0)), 'ERR_CLIENT_FRAME');
        throwsCode(() => decodeMessage(g, Uint8Array.of(MESSAGE_VERSION_META, 0, 0, 0, 0, 0, 0, 1, 9, 0x61)), 'ERR_CLIENT_FRAME');
        throwsCode(() => encodeMessage(g, Uint8Array.of(1), [], { sentAtS: -1, fileName: null }), 'ERR_CLIENT_MESSAGE');
        throwsCode(() => encodeMessage(g, Uint8Array.of(1), [], { sentAtS: 2 ** 48, fileName: null }), 'ERR_CLIENT_MESSAGE');
      });

      it('fragments into frames of exactly frameLength bytes that reassemble in any order', () => {
        const len = frameLength(g);
        const cap = fragmentCapacity(g);
        fc.assert(
          fc.property(body, randomSurbs(g), messageId, fc.gen(), (b, surbs, id, gen) => {
            const encoded = encodeMessage(g, b, surbs);
            const frames = fragmentFrames(g, id, encoded);
            assert.equal(frames.length, Math.ceil(encoded.length / cap));
            for (const f of frames) assert.equal(f.length, len);
            // Deliver in a shuffled order (Fisher-Yates with fast-check's own draws).
            const order = frames.map((_, i) => i);
            for (let i = order.length - 1; i > 0; i--) {
              const j = gen(fc.integer, { min: 0, max: i });
              [order[i], order[j]] = [order[j]!, order[i]!];
            }
            const slots: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(frames.length);
            for (const k of order) {
              const fr = decodeFrame(g, frames[k]!);
              assert.equal(fr.kind, 'fragment');
              if (fr.kind !== 'fragment') return;
              assert.deepEqual(fr.messageId, id);
              assert.equal(fr.count, frames.length);
              assert.equal(fr.index, k);
              assert.equal(slots[fr.index], undefined);
              slots[fr.index] = fr.data.slice();
            }
            const parts = slots.map((s) => s!);
            for (const p of parts.slice(0, -1)) assert.equal(p.length, cap);
            const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
            let o = 0;
            for (const p of parts) {
              joined.set(p, o);
              o += p.length;
            }
            assert.deepEqual(joined, encoded);
            const d = decodeMessage(g, joined);
            assert.deepEqual(d.body, b);
            assert.deepEqual(d.replySurbs, surbs);
          }),
          { numRuns: 30 },
        );
      });

      it('gives exactly one fragment for a message that fills one, two for one byte more', () => {
        const cap = fragmentCapacity(g);
        const id = new Uint8Array(MESSAGE_ID_LENGTH).fill(3);
        const full = encodeMessage(g, new Uint8Array(cap - 2).fill(1), []);
        assert.equal(full.length, cap);
        assert.equal(fragmentFrames(g, id, full).length, 1);
        const over = encodeMessage(g, new Uint8Array(cap - 1).fill(1), []);
        const frames = fragmentFrames(g, id, over);
        assert.equal(frames.length, 2);
        const last = decodeFrame(g, frames[1]!);
        assert.ok(last.kind === 'fragment' && last.data.length === 1 && last.index === 1 && last.count === 2);
      });

      it('refuses an empty body, a body over MAX_MESSAGE_LENGTH, too many or malformed SURBs with ERR_CLIENT_MESSAGE', () => {
        throwsCode(() => encodeMessage(g, new Uint8Array(0), []), 'ERR_CLIENT_MESSAGE');
        throwsCode(() => encodeMessage(g, new Uint8Array(0), [new Uint8Array(g.surbLength)]), 'ERR_CLIENT_MESSAGE');
        throwsCode(() => encodeMessage(g, new Uint8Array(MAX_MESSAGE_LENGTH + 1), []), 'ERR_CLIENT_MESSAGE');
        assert.equal(decodeMessage(g, encodeMessage(g, new Uint8Array(MAX_MESSAGE_LENGTH), [])).body.length, MAX_MESSAGE_LENGTH);
        const surb = new Uint8Array(g.surbLength);
        throwsCode(() => encodeMessage(g, Uint8Array.of(1), new Array<Uint8Array>(MAX_REPLY_SURBS + 1).fill(surb)), 'ERR_CLIENT_MESSAGE');
        assert.equal(decodeMessage(g, encodeMessage(g, Uint8Array.of(1), new Array<Uint8Array>(MAX_REPLY_SURBS).fill(surb))).replySurbs.length, MAX_REPLY_SURBS);
        throwsCode(() => encodeMessage(g, Uint8Array.of(1), [new Uint8Array(g.surbLength - 1)]), 'ERR_CLIENT_MESSAGE');
        throwsCode(() => encodeMessage(g, Uint8Array.of(1), [surb, new Uint8Array(g.surbLength + 1)]), 'ERR_CLIENT_MESSAGE');
        throwsCode(() => fragmentFrames(g, new Uint8Array(MESSAGE_ID_LENGTH - 1), Uint8Array.of(1, 0, 1)), 'ERR_CLIENT_MESSAGE');
        throwsCode(() => fragmentFrames(g, new Uint8Array(MESSAGE_ID_LENGTH + 1), Uint8Array.of(1, 0, 1)), 'ERR_CLIENT_MESSAGE');
      });

      it('refuses malformed messages with ERR_CLIENT_FRAME', () => {
        const bad = (bytes: Uint8Array): unknown => throwsCode(() => decodeMessage(g, bytes), 'ERR_CLIENT_FRAME');
        bad(new Uint8Array(0));
        bad(Uint8Array.of(MESSAGE_VERSION, 0)); // no body
        bad(Uint8Array.of(MESSAGE_VERSION_META + 1, 0, 1)); // unknown version
        bad(Uint8Array.of(0, 0, 1));
        bad(Uint8Array.of(MESSAGE_VERSION, MAX_REPLY_SURBS + 1, ...new Uint8Array(10)));
        bad(new Uint8Array([MESSAGE_VERSION, 1, ...new Uint8Array(g.surbLength)])); // a SURB, no body
        bad(new Uint8Array([MESSAGE_VERSION, 2, ...new Uint8Array(g.surbLength + 5)])); // the second SURB cut short
        const tooLong = new Uint8Array(2 + MAX_MESSAGE_LENGTH + 1);
        tooLong[0] = MESSAGE_VERSION;
        bad(tooLong);
      });

      it('decodes arbitrary bytes of any length to a well-formed frame or ERR_CLIENT_FRAME only', () => {
        const len = frameLength(g);
        const cap = fragmentCapacity(g);
        const check = (bytes: Uint8Array): void => {
          let fr: Frame;
          try {
            fr = decodeFrame(g, bytes);
          } catch (e) {
            assert.ok(isBackchannelError(e, 'ERR_CLIENT_FRAME'), `unexpected ${String(e)}`);
            return;
          }
          if (fr.kind === 'fragment') {
            assert.equal(fr.messageId.length, MESSAGE_ID_LENGTH);
            assert.ok(fr.count >= 1 && fr.index < fr.count);
            assert.ok(fr.data.length >= 1 && fr.data.length <= cap);
          } else {
            assert.equal(fr.kind, 'loop');
          }
        };
        // Random bytes, mostly malformed.
        fc.assert(fc.property(fc.uint8Array({ maxLength: 2 * len + 3, size: 'max' }), check), { numRuns: 200 });
        // Valid frames, some with zero padding, then a few random byte writes: near misses.
        const nearMiss = fc.tuple(
          fc.oneof(
            fc.constant(loopFrame(g)),
            fc.tuple(messageId, fc.uint8Array({ minLength: 1, maxLength: 3 * cap, size: 'max' })).map(([id, enc]) => fragmentFrames(g, id, enc)[0]!),
          ),
          fc.nat({ max: 2 * len }),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        );
        fc.assert(
          fc.property(nearMiss, ([frame, pad, writes]) => {
            const bytes = new Uint8Array(frame.length + pad);
            bytes.set(frame);
            for (const [at, v] of writes) bytes[at % bytes.length] = v;
            check(bytes);
          }),
          { numRuns: 300 },
        );
      });

      it('decodes a loop frame as {kind: "loop"}, with or without trailing zeros', () => {
        const f = loopFrame(g);
        assert.equal(f.length, frameLength(g));
        assert.equal(f[0], FRAME_LOOP);
        assert.deepEqual(decodeFrame(g, f), { kind: 'loop' });
        const padded = new Uint8Array(g.forwardPayloadLength);
        padded.set(f);
        assert.deepEqual(decodeFrame(g, padded), { kind: 'loop' });
        throwsCode(() => decodeFrame(g, f.subarray(0, f.length - 1)), 'ERR_CLIENT_FRAME');
      });

      it('rejects every single flipped bit in a loop frame', () => {
        const f = loopFrame(g);
        fc.assert(
          fc.property(fc.nat({ max: f.length - 1 }), fc.nat({ max: 7 }), (at, bit) => {
            const x = f.slice();
            x[at]! ^= 1 << bit;
            throwsCode(() => decodeFrame(g, x), 'ERR_CLIENT_FRAME');
          }),
          { numRuns: 100 },
        );
        for (let bit = 0; bit < 8; bit++) {
          const x = f.slice();
          x[0]! ^= 1 << bit;
          throwsCode(() => decodeFrame(g, x), 'ERR_CLIENT_FRAME');
        }
      });

      describe('fragment header fields', () => {
        const len = frameLength(g);
        const cap = fragmentCapacity(g);
        const INDEX = 1 + MESSAGE_ID_LENGTH;
        const COUNT = INDEX + 2;
        const LENGTH = COUNT + 2;
        const DATA = LENGTH + 2;
        const id = new Uint8Array(MESSAGE_ID_LENGTH).fill(0xaa);
        /** A lone fragment with `n` data bytes, all 0x5a (never zero, so a shorter length shows). */
        const lone = (n: number): Uint8Array => fragmentFrames(g, id, new Uint8Array(n).fill(0x5a))[0]!;
        const flipped = (f: Uint8Array, at: number, bit: number): Uint8Array => {
          const x = f.slice();
          x[at]! ^= 1 << bit;
          return x;
        };
        const rejects = (f: Uint8Array): unknown => throwsCode(() => decodeFrame(g, f), 'ERR_CLIENT_FRAME');

        it('lays a fragment out as documented', () => {
          const f = lone(3);
          assert.equal(f[0], FRAME_FRAGMENT);
          assert.deepEqual(f.subarray(1, INDEX), id);
          assert.deepEqual([...f.subarray(INDEX, DATA)], [0, 0, 0, 1, 0, 3]);
          assert.deepEqual([...f.subarray(DATA, DATA + 3)], [0x5a, 0x5a, 0x5a]);
          assert.ok(f.subarray(DATA + 3).every((b) => b === 0));
          const d = decodeFrame(g, f);
          assert.ok(d.kind === 'fragment' && d.index === 0 && d.count === 1 && d.data.length === 3);
        });

        it('rejects a flipped bit in the kind', () => {
          for (let bit = 0; bit < 8; bit++) rejects(flipped(lone(5), 0, bit));
        });

        it('rejects an index at or past the count', () => {
          const f = lone(5); // index 0, count 1
          for (let bit = 0; bit < 8; bit++) {
            rejects(flipped(f, INDEX, bit)); // index ≥ 256
            rejects(flipped(f, INDEX + 1, bit)); // index in 1..128 ≥ count 1
          }
          // The last of three fragments, index raised to the count.
          const frames = fragmentFrames(g, id, new Uint8Array(2 * cap + 1).fill(1));
          const third = frames[2]!;
          assert.deepEqual([...third.subarray(INDEX, LENGTH)], [0, 2, 0, 3]);
          rejects(flipped(third, INDEX + 1, 0)); // index 3 of 3
          rejects(flipped(third, COUNT + 1, 0)); // index 2 of 2
        });

        it('rejects a zero count', () => {
          rejects(flipped(lone(5), COUNT + 1, 0)); // count 1 → 0
          const f = lone(5);
          f[COUNT + 1] = 0;
          f[INDEX + 1] = 0;
          rejects(f);
        });

        it('rejects a data length of 0 or past the capacity', () => {
          rejects(flipped(lone(1), LENGTH + 1, 0)); // 1 → 0
          // Every bit of the high length byte that takes 5 past the capacity (the top bit always does).
          let past = 0;
          for (let bit = 0; bit < 8; bit++) {
            if ((256 << bit) + 5 > cap) {
              rejects(flipped(lone(5), LENGTH, bit));
              past++;
            }
          }
          assert.ok(past >= 1);
          const f = lone(5);
          f[LENGTH] = (cap + 1) >>> 8;
          f[LENGTH + 1] = (cap + 1) & 0xff;
          rejects(f);
          f[LENGTH] = cap >>> 8;
          f[LENGTH + 1] = cap & 0xff;
          const d = decodeFrame(g, f); // the zeros after the data become data
          assert.ok(d.kind === 'fragment' && d.data.length === cap);
        });

        it('rejects a shortened data length that leaves data bytes as padding', () => {
          for (let bit = 0; bit < 8; bit++) rejects(flipped(lone(0xff), LENGTH + 1, bit)); // 255 → 255 - 2^bit
        });

        it('rejects any flipped bit in the padding, in the frame or after it', () => {
          const f = lone(7);
          fc.assert(
            fc.property(fc.integer({ min: DATA + 7, max: len - 1 }), fc.nat({ max: 7 }), (at, bit) => {
              rejects(flipped(f, at, bit));
            }),
            { numRuns: 100 },
          );
          const padded = new Uint8Array(len + 64);
          padded.set(f);
          const d = decodeFrame(g, padded);
          assert.ok(d.kind === 'fragment' && d.data.length === 7);
          fc.assert(
            fc.property(fc.integer({ min: len, max: len + 63 }), fc.nat({ max: 7 }), (at, bit) => {
              rejects(flipped(padded, at, bit));
            }),
            { numRuns: 50 },
          );
        });

        it('accepts a frame followed by zeros, as a SURB reply payload carries it', () => {
          fc.assert(
            fc.property(messageId, fc.uint8Array({ minLength: 1, maxLength: cap, size: 'max' }), fc.nat({ max: 2000 }), (mid, data, extra) => {
              const f = fragmentFrames(g, mid, data)[0]!;
              const padded = new Uint8Array(len + extra);
              padded.set(f);
              const d = decodeFrame(g, padded);
              assert.equal(d.kind, 'fragment');
              if (d.kind !== 'fragment') return;
              assert.deepEqual(d.messageId, mid);
              assert.deepEqual(d.data, data);
              if (extra > 0) {
                padded[len + (extra - 1)] = 1;
                rejects(padded);
              }
            }),
            { numRuns: 50 },
          );
        });
      });
    });
  }

  it('refuses more than MAX_FRAGMENTS fragments with ERR_CLIENT_MESSAGE', () => {
    const least = geometryFromUserPayload(5, ENVELOPE_OVERHEAD + FRAGMENT_HEADER_LENGTH + 1, true);
    const id = new Uint8Array(MESSAGE_ID_LENGTH);
    throwsCode(() => fragmentFrames(least, id, new Uint8Array(MAX_FRAGMENTS + 1).fill(1)), 'ERR_CLIENT_MESSAGE');
    const frames = fragmentFrames(least, id, new Uint8Array(MAX_FRAGMENTS).fill(1));
    assert.equal(frames.length, MAX_FRAGMENTS);
    const last = decodeFrame(least, frames[MAX_FRAGMENTS - 1]!);
    assert.ok(last.kind === 'fragment' && last.index === MAX_FRAGMENTS - 1 && last.count === MAX_FRAGMENTS);
  });
});

// ---------------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------------

describe('client envelopes', () => {
  interface Suite {
    readonly name: string;
    readonly crypto: CryptoBackend;
    readonly aead: NoiseAead;
  }
  const suites: readonly Suite[] = [
    { name: 'node', crypto: nodeBackend, aead: nodeNoiseCrypto.aead('ChaChaPoly') },
    { name: 'portable', crypto: portableBackend, aead: portableNoiseCrypto.aead('ChaChaPoly') },
  ];
  const frame = fc.uint8Array({ maxLength: 2100, size: 'max' });
  const keypair = (c: CryptoBackend): { priv: Uint8Array; pub: Uint8Array } => {
    const priv = c.randomBytes(32);
    return { priv, pub: c.x25519Base(priv) };
  };

  for (const s of suites) {
    describe(s.name, () => {
      it('round-trips, with ENVELOPE_OVERHEAD bytes more than the frame', () => {
        assert.equal(ENVELOPE_OVERHEAD, 48);
        fc.assert(
          fc.property(frame, (f) => {
            const k = keypair(s.crypto);
            const sealed = seal(s.crypto, s.aead, k.pub, f);
            assert.equal(sealed.length, f.length + ENVELOPE_OVERHEAD);
            assert.deepEqual(open(s.crypto, s.aead, k.priv, k.pub, sealed), f);
          }),
          { numRuns: 40 },
        );
      });

      it('seals the same frame differently every time', () => {
        fc.assert(
          fc.property(frame, (f) => {
            const k = keypair(s.crypto);
            const a = seal(s.crypto, s.aead, k.pub, f);
            const b = seal(s.crypto, s.aead, k.pub, f);
            assert.notDeepEqual(a, b);
            assert.notDeepEqual(a.subarray(0, 32), b.subarray(0, 32));
            assert.deepEqual(open(s.crypto, s.aead, k.priv, k.pub, a), f);
            assert.deepEqual(open(s.crypto, s.aead, k.priv, k.pub, b), f);
          }),
          { numRuns: 20 },
        );
      });

      it('gives null for the wrong private key or the wrong mailbox', () => {
        fc.assert(
          fc.property(frame, (f) => {
            const k = keypair(s.crypto);
            const other = keypair(s.crypto);
            const sealed = seal(s.crypto, s.aead, k.pub, f);
            assert.equal(open(s.crypto, s.aead, other.priv, k.pub, sealed), null);
            assert.equal(open(s.crypto, s.aead, other.priv, other.pub, sealed), null);
            assert.equal(open(s.crypto, s.aead, k.priv, other.pub, sealed), null);
          }),
          { numRuns: 20 },
        );
      });

      it('gives null for any flipped bit, the ephemeral key included', () => {
        const k = keypair(s.crypto);
        fc.assert(
          fc.property(frame, fc.nat(), fc.nat({ max: 7 }), (f, at, bit) => {
            const sealed = seal(s.crypto, s.aead, k.pub, f);
            const x = sealed.slice();
            x[at % x.length]! ^= 1 << bit;
            assert.equal(open(s.crypto, s.aead, k.priv, k.pub, x), null);
          }),
          { numRuns: 100 },
        );
        // The top bit of the ephemeral key, which X25519 ignores, and each bit of the tag.
        const sealed = seal(s.crypto, s.aead, k.pub, te.encode('frame'));
        for (const [at, bit] of [[31, 7], [0, 0], [sealed.length - 1, 7], [sealed.length - 16, 0]] as const) {
          const x = sealed.slice();
          x[at]! ^= 1 << bit;
          assert.equal(open(s.crypto, s.aead, k.priv, k.pub, x), null);
        }
      });

      it('gives null for a truncated or empty input', () => {
        const k = keypair(s.crypto);
        fc.assert(
          fc.property(frame, fc.integer({ min: 1, max: 4000 }), (f, cut) => {
            const sealed = seal(s.crypto, s.aead, k.pub, f);
            assert.equal(open(s.crypto, s.aead, k.priv, k.pub, sealed.subarray(0, Math.max(0, sealed.length - cut))), null);
          }),
          { numRuns: 50 },
        );
        for (const n of [0, 1, 31, 32, 47]) assert.equal(open(s.crypto, s.aead, k.priv, k.pub, new Uint8Array(n)), null);
        // All-zero input: an ephemeral key of a low-order point.
        assert.equal(open(s.crypto, s.aead, k.priv, k.pub, new Uint8Array(ENVELOPE_OVERHEAD + 10)), null);
      });
    });
  }

  it('opens across backends, both ways', () => {
    const [n, p] = suites as [Suite, Suite];
    fc.assert(
      fc.property(frame, fc.boolean(), (f, nodeSeals) => {
        const [from, to] = nodeSeals ? [n, p] : [p, n];
        const k = keypair(to.crypto);
        const sealed = seal(from.crypto, from.aead, k.pub, f);
        assert.deepEqual(open(to.crypto, to.aead, k.priv, k.pub, sealed), f);
        assert.deepEqual(open(from.crypto, from.aead, k.priv, k.pub, sealed), f);
      }),
      { numRuns: 40 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Poisson clocks
// ---------------------------------------------------------------------------------------------

describe('Poisson clocks', () => {
  it('draws uniforms in (0, 1], at both extremes too', () => {
    const zeros = uniform01((n) => new Uint8Array(n));
    const ones = uniform01((n) => new Uint8Array(n).fill(0xff));
    assert.equal(zeros(), 2 ** -53);
    assert.ok(zeros() > 0);
    assert.equal(ones(), 1);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 7, maxLength: 7 }), (b) => {
        const u = uniform01((n) => b.slice(0, n))();
        assert.ok(u > 0 && u <= 1, `u = ${u}`);
      }),
      { numRuns: 500 },
    );
    const u = uniform01(nodeBackend.randomBytes);
    for (let i = 0; i < 1000; i++) {
      const x = u();
      assert.ok(x > 0 && x <= 1);
    }
  });

  it('draws exponential gaps that are finite, non-negative and of the right mean', () => {
    assert.ok(exponentialMs(() => 1, 100) === 0); // -0, which a timer treats as 0
    const worst = exponentialMs(uniform01((n) => new Uint8Array(n)), 100);
    assert.ok(Number.isFinite(worst) && worst > 0);
    const u = uniform01(seededBackend(nodeBackend, te.encode('exponential mean')).randomBytes);
    for (const mean of [1, 250, 60_000]) {
      let sum = 0;
      const n = 20_000;
      for (let i = 0; i < n; i++) {
        const x = exponentialMs(u, mean);
        assert.ok(Number.isFinite(x) && x >= 0);
        sum += x;
      }
      const m = sum / n;
      assert.ok(Math.abs(m - mean) <= 0.05 * mean, `mean ${m} for ${mean}`);
    }
  });

  const u01For = (label: string): (() => number) => uniform01(seededBackend(nodeBackend, te.encode(label)).randomBytes);

  it('ticks at 10/s for 1000 virtual seconds about 10000 times', async () => {
    const clock = new ManualClock(0);
    let ticks = 0;
    let last = -1;
    const pc = new PoissonClock(clock, () => 10, u01For('rate 10'), () => {
      assert.ok(clock.now() >= last);
      last = clock.now();
      ticks++;
    });
    assert.equal(pc.running, false);
    pc.start();
    pc.start(); // a second start changes nothing
    assert.equal(pc.running, true);
    await clock.advanceTo(1_000_000);
    pc.stop();
    assert.ok(Math.abs(ticks - 10_000) <= 300, `${ticks} ticks`);
    assert.equal(pc.running, false);
  });

  it('stops for good when stop() is called inside onTick', async () => {
    const clock = new ManualClock(0);
    let ticks = 0;
    const pc: PoissonClock = new PoissonClock(clock, () => 5, u01For('stop'), () => {
      ticks++;
      if (ticks === 3) pc.stop();
    });
    pc.start();
    await clock.advanceTo(60_000);
    assert.equal(ticks, 3);
    assert.equal(pc.running, false);
    await clock.advanceTo(120_000);
    assert.equal(ticks, 3);
    // And it can be started again.
    pc.start();
    await clock.advanceTo(180_000);
    assert.ok(ticks > 3);
    pc.stop();
    const after = ticks;
    await clock.advanceTo(240_000);
    assert.equal(ticks, after);
  });

  it('does not tick while the rate is 0, and resumes when it rises', async () => {
    const clock = new ManualClock(0);
    let rate = 0;
    let ticks = 0;
    const pc = new PoissonClock(clock, () => rate, u01For('zero'), () => ticks++);
    pc.start();
    await clock.advanceTo(100_000);
    assert.equal(ticks, 0);
    assert.equal(pc.running, true);
    rate = 10;
    await clock.advanceTo(200_000);
    pc.stop();
    assert.ok(ticks > 800 && ticks < 1200, `${ticks} ticks`);
  });

  it('re-reads the rate for every gap (1/s, then 50/s)', async () => {
    const clock = new ManualClock(0);
    let rate = 1;
    const ticks: number[] = [];
    const pc = new PoissonClock(clock, () => rate, u01For('switch'), () => ticks.push(clock.now()));
    pc.start();
    await clock.advanceTo(500_000);
    const slow = ticks.length;
    assert.ok(Math.abs(slow - 500) <= 80, `${slow} ticks at 1/s`);
    rate = 50;
    await clock.advanceTo(600_000);
    pc.stop();
    // The gap drawn before the switch still runs at the old rate; everything after follows the new one.
    const fast = ticks.filter((t) => t > 510_000).length;
    assert.ok(Math.abs(fast - 4500) <= 250, `${fast} ticks at 50/s over 90 s`);
  });
});
