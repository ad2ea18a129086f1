// The unwrap pool, inline (0 workers) and on 2 worker threads: the same outcomes as Sphinx.unwrap
// for forward and final hops, key order and MAC fall-through, no_key, tampering, the in-flight
// bound, key deletion, close, and a worker that dies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import type { WorkerOptions } from 'node:worker_threads';
import { nodeBackend } from '../../src/crypto/node.js';
import { UnwrapPool } from '../../src/server/unwrap-pool.js';
import { MAX_EPOCHS_PER_UNWRAP } from '../../src/server/unwrap.js';
import type { UnwrapOutcome } from '../../src/server/unwrap.js';
import { defaultGeometry, Sphinx } from '../../src/sphinx/index.js';
import type { PathHop, UnwrapResult } from '../../src/sphinx/index.js';

const c = nodeBackend;
const geometry = defaultGeometry();
const sphinx = new Sphinx(geometry, c);

interface Hop {
  id: Uint8Array;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

const hops: Hop[] = Array.from({ length: geometry.hops }, () => {
  const privateKey = c.randomBytes(32);
  return { id: c.randomBytes(32), privateKey, publicKey: c.x25519Base(privateKey) };
});
/** In these tests hop i's key is loaded under epoch EPOCH0 + i: one pool plays every hop. */
const EPOCH0 = 100;

function path(surbId?: Uint8Array): PathHop[] {
  return hops.map((h, i) => ({
    id: h.id,
    publicKey: h.publicKey,
    commands:
      i < hops.length - 1
        ? [{ type: 'nodeDelay' as const, delayMs: 17 * (i + 1) }]
        : [{ type: 'recipient' as const, id: c.randomBytes(32) }, ...(surbId ? [{ type: 'surbReply' as const, id: surbId }] : [])],
  }));
}

/** A packet and what each hop sees of it: the packet that arrives at hop i, and Sphinx.unwrap's result there. */
function journey(surbId?: Uint8Array): { arriving: Uint8Array[]; expected: UnwrapResult[] } {
  const arriving: Uint8Array[] = [sphinx.createPacket(path(surbId), c.randomBytes(geometry.forwardPayloadLength))];
  const expected: UnwrapResult[] = [];
  for (let i = 0; i < hops.length; i++) {
    const r = sphinx.unwrap(hops[i]!.privateKey, arriving[i]!);
    expected.push(r);
    if (r.kind === 'forward') arriving.push(r.packet);
  }
  return { arriving, expected };
}

function withEpoch(r: UnwrapResult, epoch: number): UnwrapOutcome {
  return { ...r, epoch };
}

function loadAllHops(pool: UnwrapPool): void {
  hops.forEach((h, i) => pool.setKey(EPOCH0 + i, h.privateKey));
}

/** Waits a macrotask turn or two, so that a pool's batch has been posted. */
/** A spawnWorker that keeps every worker it starts, so that a test can end one as a crash would. */
function spawnRecorder(): { workers: Worker[]; spawn: (url: URL, options: WorkerOptions) => Worker } {
  const workers: Worker[] = [];
  return {
    workers,
    spawn: (url, options) => {
      const w = new Worker(url, options);
      workers.push(w);
      return w;
    },
  };
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

for (const workers of [0, 2]) {
  describe(`UnwrapPool with ${workers} workers`, () => {
    let pool: UnwrapPool;
    before(async () => {
      pool = new UnwrapPool({ geometry, workers, maxInFlight: 256 });
      await pool.ready();
      loadAllHops(pool);
    });
    after(async () => {
      await pool.close();
    });

    test('every hop of a packet gets what Sphinx.unwrap gives, with the epoch of the key used', async () => {
      for (const surbId of [undefined, c.randomBytes(16)]) {
        const { arriving, expected } = journey(surbId);
        const got = await Promise.all(arriving.map((p, i) => pool.unwrap(p, [EPOCH0 + i])));
        assert.deepEqual(
          got,
          expected.map((r, i) => withEpoch(r, EPOCH0 + i)),
        );
        assert.equal(got[hops.length - 1]!.kind, 'final');
      }
      assert.equal(pool.inFlight, 0);
    });

    test('many packets submitted at once come back matched to their promises', async () => {
      const journeys = Array.from({ length: 12 }, () => journey());
      const pending: Promise<UnwrapOutcome>[] = [];
      const want: UnwrapOutcome[] = [];
      for (const j of journeys) {
        j.arriving.forEach((p, i) => {
          pending.push(pool.unwrap(p, [EPOCH0 + i])!);
          want.push(withEpoch(j.expected[i]!, EPOCH0 + i));
        });
      }
      assert.equal(pool.inFlight, pending.length);
      assert.deepEqual(await Promise.all(pending), want);
    });

    test('keys are tried in the order given; a MAC failure moves on to the next key', async () => {
      const { arriving, expected } = journey();
      const p = arriving[1]!;
      assert.deepEqual(await pool.unwrap(p, [EPOCH0, EPOCH0 + 1]), withEpoch(expected[1]!, EPOCH0 + 1));
      assert.deepEqual(await pool.unwrap(p, [999, EPOCH0 + 2, EPOCH0 + 1]), withEpoch(expected[1]!, EPOCH0 + 1));
      assert.deepEqual(await pool.unwrap(p, [EPOCH0 + 1, EPOCH0]), withEpoch(expected[1]!, EPOCH0 + 1));
    });

    test('a packet under the wrong key is ERR_SPHINX_MAC, and under no loaded key no_key', async () => {
      const { arriving } = journey();
      assert.deepEqual(await pool.unwrap(arriving[0]!, [EPOCH0 + 3]), { kind: 'error', code: 'ERR_SPHINX_MAC' });
      assert.deepEqual(await pool.unwrap(arriving[0]!, [EPOCH0 + 3, EPOCH0 + 4]), { kind: 'error', code: 'ERR_SPHINX_MAC' });
      assert.deepEqual(await pool.unwrap(arriving[0]!, [7]), { kind: 'no_key' });
      assert.deepEqual(await pool.unwrap(arriving[0]!, [7, 8, 9, 10]), { kind: 'no_key' });
    });

    test('any flipped bit in alpha, beta or gamma gives ERR_SPHINX_MAC', async () => {
      const { arriving } = journey();
      const p = arriving[0]!;
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: geometry.alphaOffset * 8, max: geometry.headerLength * 8 - 1 }), async (bit) => {
          const q = p.slice();
          q[bit >> 3] = q[bit >> 3]! ^ (1 << (bit & 7));
          assert.deepEqual(await pool.unwrap(q, [EPOCH0]), { kind: 'error', code: 'ERR_SPHINX_MAC' });
        }),
        { numRuns: 40 },
      );
    });

