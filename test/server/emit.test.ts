/**
 * The gateway's emission clock (src/server/emit.ts): its frames come at the clock's rate whatever
 * the acknowledgements do; an acknowledgement takes a cover packet's place, never adds a frame.
 * Virtual time and a seeded stream: every figure below is the same in every run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeBackend } from '../../src/crypto/node.js';
import { uniform01 } from '../../src/client/poisson.js';
import type { DropReason } from '../../src/ops/metrics.js';
import type { DocumentNode } from '../../src/pki/types.js';
import { Emitter } from '../../src/server/emit.js';
import type { Outgoing } from '../../src/server/emit.js';
import { SimClock } from '../../src/sim/clock.js';
import { seededBackend } from '../helpers/seeded.js';

const peer = { name: 'mix-1' } as unknown as DocumentNode;

interface Run {
  /** The time of each frame sent, and what it was. */
  readonly sent: { readonly at: number; readonly kind: 'ack' | 'cover'; readonly id: number }[];
  readonly drops: DropReason[];
  readonly emitter: Emitter;
  /** Cover packets made. */
  readonly covers: number;
}

/** Runs an emitter at `rate`/s for `ms` of virtual time; `acks` are queued at the given times. */
async function run(seed: string, rate: number, ms: number, acks: readonly number[], opts: { maxQueued?: number; maxWaitMs?: number } = {}): Promise<Run> {
  const clock = new SimClock(0);
  const random = seededBackend(nodeBackend, new TextEncoder().encode(seed.padEnd(32, '.'))).randomBytes;
  const sent: Run['sent'] = [];
  const drops: DropReason[] = [];
  const frames = new WeakMap<Uint8Array, number>();
  let covers = 0;
  const emitter = new Emitter({
    clock,
    u01: uniform01(random),
    ratePerS: () => rate,
    cover: () => {
      const frame = new Uint8Array(1);
      frames.set(frame, -++covers);
      return { peer, frame };
    },
    send: (out: Outgoing) => {
      const id = frames.get(out.frame)!;
      sent.push({ at: clock.now(), kind: id < 0 ? 'cover' : 'ack', id });
    },
    drop: (r) => drops.push(r),
    ...opts,
  });
  acks.forEach((at, i) => {
    clock.setTimer(() => {
      const frame = new Uint8Array(1);
      frames.set(frame, i + 1);
      emitter.enqueue({ peer, frame });
    }, at);
  });
  emitter.start();
  await clock.run(ms);
  emitter.stop();
  return { sent, drops, emitter, covers };
}

test('frames leave at the clock\'s times whether acknowledgements wait or not: an acknowledgement replaces a cover packet', async () => {
  const idle = await run('same seed', 20, 60_000, []);
  // A burst of 300 acknowledgements in the 10th second, and a steady trickle besides.
  const burst = Array.from({ length: 300 }, (_, i) => 10_000 + i);
  const trickle = Array.from({ length: 100 }, (_, i) => 20_000 + i * 300);
  const busy = await run('same seed', 20, 60_000, [...burst, ...trickle]);
  // The same seed draws the same gaps: the frames go at exactly the same instants.
  assert.deepEqual(
    busy.sent.map((s) => s.at),
    idle.sent.map((s) => s.at),
  );
  assert.ok(idle.sent.length > 1000 && idle.sent.every((s) => s.kind === 'cover'));
  const acks = busy.sent.filter((s) => s.kind === 'ack');
  assert.equal(acks.length, 400, 'every acknowledgement went, each in a slot of its own');
  assert.deepEqual(
    acks.map((s) => s.id),
    Array.from({ length: 400 }, (_, i) => i + 1),
    'oldest first',
  );
  assert.deepEqual(busy.drops, []);
  // A slot does the same work either way: a cover packet is made in every one.
  assert.equal(busy.covers, idle.covers);
  assert.equal(idle.covers, idle.sent.length);
  // The burst drains at the clock's rate (about 20/s), not at once.
  const burstDone = acks[299]!.at;
  assert.ok(burstDone > 10_000 + 10_000, `300 acknowledgements at 20/s take ~15 s: done at ${burstDone} ms`);
});

test('the rate holds over a long run (Poisson count within 4 standard deviations)', async () => {
  const r = await run('rate', 25, 200_000, []);
  const expected = 25 * 200;
  assert.ok(Math.abs(r.sent.length - expected) < 4 * Math.sqrt(expected), `${r.sent.length} frames, expected ${expected}`);
});

test('bounded: past maxQueued the oldest acknowledgement goes; one that waited past maxWaitMs is dropped at its turn', async () => {
  // 50 acknowledgements at once into a queue of 10: 40 dropped, the newest 10 sent.
  const full = await run('bound', 10, 5_000, Array.from({ length: 50 }, () => 100), { maxQueued: 10 });
  assert.equal(full.drops.filter((d) => d === 'ack_queue_full').length, 40);
  assert.deepEqual(
    full.sent.filter((s) => s.kind === 'ack').map((s) => s.id),
    Array.from({ length: 10 }, (_, i) => 41 + i),
  );
  // At 1 slot a second, acknowledgements that may wait only 2.5 s: most expire.
  const slow = await run('expiry', 1, 60_000, Array.from({ length: 30 }, () => 1000), { maxWaitMs: 2_500 });
  const expired = slow.drops.filter((d) => d === 'ack_expired').length;
  const sentAcks = slow.sent.filter((s) => s.kind === 'ack').length;
  assert.equal(expired + sentAcks, 30);
  assert.ok(expired > 20, `${expired} expired`);
  for (const s of slow.sent.filter((x) => x.kind === 'ack')) assert.ok(s.at - 1000 <= 2_500);
  assert.equal(slow.emitter.queued, 0);
});

test('no cover to be had (no document): the slot stays empty, and acknowledgements still go', async () => {
  const clock = new SimClock(0);
  const random = seededBackend(nodeBackend, new Uint8Array(32)).randomBytes;
  let sent = 0;
  const e = new Emitter({ clock, u01: uniform01(random), ratePerS: () => 10, cover: () => null, send: () => sent++, drop: () => undefined });
  e.enqueue({ peer, frame: new Uint8Array(1) });
  e.start();
  await clock.run(10_000);
  e.stop();
  assert.equal(sent, 1);
  assert.throws(() => new Emitter({ clock, u01: () => 0.5, ratePerS: () => 1, cover: () => null, send: () => undefined, drop: () => undefined, maxQueued: 0 }), RangeError);
});
