// Properties over random schedules: sends in both directions, reordering, drops, duplicates,
// state saved and restored, clock jumps that start post-quantum steps. Every message is read
// exactly once or reported lost, never twice; a duplicate is always refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BackchannelError } from '../../src/errors.js';
import { PQ_RATCHET_INTERVAL_MS, type Session } from '../../src/messaging/index.js';
import { copyOf, makePair, te, td } from './_pair.js';

type Cmd =
  | { k: 'send'; from: 0 | 1; size: number }
  | { k: 'deliver'; to: 0 | 1; pick: number }
  | { k: 'drop'; to: 0 | 1; pick: number }
  | { k: 'dup'; to: 0 | 1; pick: number }
  | { k: 'save'; who: 0 | 1 }
  | { k: 'day' };

const side = fc.constantFrom<0 | 1>(0, 1);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('send' as const), from: side, size: fc.nat(40) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('deliver' as const), to: side, pick: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('drop' as const), to: side, pick: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('dup' as const), to: side, pick: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('save' as const), who: side }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('day' as const) }) },
);

/** Post-quantum steps completed over all runs: the schedules must exercise the PQ ratchet too. */
let pqSteps = 0;

interface InFlight {
  id: number;
  bytes: Uint8Array;
  text: string;
}

/**
 * Runs `cmds` on a fresh pair. `window` bounds reordering: a delivery picks among the oldest
 * `window` messages in flight to that side (Infinity: any). Returns how many were read.
 */
function run(seed: number, cmds: Cmd[], window: number, strict: boolean): number {
  const p = makePair(`prop-${seed}`);
  const sessions: [Session, Session] = [p.alice, p.bob];
  const comps = [p.ca, p.cb];
  // in flight to side i, in sending order; delivered to side i (for duplicates); read ids.
  const queue: [InFlight[], InFlight[]] = [[], []];
  const delivered: [InFlight[], InFlight[]] = [[], []];
  const read = new Set<number>();
  let next = 0;
  let count = 0;
  const deliver = (to: 0 | 1, m: InFlight, duplicate: boolean): void => {
    let out: Uint8Array;
    const offered = sessions[to].pqOfferOutstanding;
    try {
      out = sessions[to].decrypt(m.bytes);
      if (offered && !sessions[to].pqOfferOutstanding) pqSteps++;
    } catch (e) {
      assert.ok(e instanceof BackchannelError, String(e));
      if (duplicate) assert.ok(e.code === 'ERR_MSG_REPLAY' || e.code === 'ERR_MSG_DECRYPT', e.code);
      else {
        assert.ok(!strict, `message ${m.id} could not be read: ${e.code}`);
        // Reported lost: past the skip limit, or its key was evicted from the bounded cache.
        assert.ok(['ERR_MSG_SKIP_LIMIT', 'ERR_MSG_REPLAY', 'ERR_MSG_DECRYPT'].includes(e.code), e.code);
      }
      return;
    }
    assert.ok(!duplicate || !read.has(m.id), `message ${m.id} read twice`);
    assert.ok(!read.has(m.id), `message ${m.id} read twice`);
    assert.equal(td.decode(out), m.text);
    read.add(m.id);
    count++;
  };
  const pickIndex = (to: 0 | 1, pick: number): number => pick % Math.min(queue[to].length, window);
  for (const c of cmds) {
    switch (c.k) {
      case 'send': {
        // Alice may not send before Bob has read her first message; makePair already did that.
        const text = `${c.from}:${next}:${'x'.repeat(c.size)}`;
        const to = (1 - c.from) as 0 | 1;
        queue[to].push({ id: next++, bytes: sessions[c.from].encrypt(te.encode(text)), text });
        break;
      }
      case 'deliver':
      case 'drop': {
        if (queue[c.to].length === 0) break;
        const [m] = queue[c.to].splice(pickIndex(c.to, c.pick), 1);
        if (c.k === 'deliver') {
          deliver(c.to, m!, false);
          delivered[c.to].push(m!);
        }
        break;
      }
      case 'dup': {
        if (delivered[c.to].length === 0) break;
        deliver(c.to, delivered[c.to][c.pick % delivered[c.to].length]!, true);
        break;
      }
      case 'save':
        sessions[c.who] = copyOf(sessions[c.who], comps[c.who]!);
        break;
      case 'day':
        p.clock.ms += PQ_RATCHET_INTERVAL_MS;
        break;
      default: {
        const never: never = c;
        throw new Error(String(never));
      }
    }
  }
  // Everything still in flight arrives, in an order the schedule does not control.
  for (const to of [0, 1] as const) {
    while (queue[to].length > 0) {
      const [m] = queue[to].splice(Math.min(queue[to].length, window) - 1, 1);
      deliver(to, m!, false);
    }
  }
  return count;
}

test('with reordering inside a window of 3, drops, duplicates, saves and clock jumps, every message that arrives is read exactly once', () => {
  fc.assert(
    fc.property(fc.nat(), fc.array(cmd, { minLength: 40, maxLength: 160 }), (seed, cmds) => {
      run(seed, cmds, 3, true);
    }),
    { numRuns: 60 },
  );
  assert.ok(pqSteps > 0, 'some schedules completed a post-quantum step');
});

test('with any reordering, every message is read at most once or reported lost with a typed error, and duplicates never read', () => {
  fc.assert(
    fc.property(fc.nat(), fc.array(cmd, { minLength: 40, maxLength: 160 }), (seed, cmds) => {
      run(seed, cmds, Infinity, false);
    }),
    { numRuns: 60 },
  );
});

test('the property can fail: a session that reads a duplicate twice is caught', () => {
  // Replays the same message to a restored copy of the state from before it was read: a copy
  // taken before reading is exactly what replay protection cannot stop, so the property (which
  // never restores an older state) would report it as read twice.
  const p = makePair('prop-fail');
  const m = p.alice.encrypt(te.encode('once'));
  const before = copyOf(p.bob, p.cb);
  p.bob.decrypt(m);
  assert.equal(td.decode(before.decrypt(m)), 'once');
  assert.throws(() => p.bob.decrypt(m), (e) => e instanceof BackchannelError && e.code === 'ERR_MSG_REPLAY');
});