    test('other malformed packets give the code Sphinx.unwrap throws', async () => {
      const { arriving } = journey();
      const versioned = arriving[0]!.slice();
      versioned[0] = 1;
      assert.deepEqual(await pool.unwrap(versioned, [EPOCH0]), { kind: 'error', code: 'ERR_SPHINX_VERSION' });
      const tampered = arriving[hops.length - 1]!.slice();
      tampered[geometry.headerLength + 5] = tampered[geometry.headerLength + 5]! ^ 1;
      assert.deepEqual(await pool.unwrap(tampered, [EPOCH0 + hops.length - 1]), { kind: 'error', code: 'ERR_SPHINX_TAG' });
      assert.deepEqual(await pool.unwrap(arriving[0]!.subarray(1), [EPOCH0]), { kind: 'error', code: 'ERR_SPHINX_LENGTH' });
      assert.deepEqual(await pool.unwrap(new Uint8Array(0), [EPOCH0]), { kind: 'error', code: 'ERR_SPHINX_LENGTH' });
    });

    test('the packet is copied at once: a view into a larger buffer works, and the caller may reuse it', async () => {
      const { arriving, expected } = journey();
      const big = new Uint8Array(geometry.packetLength + 100);
      big.set(arriving[0]!, 37);
      const view = big.subarray(37, 37 + geometry.packetLength);
      const pending = pool.unwrap(view, [EPOCH0])!;
      big.fill(0xff);
      assert.deepEqual(await pending, withEpoch(expected[0]!, EPOCH0));
    });

    test('bad arguments throw at once', () => {
      const p = new Uint8Array(geometry.packetLength);
      assert.throws(() => pool.unwrap('x' as unknown as Uint8Array, [1]), TypeError);
      assert.throws(() => pool.unwrap(p, []), RangeError);
      assert.throws(() => pool.unwrap(p, new Array<number>(MAX_EPOCHS_PER_UNWRAP + 1).fill(1)), RangeError);
      assert.throws(() => pool.unwrap(p, [-1]), RangeError);
      assert.throws(() => pool.unwrap(p, [1.5]), TypeError);
      assert.throws(() => pool.setKey(1, new Uint8Array(31)), RangeError);
      assert.throws(() => pool.setKey(-1, new Uint8Array(32)), RangeError);
      assert.throws(() => pool.deleteKey(Number.NaN), TypeError);
    });

