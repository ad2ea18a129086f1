// IdMap: a map by byte-string id, the same answers as a Map keyed by idKey, ids sharing their
// first bytes included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IdMap } from '../../src/util/id-map.js';
import { idKey } from '../../src/util/bytes.js';

test('IdMap answers as a Map keyed by idKey, through sets, deletes and lookups', () => {
  // Ids drawn from a few prefixes, so that many share a bucket; lengths vary, short ones too.
  const id = fc.tuple(fc.constantFrom(0, 1, 255), fc.uint8Array({ maxLength: 6 })).map(([p, rest]) => Uint8Array.from([p, p, p, ...rest]));
  const op = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), id, value: fc.integer() }),
    fc.record({ kind: fc.constant('delete' as const), id }),
    fc.record({ kind: fc.constant('get' as const), id }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const ours = new IdMap<number>();
      const ref = new Map<string, number>();
      for (const o of ops) {
        const k = idKey(o.id);
        if (o.kind === 'set') {
          ours.set(o.id, o.value);
          ref.set(k, o.value);
        } else if (o.kind === 'delete') {
          assert.equal(ours.delete(o.id), ref.delete(k));
        } else {
          assert.equal(ours.get(o.id), ref.get(k));
          assert.equal(ours.has(o.id), ref.has(k));
        }
        assert.equal(ours.size, ref.size);
      }
      assert.deepEqual(new Map(Array.from(ours.entries(), ([i, v]) => [idKey(i), v])), ref);
    }),
  );
});

test('IdMap keeps its own copy of an id, and finds it through any view with the same bytes', () => {
  const m = new IdMap<string>();
  const a = new Uint8Array(32).fill(7);
  m.set(a, 'seven');
  a.fill(8);
  assert.equal(m.get(new Uint8Array(32).fill(7)), 'seven');
  assert.equal(m.get(a), undefined);
  const framed = new Uint8Array(40).fill(7);
  assert.equal(m.get(framed.subarray(4, 36)), 'seven');
  m.clear();
  assert.equal(m.size, 0);
  assert.equal(m.get(framed.subarray(4, 36)), undefined);
});
