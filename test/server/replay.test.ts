// The replay cache: verdicts against a Set model, the bound (never grown past) and the overflow
// filter beyond it (replays always caught, fresh tags refused at the stated rate), growth by
// doubling, clearing, and one cache per epoch.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nodeBackend } from '../../src/crypto/node.js';
import { BLOOM_BITS_PER_ENTRY, MAX_REPLAY_ENTRIES, REPLAY_ENTRY_LENGTH, ReplayCache, ReplayCaches } from '../../src/server/replay.js';

function tag(): Uint8Array {
  return nodeBackend.randomBytes(32);
}

/** A tag whose kept prefix is the 4-byte big-endian `n` followed by zeros. */
function tagOf(n: number): Uint8Array {
  const t = new Uint8Array(32);
  new DataView(t.buffer).setUint32(0, n);
  return t;
}

describe('ReplayCache', () => {
  test('a tag is fresh once and a replay after that', () => {
    const c = new ReplayCache({ maxEntries: 16 });
    const a = tag();
    const b = tag();
    assert.equal(c.check(a), 'fresh');
    assert.equal(c.check(b), 'fresh');
    assert.equal(c.check(a), 'replay');
    assert.equal(c.check(a.slice()), 'replay');
    assert.equal(c.check(b), 'replay');
    assert.equal(c.size, 2);
  });

  test('only the first 16 bytes of a tag are compared', () => {
    const c = new ReplayCache({ maxEntries: 16 });
    const a = tag();
    const b = a.slice();
    b[REPLAY_ENTRY_LENGTH] = b[REPLAY_ENTRY_LENGTH]! ^ 1;
    b[31] = b[31]! ^ 0x80;
    assert.equal(c.check(a), 'fresh');
    assert.equal(c.check(b), 'replay');
    const d = a.slice();
    d[REPLAY_ENTRY_LENGTH - 1] = d[REPLAY_ENTRY_LENGTH - 1]! ^ 1;
    assert.equal(c.check(d), 'fresh');
  });

  test('the all-zero tag, which marks empty slots inside, is remembered like any other', () => {
    const c = new ReplayCache({ maxEntries: 2 });
    assert.equal(c.check(new Uint8Array(32)), 'fresh');
    assert.equal(c.check(new Uint8Array(32)), 'replay');
    assert.equal(c.size, 1);
    assert.equal(c.check(tag()), 'fresh');
    const zeroPrefix = new Uint8Array(32);
    zeroPrefix[20] = 7;
    assert.equal(c.check(zeroPrefix), 'replay');
  });

  test('verdicts match a Set model for any sequence of tags, with growth along the way', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 600 }), fc.integer({ min: 1, max: 400 }), (seq, max) => {
        const c = new ReplayCache({ maxEntries: max, initialEntries: 1 });
        const model = new Set<number>();
        for (const n of seq) {
          const verdict = c.check(tagOf(n));
          if (model.has(n)) assert.equal(verdict, 'replay', 'a replay is never waved through');
          else if (model.size < max) assert.equal(verdict, 'fresh', 'exact below the bound');
          else assert.notEqual(verdict, 'full', 'beyond it: fresh, or a false positive of the filter');
          if (verdict === 'fresh') model.add(n);
        }
        assert.equal(c.size + c.overflowed, model.size);
        assert.ok(c.size <= max);
        // The all-zero tag (n = 0) lives in a flag, not in a slot.
        assert.ok(c.slots >= 2 * (c.size - (model.has(0) && c.size > 0 ? 1 : 0)), 'load factor at or under 1/2');
      }),
      { numRuns: 200 },
    );
  });

  test('beyond maxEntries tags go to the overflow filter: replays are still caught, fresh tags pass but for its stated rate', () => {
    const n = 20_000;
    const c = new ReplayCache({ maxEntries: n });
    const exact = Array.from({ length: n }, tag);
    for (const t of exact) assert.equal(c.check(t), 'fresh');
    assert.equal(c.falsePositiveRate, 0);
    const over = Array.from({ length: n }, tag);
    let refused = 0;
    for (const t of over) if (c.check(t) !== 'fresh') refused++;
    assert.ok(refused <= 1, `${refused} fresh tags refused at the filter's design load`);
    for (const t of [...exact, ...over.slice(0, 2000)]) assert.equal(c.check(t), 'replay');
    assert.equal(c.size, n);
    assert.ok(c.falsePositiveRate < 1e-5, `rate ${c.falsePositiveRate}`);
    // Four times the filter's design load: about 28% of fresh tags refused, and still every replay caught.
    for (let i = 0; i < 3 * n; i++) c.check(tag());
    const probes = Array.from({ length: 2000 }, tag);
    const share = probes.filter((t) => c.check(t) === 'replay').length / probes.length;
    assert.ok(share > 0.18 && share < 0.4, `false-positive share ${share} at four times the load`);
    assert.ok(Math.abs(c.falsePositiveRate - share) < 0.08, `stated ${c.falsePositiveRate}, measured ${share}`);
    for (const t of over.slice(0, 2000)) assert.equal(c.check(t), 'replay');
  });

  test('the table doubles as it fills, up to twice the bound rounded to a power of two and no further', () => {
    const max = 3000;
    const c = new ReplayCache({ maxEntries: max, initialEntries: 8 });
    assert.equal(c.slots, 16);
    const seen: number[] = [c.slots];
    for (let i = 0; i < max; i++) {
      c.check(tag());
      if (c.slots !== seen[seen.length - 1]) seen.push(c.slots);
      assert.ok(c.size <= c.slots / 2, 'load factor stays at or under 1/2');
    }
    assert.deepEqual(seen, [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]);
    assert.equal(c.byteLength, 8192 * REPLAY_ENTRY_LENGTH);
    for (let i = 0; i < 1000; i++) assert.notEqual(c.check(tag()), 'full');
    assert.equal(c.slots, 8192);
    assert.equal(c.byteLength, 8192 * REPLAY_ENTRY_LENGTH + Math.ceil((max * BLOOM_BITS_PER_ENTRY) / 32) * 4);
    assert.equal(c.size, max);
    assert.ok(c.overflowed >= 999);
  });

  test('clear forgets every tag and shrinks the table back', () => {
    const c = new ReplayCache({ maxEntries: 1000, initialEntries: 4 });
    const tags = Array.from({ length: 500 }, tag);
    for (const t of tags) c.check(t);
    assert.ok(c.slots > 16);
    c.clear();
    assert.equal(c.size, 0);
    assert.equal(c.slots, 16);
    for (const t of tags) assert.equal(c.check(t), 'fresh');
  });

  test('two caches with different hash keys agree on every verdict', () => {
    const a = new ReplayCache({ maxEntries: 64, hashKey: new Uint8Array(16) });
    const b = new ReplayCache({ maxEntries: 64, hashKey: new Uint8Array(16).fill(0xa5) });
    const tags = Array.from({ length: 80 }, tag);
    for (const t of [...tags, ...tags]) assert.equal(a.check(t), b.check(t));
  });

  test('bad arguments throw TypeError or RangeError', () => {
    assert.throws(() => new ReplayCache({ maxEntries: 0 }), RangeError);
    assert.throws(() => new ReplayCache({ maxEntries: MAX_REPLAY_ENTRIES + 1 }), RangeError);
    assert.throws(() => new ReplayCache({ maxEntries: 1.5 }), TypeError);
    assert.throws(() => new ReplayCache({ maxEntries: 10, hashKey: new Uint8Array(15) }), RangeError);
    const c = new ReplayCache(10);
    assert.equal(c.maxEntries, 10);
    assert.throws(() => c.check(new Uint8Array(16)), RangeError);
    assert.throws(() => c.check('x' as unknown as Uint8Array), TypeError);
  });
});