    test('a deleted key is no longer used, and a replaced key is', async () => {
      const { arriving, expected } = journey();
      const epoch = 5000;
      pool.setKey(epoch, hops[0]!.privateKey);
      assert.deepEqual(await pool.unwrap(arriving[0]!, [epoch]), withEpoch(expected[0]!, epoch));
      pool.deleteKey(epoch);
      assert.deepEqual(await pool.unwrap(arriving[0]!, [epoch]), { kind: 'no_key' });
      pool.setKey(epoch, hops[1]!.privateKey);
      assert.deepEqual(await pool.unwrap(arriving[0]!, [epoch]), { kind: 'error', code: 'ERR_SPHINX_MAC' });
      pool.setKey(epoch, hops[0]!.privateKey);
      assert.deepEqual(await pool.unwrap(arriving[0]!, [epoch]), withEpoch(expected[0]!, epoch));
      pool.deleteKey(epoch);
      pool.deleteKey(epoch);
      assert.ok(!pool.epochs().includes(epoch));
    });

    test('the pool keeps its own copy of a key: wiping the caller’s does not matter', async () => {
      const { arriving, expected } = journey();
      const key = hops[0]!.privateKey.slice();
      pool.setKey(6000, key);
      key.fill(0);
      assert.deepEqual(await pool.unwrap(arriving[0]!, [6000]), withEpoch(expected[0]!, 6000));
      pool.deleteKey(6000);
    });
  });
}

