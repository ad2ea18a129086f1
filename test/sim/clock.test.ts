// The simulator's clock and its small helpers: events run by time, in the order they were
// scheduled among equal times (those scheduled for the current time included), cancelled ones
// skipped; slabs hand out disjoint zeroed arrays; the seeded stream's integers are randomIntFrom's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SimClock } from '../../src/sim/clock.js';
import { Slab } from '../../src/sim/slab.js';
import { seededStream } from '../../src/sim/random.js';
import { randomIntFrom } from '../../src/pki/route.js';
import { nodeBackend } from '../../src/crypto/node.js';

test('events run by time, in scheduling order among equal times, whether scheduled ahead or for the current time', async () => {
  // Each event may schedule children at offsets 0 (the current time) or later; the reference is a
  // stable sort by time of every scheduling, in the order the schedulings happened.
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(fc.constantFrom(0, 0, 1, 2, 5), { maxLength: 3 }), { minLength: 1, maxLength: 60 }), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 8 }), async (children, roots) => {
      const clock = new SimClock(100);
      const ran: number[] = [];
      const scheduled: { at: number; id: number; seq: number }[] = [];
      let next = 0;
      let seq = 0;
      const schedule = (at: number): void => {
        const id = next++;
        scheduled.push({ at, id, seq: seq++ });
        clock.at(at, () => {
          ran.push(id);
          for (const off of children[id % children.length]!) if (next < 200) schedule(clock.now() + off);
        }, undefined);
      };
      for (const r of roots) schedule(100 + r);
      await clock.run(1_000);
      // Replay the reference: repeatedly take the earliest (time, scheduling order) among those
      // scheduled so far and not run.
      const expected = scheduled
        .filter((s) => s.at <= 1_000)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)
        .map((s) => s.id);
      assert.deepEqual(ran, expected);
    }),
  );
});

test('a cancelled event does not run or count, and run() stops at its bound', async () => {
  const clock = new SimClock(0);
  const ran: string[] = [];
  clock.at(0, () => ran.push('now'), undefined);
  const h = clock.at(0, () => ran.push('cancelled now'), undefined);
  clock.clearTimer(h);
  clock.at(5, () => ran.push('later'), undefined);
  clock.clearTimer(clock.at(5, () => ran.push('cancelled later'), undefined));
  clock.at(20, () => ran.push('beyond'), undefined);
  await clock.run(10);
  assert.deepEqual(ran, ['now', 'later']);
  assert.equal(clock.events, 2);
  assert.equal(clock.now(), 10);
  assert.equal(clock.pending, 1);
  await clock.run(20);
  assert.deepEqual(ran, ['now', 'later', 'beyond']);
});

test('slabs give zeroed arrays that never overlap, and a fresh one past their size', () => {
  const slab = new Slab(256);
  const arrays = [3, 100, 64, 1, 90, 200, 300].map((n) => slab.take(n));
  for (const a of arrays) {
    assert.ok(a.every((b) => b === 0));
    a.fill(0xff);
  }
  const ranges = arrays.filter((a) => a.buffer.byteLength === 256).map((a) => [a.byteOffset, a.byteOffset + a.length] as const);
  for (const [i, [s1, e1]] of ranges.entries()) {
    for (const [j, [s2, e2]] of ranges.entries()) if (i !== j && arrays[i]!.buffer === arrays[j]!.buffer) assert.ok(e1 <= s2 || e2 <= s1);
  }
  assert.equal(arrays.at(-1)!.length, 300);
  assert.throws(() => new Slab(0), RangeError);
});

test('the seeded stream draws the integers randomIntFrom would from the same bytes, and the same bytes after', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 2 ** 32 }), { maxLength: 50 }), fc.string(), (ns, seed) => {
      const a = seededStream(nodeBackend, seed);
      const b = seededStream(nodeBackend, seed);
      const viaBytes = randomIntFrom(b.bytes);
      for (const n of ns) assert.equal(a.int(n), viaBytes(n));
      assert.deepEqual(a.bytes(16), b.bytes(16));
    }),
    { numRuns: 30 },
  );
});