describe('ReplayCaches', () => {
  test('each epoch has its own cache, made on first use', () => {
    const caches = new ReplayCaches({ maxEntries: 10 });
    const t = tag();
    assert.equal(caches.forEpoch(5).check(t), 'fresh');
    assert.equal(caches.forEpoch(6).check(t), 'fresh');
    assert.equal(caches.forEpoch(5).check(t), 'replay');
    assert.equal(caches.forEpoch(5), caches.forEpoch(5));
    assert.deepEqual(caches.epochs(), [5, 6]);
    assert.equal(caches.size, 2);
    assert.ok(caches.byteLength > 0);
  });

  test('retain drops the caches of every other epoch', () => {
    const caches = new ReplayCaches(100);
    const t = tag();
    for (const e of [1, 2, 3, 4]) caches.forEpoch(e).check(t);
    const kept = caches.forEpoch(3);
    caches.retain([3, 4, 9]);
    assert.deepEqual(caches.epochs(), [3, 4]);
    assert.equal(caches.forEpoch(3), kept);
    assert.equal(caches.forEpoch(3).check(t), 'replay');
    assert.equal(caches.forEpoch(1).check(t), 'fresh', 'a dropped epoch starts empty');
    caches.clear();
    assert.deepEqual(caches.epochs(), []);
    assert.equal(caches.size, 0);
  });

  test('bad options fail at construction, bad epochs at lookup', () => {
    assert.throws(() => new ReplayCaches({ maxEntries: -1 }), RangeError);
    const caches = new ReplayCaches(4);
    assert.throws(() => caches.forEpoch(-1), RangeError);
    assert.throws(() => caches.forEpoch(0.5), TypeError);
  });

  test('the bound applies per epoch', () => {
    const caches = new ReplayCaches({ maxEntries: 3 });
    for (let i = 0; i < 3; i++) {
      const t = tag();
      assert.equal(caches.forEpoch(1).check(t), 'fresh');
      assert.equal(caches.forEpoch(2).check(t), 'fresh');
    }
    assert.equal(caches.forEpoch(1).check(tag()), 'fresh');
    assert.equal(caches.forEpoch(2).check(tag()), 'fresh');
    assert.equal(caches.forEpoch(1).overflowed, 1);
    assert.equal(caches.forEpoch(1).size, 3);
  });
});