describe('UnwrapPool limits and lifecycle', () => {
  test('submit: each callback gets its packet\'s outcome, never synchronously, and forward packets land where allocatePacket says', async () => {
    for (const workers of [0, 2]) {
      const homes: Uint8Array[] = [];
      const pool = new UnwrapPool({
        geometry,
        workers,
        maxInFlight: 64,
        allocatePacket: () => {
          const home = new Uint8Array(geometry.packetLength + 8).subarray(4, 4 + geometry.packetLength);
          homes.push(home);
          return home;
        },
      });
      try {
        await pool.ready();
        loadAllHops(pool);
        const { arriving, expected } = journey();
        const got: (UnwrapOutcome | undefined)[] = [];
        let sync = true;
        const all = arriving.map(
          (p, i) =>
            new Promise<void>((resolve) => {
              assert.equal(
                pool.submit(p, [EPOCH0 + i], (o) => {
                  assert.equal(sync, false, 'an outcome is never given synchronously');
                  got[i] = o;
                  resolve();
                }),
                true,
              );
            }),
        );
        sync = false;
        await Promise.all(all);
        assert.deepEqual(got, expected.map((r, i) => withEpoch(r, EPOCH0 + i)));
        for (const o of got) if (o?.kind === 'forward') assert.ok(homes.some((h) => h.buffer === o.packet.buffer && h.byteOffset === o.packet.byteOffset));
      } finally {
        await pool.close();
      }
    }
    assert.throws(() => new UnwrapPool({ geometry, workers: 0, maxInFlight: 1, allocatePacket: () => new Uint8Array(3) }), RangeError);
  });

  test('the geometry may be given by its parameters', async () => {
    const pool = new UnwrapPool({ geometry: { hops: 5, userPayloadLength: 2000, withSurb: true }, workers: 0, maxInFlight: 1 });
    assert.deepEqual(pool.geometry, geometry);
    await pool.close();
    assert.throws(() => new UnwrapPool({ geometry: { hops: 0, userPayloadLength: 2000, withSurb: true }, workers: 0, maxInFlight: 1 }), {
      code: 'ERR_SPHINX_GEOMETRY',
    });
    assert.throws(() => new UnwrapPool({ geometry, workers: -1, maxInFlight: 1 }), RangeError);
    assert.throws(() => new UnwrapPool({ geometry, workers: 0, maxInFlight: 0 }), RangeError);
  });

  for (const workers of [0, 2]) {
    test(`with ${workers} workers, unwrap returns null once maxInFlight packets are in flight`, async () => {
      const pool = new UnwrapPool({ geometry, workers, maxInFlight: 3 });
      try {
        loadAllHops(pool);
        const { arriving, expected } = journey();
        const first = [0, 1, 2].map((i) => pool.unwrap(arriving[i]!, [EPOCH0 + i]));
        assert.ok(first.every((p) => p !== null));
        assert.equal(pool.inFlight, 3);
        assert.equal(pool.unwrap(arriving[3]!, [EPOCH0 + 3]), null);
        assert.deepEqual(
          await Promise.all(first),
          [0, 1, 2].map((i) => withEpoch(expected[i]!, EPOCH0 + i)),
        );
        assert.equal(pool.inFlight, 0);
        assert.deepEqual(await pool.unwrap(arriving[3]!, [EPOCH0 + 3]), withEpoch(expected[3]!, EPOCH0 + 3));
      } finally {
        await pool.close();
      }
    });

    test(`with ${workers} workers, close resolves every pending packet as ERR_LINK_CLOSED`, async () => {
      const pool = new UnwrapPool({ geometry, workers, maxInFlight: 1000 });
      loadAllHops(pool);
      const packets = Array.from({ length: 4 }, () => journey().arriving[0]!);
      const posted = packets.map((p) => pool.unwrap(p, [EPOCH0])!);
      await nextTurn(); // batches sent to the workers
      const open = packets.map((p) => pool.unwrap(p, [EPOCH0])!);
      const closing = pool.close();
      assert.equal(pool.inFlight, 0);
      const closed = { kind: 'error', code: 'ERR_LINK_CLOSED' };
      // Packets not yet unwrapped resolve as closed; with 0 workers the first ones were unwrapped
      // in the microtask before the turn ended.
      for (const o of await Promise.all(open)) assert.deepEqual(o, closed);
      for (const o of await Promise.all(posted)) {
        if (workers === 0) assert.equal(o.kind, 'forward');
        else assert.deepEqual(o, closed);
      }
      await closing;
      assert.deepEqual(await pool.unwrap(packets[0]!, [EPOCH0]), { kind: 'error', code: 'ERR_LINK_CLOSED' });
      assert.deepEqual(pool.epochs(), [], 'keys are gone');
      pool.setKey(1, hops[0]!.privateKey);
      assert.deepEqual(pool.epochs(), [], 'setKey after close is ignored');
      await pool.close();
    });
  }

  test('a worker\'s ring is reused round and round: many more packets than slots, in uneven groups', async () => {
    // One worker, maxInFlight 3: a ring of three slots, so positions wrap every three packets and
    // groups of 1 or 2 straddle the end of the ring.
    const pool = new UnwrapPool({ geometry, workers: 1, maxInFlight: 3 });
    try {
      loadAllHops(pool);
      const journeys = Array.from({ length: 4 }, () => journey());
      for (let round = 0; round < 12; round++) {
        const group = 1 + (round % 3);
        const picks = Array.from({ length: group }, (_, k) => ({ j: journeys[(round + k) % 4]!, hop: (round + k) % geometry.hops }));
        const pending = picks.map(({ j, hop }) => pool.unwrap(j.arriving[hop]!, [EPOCH0 + hop]));
        assert.ok(pending.every((p) => p !== null));
        if (group === 3) assert.equal(pool.unwrap(journeys[0]!.arriving[0]!, [EPOCH0]), null, 'the ring is full');
        const outcomes = await Promise.all(pending);
        picks.forEach(({ j, hop }, k) => assert.deepEqual(outcomes[k], withEpoch(j.expected[hop]!, EPOCH0 + hop)));
        assert.equal(pool.inFlight, 0);
      }
    } finally {
      await pool.close();
    }
  });

  test('a worker that dies is replaced: its packets fail with ERR_SERVER, and the keys carry over', async () => {
    const spawned = spawnRecorder();
    const pool = new UnwrapPool({ geometry, workers: 2, maxInFlight: 1000, spawnWorker: spawned.spawn });
    try {
      await pool.ready();
      loadAllHops(pool);
      const { arriving, expected } = journey();
      const want = withEpoch(expected[0]!, EPOCH0);
      const pending = Array.from({ length: 160 }, () => pool.unwrap(arriving[0]!, [EPOCH0])!);
      await nextTurn();
      await spawned.workers[0]!.terminate();
      const outcomes = await Promise.all(pending);
      const lost = outcomes.filter((o) => o.kind === 'error');
      for (const o of lost) assert.deepEqual(o, { kind: 'error', code: 'ERR_SERVER' });
      for (const o of outcomes) if (o.kind !== 'error') assert.deepEqual(o, want);
      assert.ok(lost.length > 0 && lost.length < outcomes.length, `${lost.length} of ${outcomes.length} lost`);
      assert.equal(pool.restarts, 1);
      assert.equal(pool.inFlight, 0);
      await pool.ready();
      const again = await Promise.all(Array.from({ length: 64 }, () => pool.unwrap(arriving[0]!, [EPOCH0])!));
      for (const o of again) assert.deepEqual(o, want);
    } finally {
      await pool.close();
    }
  });

  test('a worker that dies before it is ready makes ready() reject, and comes back after a pause', async () => {
    const spawned = spawnRecorder();
    const pool = new UnwrapPool({ geometry, workers: 1, maxInFlight: 10, spawnWorker: spawned.spawn });
    try {
      const first = pool.ready();
      await spawned.workers[0]!.terminate();
      await assert.rejects(first, { code: 'ERR_SERVER' });
      assert.equal(pool.restarts, 1);
      loadAllHops(pool);
      const { arriving, expected } = journey();
      // Until the replacement starts there is no worker to take a packet.
      assert.deepEqual(await pool.unwrap(arriving[0]!, [EPOCH0]), { kind: 'error', code: 'ERR_SERVER' });
      await pool.ready();
      assert.deepEqual(await pool.unwrap(arriving[0]!, [EPOCH0]), withEpoch(expected[0]!, EPOCH0));
    } finally {
      await pool.close();
    }
    await assert.rejects(pool.ready(), { code: 'ERR_LINK_CLOSED' });
  });
});
