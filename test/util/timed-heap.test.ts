// TimedHeap: items come out by due time, first in first out among equal times, whatever the
// interleaving of pushes and pops; the order is a stable sort's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TimedHeap } from '../../src/util/timed-heap.js';

test('pops come out as a stable sort by due time, under any interleaving of pushes and pops', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constant(-1)), { maxLength: 400 }), (ops) => {
      const heap = new TimedHeap<number>();
      // The reference: what is held, in push order; a pop takes the first of the earliest.
      const held: { due: number; id: number }[] = [];
      let id = 0;
      for (const op of ops) {
        if (op >= 0) {
          heap.push(op, id);
          held.push({ due: op, id: id++ });
        } else if (held.length > 0) {
          let best = 0;
          for (let i = 1; i < held.length; i++) if (held[i]!.due < held[best]!.due) best = i;
          assert.equal(heap.nextDue, held[best]!.due);
          assert.equal(heap.pop(), held.splice(best, 1)[0]!.id);
        }
        assert.equal(heap.size, held.length);
      }
      if (held.length === 0) assert.equal(heap.nextDue, undefined);
    }),
  );
});

test('fractional and far apart due times keep their order, and the heap grows past its first size', () => {
  const heap = new TimedHeap<string>();
  const dues = Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) / 3 + (i % 2 === 0 ? 1e12 : 0));
  dues.forEach((d, i) => heap.push(d, `${d}:${i}`));
  const out: number[] = [];
  while (heap.size > 0) out.push(Number(heap.pop().split(':')[0]));
  assert.deepEqual(out, [...dues].sort((a, b) => a - b));
});