describe('the replay journal on disk', () => {
  test('a restarted node reloads the tags of the epochs it keeps; retired epochs lose their files; a torn record is ignored', async () => {
    const { mkdtempSync, readdirSync, rmSync, appendFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { openReplayJournal } = await import('../../src/server/replay-journal.js');
    const dir = mkdtempSync(join(tmpdir(), 'bc-journal-'));
    try {
      let journal = openReplayJournal(dir);
      let caches = new ReplayCaches({ maxEntries: 100 }, journal);
      const seen = Array.from({ length: 50 }, tag);
      for (const t of seen) assert.equal(caches.check(7, t), 'fresh');
      assert.equal(caches.check(8, seen[0]!), 'fresh', 'epochs are apart');
      assert.ok(journal.dirty);
      caches.beforeSend();
      assert.equal(journal.dirty, false);
      caches.close();
      journal.close();
      appendFileSync(join(dir, '7.tags'), new Uint8Array(5)); // a record cut short by a crash
      journal = openReplayJournal(dir);
      caches = new ReplayCaches({ maxEntries: 100 }, journal);
      for (const t of seen) assert.equal(caches.check(7, t), 'replay');
      assert.equal(caches.forEpoch(7).size, 50);
      assert.equal(caches.check(7, tag()), 'fresh');
      caches.retain([8]);
      assert.deepEqual(readdirSync(dir), ['8.tags']);
      assert.equal(caches.check(8, seen[0]!), 'replay');
      journal.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
