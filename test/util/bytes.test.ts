// idKey: the compact Map key for identifiers looked up per packet (peers, next hops, rate limits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { idKey } from '../../src/util/bytes.js';

test('idKey is one character per byte, and gives the bytes back', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const k = idKey(all);
  assert.equal(k.length, 256);
  assert.deepEqual(Uint8Array.from(k, (ch) => ch.charCodeAt(0)), all);
});

test('idKey: equal bytes give equal keys, different bytes different keys, views included', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (a, b) => {
      const framed = new Uint8Array(a.length + 7);
      framed.set(a, 3);
      assert.equal(idKey(framed.subarray(3, 3 + a.length)), idKey(a));
      const same = a.length === b.length && a.every((x, i) => x === b[i]);
      assert.equal(idKey(a) === idKey(b), same);
    }),
  );
});
