// Sessions end to end: set-up, one-time prekeys, the post-quantum ratchet's schedule, the size
// budget, bit flips, and the encodings of identities, prekeys, bundles and session state.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import { BackchannelError, isBackchannelError } from '../../src/errors.js';
import {
  BUNDLE_LENGTH,
  MAX_MESSAGE_LENGTH,
  MAX_PLAINTEXT_LENGTH,
  MAX_SKIPPED_HEADER_KEYS,
  MAX_SKIPPED_KEYS,
  MAX_SKIP_PER_CHAIN,
  PQ_RATCHET_INTERVAL_MS,
  PQ_RATCHET_MESSAGES,
  Session,
  acceptSession,
  createBundle,
  createPrekeyStore,
  decodeBundle,
  decodeIdentity,
  decodePrekeyStore,
  encodeBundle,
  encodeIdentity,
  encodePrekeyStore,
  generateIdentity,
  initiateSession,
} from '../../src/messaging/index.js';
import { equalBytes } from '../../src/util/bytes.js';
import { components, copyOf, makePair, te, td } from './_pair.js';

const code = (c: string) => (e: unknown) => isBackchannelError(e) && e.code === c;
const typed = (e: unknown) => e instanceof BackchannelError && e.code.startsWith('ERR_MSG_');

/** Length of a ratchet message: 59 bytes of framing and tags, a 41-byte header, what the header carries, the plaintext. */
const BASE = 59 + 41;
const OFFER = 4 + 1184;
const ANSWER = 4 + 1088;

describe('session set-up', () => {
  test('two parties who exchanged a bundle talk in both directions, and the responder learns who opened the session', () => {
    const ca = components('setup/a');
    const cb = components('setup/b');
    const a = generateIdentity(ca.crypto);
    const b = generateIdentity(cb.crypto);
    const store = createPrekeyStore();
    const bundle = decodeBundle(encodeBundle(createBundle(cb.crypto, b, store)));
    const alice = initiateSession(a, bundle, ca);
    const first = alice.encrypt(te.encode('first'));
    const second = alice.encrypt(te.encode('second'));
    const { session: bob, plaintext, remoteIdentityKey } = acceptSession(b, store, first, cb);
    assert.equal(td.decode(plaintext), 'first');
    assert.ok(equalBytes(remoteIdentityKey, a.dhPublic));
    assert.ok(equalBytes(bob.remoteIdentityKey, a.dhPublic) && equalBytes(alice.remoteIdentityKey, b.dhPublic));
    // A repeated set-up message of the same session goes through the session itself.
    assert.equal(td.decode(bob.decrypt(second)), 'second');
    assert.ok(alice.awaitingReply);
    assert.equal(td.decode(alice.decrypt(bob.encrypt(te.encode('reply')))), 'reply');
    assert.ok(!alice.awaitingReply);
    assert.equal(td.decode(bob.decrypt(alice.encrypt(te.encode('after')))), 'after');
  });

  test('a one-time prekey opens one session: a second set-up with it is refused with ERR_MSG_PREKEY', () => {
    const cb = components('prekey/b');
    const b = generateIdentity(cb.crypto);
    const store = createPrekeyStore();
    const bundle = createBundle(cb.crypto, b, store);
    const m1 = initiateSession(generateIdentity(components('prekey/a1').crypto), bundle, components('prekey/a1')).encrypt(te.encode('x'));
    const m2 = initiateSession(generateIdentity(components('prekey/a2').crypto), bundle, components('prekey/a2')).encrypt(te.encode('y'));
    acceptSession(b, store, m1, cb);
    assert.throws(() => acceptSession(b, store, m2, cb), code('ERR_MSG_PREKEY'));
    // The same message again (a replayed set-up) is refused just the same.
    assert.throws(() => acceptSession(b, store, m1, cb), code('ERR_MSG_PREKEY'));
    assert.equal(store.keys.size, 0);
  });

  test('a set-up that does not authenticate leaves the prekey unused', () => {
    const cb = components('burn/b');
    const b = generateIdentity(cb.crypto);
    const store = createPrekeyStore();
    const bundle = createBundle(cb.crypto, b, store);
    const m = initiateSession(generateIdentity(components('burn/a').crypto), bundle, components('burn/a')).encrypt(te.encode('x'));
    const bad = m.slice();
    bad[bad.length - 1]! ^= 1;
    assert.throws(() => acceptSession(b, store, bad, cb), code('ERR_MSG_DECRYPT'));
    assert.equal(store.keys.size, 1);
    assert.equal(td.decode(acceptSession(b, store, m, cb).plaintext), 'x');
  });

  test('a bundle with a small-order prekey is refused with ERR_MSG_KEY', () => {
    const ca = components('low/a');
    const b = generateIdentity(ca.crypto);
    const bundle = createBundle(ca.crypto, b, createPrekeyStore());
    bundle.prekey = new Uint8Array(32);
    assert.throws(() => initiateSession(generateIdentity(ca.crypto), bundle, ca), code('ERR_MSG_KEY'));
  });
});

describe('the post-quantum ratchet', () => {
  test(`an offer goes out after ${PQ_RATCHET_MESSAGES} messages, and one round trip later it is answered and mixed in`, () => {
    const p = makePair('pq-count');
    assert.equal(p.alice.decrypt(p.bob.encrypt(te.encode('r'))).length, 1);
    for (let i = 1; i < PQ_RATCHET_MESSAGES; i++) p.bob.decrypt(p.alice.encrypt(te.encode('m')));
    assert.ok(!p.alice.pqOfferOutstanding);
    const offer = p.alice.encrypt(te.encode('m'));
    assert.ok(p.alice.pqOfferOutstanding);
    assert.equal(offer.length, BASE + OFFER + 1);
    p.bob.decrypt(offer);
    // Bob answers in his next sending chain, which starts when he reads Alice's next chain.
    const b1 = p.bob.encrypt(te.encode('b'));
    assert.equal(b1.length, BASE + 1);
    p.alice.decrypt(b1);
    const a2 = p.alice.encrypt(te.encode('a'));
    assert.equal(a2.length, BASE + OFFER + 1, 'the offer repeats until answered');
    p.bob.decrypt(a2);
    const answer = p.bob.encrypt(te.encode('b'));
    assert.equal(answer.length, BASE + ANSWER + 1);
    assert.equal(p.bob.encrypt(te.encode('b')).length, BASE + ANSWER + 1, 'every message of the chain carries the answer');
    p.alice.decrypt(answer);
    assert.ok(!p.alice.pqOfferOutstanding);
    assert.equal(p.alice.encrypt(te.encode('a')).length, BASE + 1);
  });

  test('an offer also goes out once 24 hours have passed on the injected clock', () => {
    const p = makePair('pq-time');
    p.alice.decrypt(p.bob.encrypt(te.encode('r')));
    assert.equal(p.alice.encrypt(te.encode('a')).length, BASE + 1);
    p.clock.ms += PQ_RATCHET_INTERVAL_MS - 1;
    assert.equal(p.alice.encrypt(te.encode('a')).length, BASE + 1);
    p.clock.ms += 1;
    assert.equal(p.alice.encrypt(te.encode('a')).length, BASE + OFFER + 1);
    assert.equal(p.bob.encrypt(te.encode('b')).length, BASE + OFFER + 1, 'Bob is due too');
  });
});

describe('size budget', () => {
  test(`every message fits in ${MAX_MESSAGE_LENGTH} bytes with a plaintext of MAX_PLAINTEXT_LENGTH (${MAX_PLAINTEXT_LENGTH}), an ML-KEM key or ciphertext in its header`, () => {
    const full = new Uint8Array(MAX_PLAINTEXT_LENGTH).fill(0x61);
    const clock = { ms: 0 };
    const ca = components('size/a', clock);
    const cb = components('size/b', clock);
    const a = generateIdentity(ca.crypto);
    const b = generateIdentity(cb.crypto);
    const store = createPrekeyStore();
    const alice = initiateSession(a, createBundle(cb.crypto, b, store), ca);
    const setup = alice.encrypt(full);
    assert.ok(setup.length <= MAX_MESSAGE_LENGTH, `set-up message ${setup.length}`);
    const { session: bob } = acceptSession(b, store, setup, cb);
    clock.ms += PQ_RATCHET_INTERVAL_MS;
    const offer = bob.encrypt(full);
    assert.equal(offer.length, MAX_MESSAGE_LENGTH, 'the worst case fills the payload exactly');
    alice.decrypt(offer);
    bob.decrypt(alice.encrypt(full));
    const answer = alice.encrypt(full);
    alice.decrypt(bob.encrypt(full));
    const answer2 = alice.encrypt(full);
    assert.ok(answer.length <= MAX_MESSAGE_LENGTH && answer2.length <= MAX_MESSAGE_LENGTH);
    assert.deepEqual(bob.decrypt(answer), full);
    assert.deepEqual(bob.decrypt(answer2), full);
    assert.throws(() => alice.encrypt(new Uint8Array(MAX_PLAINTEXT_LENGTH + 1)), RangeError);
    assert.equal(encodeBundle(createBundle(cb.crypto, b, store)).length, BUNDLE_LENGTH);
  });
});

describe('tampering', () => {
  test('every flipped bit of a ratchet message is rejected with a typed error and changes nothing', () => {
    const p = makePair('flip');
    p.alice.decrypt(p.bob.encrypt(te.encode('r')));
    const m = p.alice.encrypt(te.encode('a short message'));
    for (let bit = 0; bit < m.length * 8; bit++) {
      const bad = m.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      assert.throws(() => p.bob.decrypt(bad), typed, `bit ${bit}`);
    }
    assert.equal(td.decode(p.bob.decrypt(m)), 'a short message');
  });

  test('flipped bits in set-up messages and in headers carrying ML-KEM keys are rejected', () => {
    const p = makePair('flip-pq');
    const cb = components('flip-pq/b2');
    const b = generateIdentity(cb.crypto);
    const store = createPrekeyStore();
    const setup = initiateSession(p.aliceId, createBundle(cb.crypto, b, store), components('flip-pq/a2')).encrypt(te.encode('s'));
    p.alice.decrypt(p.bob.encrypt(te.encode('r')));
    p.clock.ms += PQ_RATCHET_INTERVAL_MS;
    const offer = p.alice.encrypt(te.encode('o'));
    assert.equal(offer.length, BASE + OFFER + 1);
    fc.assert(
      fc.property(fc.nat(setup.length * 8 - 1), fc.nat(offer.length * 8 - 1), (i, j) => {
        const s = setup.slice();
        s[i >> 3]! ^= 1 << (i & 7);
        assert.throws(() => acceptSession(b, store, s, cb), typed);
        const o = offer.slice();
        o[j >> 3]! ^= 1 << (j & 7);
        assert.throws(() => p.bob.decrypt(o), typed);
      }),
      { numRuns: 150 },
    );
    assert.equal(td.decode(p.bob.decrypt(offer)), 'o');
    assert.equal(td.decode(acceptSession(b, store, setup, cb).plaintext), 's');
  });

  test('a message of another session, or garbage, is ERR_MSG_DECRYPT or ERR_MSG_ENCODING, never a crash', () => {
    const p = makePair('other-1');
    const q = makePair('other-2');
    assert.throws(() => p.bob.decrypt(q.alice.encrypt(te.encode('x'))), code('ERR_MSG_DECRYPT'));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2100 }), (junk) => {
        assert.throws(() => p.bob.decrypt(junk), typed);
      }),
      { numRuns: 200 },
    );
  });
});

describe('encodings', () => {
  test('a session survives its encoding at any point and keeps working', () => {
    const p = makePair('encode');
    let { alice, bob } = p;
    for (let i = 0; i < 30; i++) {
      const m = alice.encrypt(te.encode(`a${i}`));
      if (i % 3 === 0) alice = copyOf(alice, p.ca);
      if (i % 5 === 0) bob = copyOf(bob, p.cb);
      assert.equal(td.decode(bob.decrypt(m)), `a${i}`);
      if (i % 4 === 0) assert.equal(td.decode(alice.decrypt(bob.encrypt(te.encode(`b${i}`)))), `b${i}`);
      const e = bob.encode();
      assert.deepEqual(Session.decode(e, p.cb).encode(), e, 'decode then encode gives the same bytes');
    }
  });

  test('a truncated or corrupted encoding is ERR_MSG_ENCODING', () => {
    const p = makePair('corrupt');
    // Skipped keys and an outstanding offer make the state carry every optional part.
    const skippedOne = p.bob.encrypt(te.encode('late'));
    p.alice.decrypt(p.bob.encrypt(te.encode('r')));
    p.clock.ms += PQ_RATCHET_INTERVAL_MS;
    p.alice.encrypt(te.encode('offer'));
    assert.ok(p.alice.skippedCount === 1 && p.alice.pqOfferOutstanding && skippedOne.length > 0);
    const states = [p.alice.encode(), p.bob.encode(), encodeIdentity(p.aliceId), encodePrekeyStore(p.bobPrekeys)];
    const decoders = [(b: Uint8Array) => Session.decode(b, p.ca), (b: Uint8Array) => Session.decode(b, p.cb), (b: Uint8Array) => decodeIdentity(p.ca.crypto, b), decodePrekeyStore];
    for (let k = 0; k < states.length; k++) {
      const e = states[k]!;
      const dec = decoders[k]!;
      dec(e);
      for (let n = 0; n < e.length; n += k < 2 ? 7 : 1) assert.throws(() => dec(e.subarray(0, n)), code('ERR_MSG_ENCODING'), `length ${n}`);
      assert.throws(() => dec(new Uint8Array([...e, 0])), code('ERR_MSG_ENCODING'));
      fc.assert(
        fc.property(fc.nat(e.length * 8 - 1), (bit) => {
          const bad = e.slice();
          bad[bit >> 3]! ^= 1 << (bit & 7);
          assert.throws(() => dec(bad), code('ERR_MSG_ENCODING'));
        }),
        { numRuns: 100 },
      );
    }
  });

  test('a state with a valid check sum but a bad structure (version, flag, count, trailing byte) is still ERR_MSG_ENCODING', () => {
    const p = makePair('structure');
    const e = p.bob.encode();
    const content = e.subarray(0, e.length - 32);
    const reseal = (c: Uint8Array): Uint8Array => new Uint8Array([...c, ...sha256(c)]);
    assert.deepEqual(Session.decode(reseal(content), p.cb).encode(), e);
    const edits: [string, (c: Uint8Array) => Uint8Array][] = [
      ['version', (c) => ((c[0] = 2), c)],
      ['initiator flag', (c) => ((c[1] = 2), c)],
      ['trailing byte', (c) => new Uint8Array([...c, 0])],
      ['skipped count', (c) => ((c[c.length - 1] = 1), c)],
      ['truncated', (c) => c.subarray(0, c.length - 1)],
    ];
    for (const [what, edit] of edits) assert.throws(() => Session.decode(reseal(edit(content.slice())), p.cb), code('ERR_MSG_ENCODING'), what);
  });

  test('identities, prekey stores and bundles round-trip, and a bundle is strictly decoded', () => {
    const c = components('codec');
    const id = generateIdentity(c.crypto);
    const back = decodeIdentity(c.crypto, encodeIdentity(id));
    assert.ok(equalBytes(back.dhPublic, id.dhPublic) && equalBytes(back.kem.publicKey, id.kem.publicKey));
    const store = createPrekeyStore();
    const bundles = [0, 1, 2].map(() => createBundle(c.crypto, id, store));
    const store2 = decodePrekeyStore(encodePrekeyStore(store));
    assert.deepEqual([...store2.keys.keys()], [0, 1, 2]);
    assert.equal(store2.nextId, 3);
    const e = encodeBundle(bundles[1]!);
    assert.deepEqual(decodeBundle(e), bundles[1]);
    assert.throws(() => decodeBundle(e.subarray(0, e.length - 1)), code('ERR_MSG_ENCODING'));
    assert.throws(() => decodeBundle(new Uint8Array([...e, 0])), code('ERR_MSG_ENCODING'));
    const v = e.slice();
    v[0] = 9;
    assert.throws(() => decodeBundle(v), code('ERR_MSG_ENCODING'));
  });
});

describe('limits', () => {
  test(`a message more than MAX_SKIP_PER_CHAIN (${MAX_SKIP_PER_CHAIN}) ahead is reported lost and changes nothing; one exactly that far is read`, () => {
    const p = makePair('skip');
    const ms = Array.from({ length: MAX_SKIP_PER_CHAIN + 2 }, (_, i) => p.alice.encrypt(te.encode(`m${i}`)));
    assert.throws(() => p.bob.decrypt(ms[MAX_SKIP_PER_CHAIN + 1]!), code('ERR_MSG_SKIP_LIMIT'));
    assert.equal(p.bob.skippedCount, 0);
    assert.equal(td.decode(p.bob.decrypt(ms[MAX_SKIP_PER_CHAIN]!)), `m${MAX_SKIP_PER_CHAIN}`);
    assert.equal(p.bob.skippedCount, MAX_SKIP_PER_CHAIN);
    assert.equal(td.decode(p.bob.decrypt(ms[MAX_SKIP_PER_CHAIN + 1]!)), `m${MAX_SKIP_PER_CHAIN + 1}`);
    assert.equal(td.decode(p.bob.decrypt(ms[7]!)), 'm7');
    assert.equal(p.bob.skippedCount, MAX_SKIP_PER_CHAIN - 1);
    assert.throws(() => p.bob.decrypt(ms[7]!), code('ERR_MSG_REPLAY'));
  });

  test(`the skipped-key cache keeps at most MAX_SKIPPED_KEYS (${MAX_SKIPPED_KEYS}) keys of at most MAX_SKIPPED_HEADER_KEYS (${MAX_SKIPPED_HEADER_KEYS}) chains, dropping the oldest`, () => {
    const p = makePair('cache');
    const held: Uint8Array[] = [];
    // Chains of Alice's in which Bob skips one message each: the oldest chains' keys go first.
    for (let chain = 0; chain < MAX_SKIPPED_HEADER_KEYS + 2; chain++) {
      held.push(p.alice.encrypt(te.encode(`held${chain}`)));
      p.bob.decrypt(p.alice.encrypt(te.encode('x')));
      p.alice.decrypt(p.bob.encrypt(te.encode('y')));
    }
    assert.equal(p.bob.skippedCount, MAX_SKIPPED_HEADER_KEYS);
    assert.throws(() => p.bob.decrypt(held[0]!), (e) => typed(e));
    assert.throws(() => p.bob.decrypt(held[1]!), (e) => typed(e));
    assert.equal(td.decode(p.bob.decrypt(held[2]!)), 'held2');
    // One chain skipped far: the total bound holds.
    for (let k = 0; k < 3; k++) {
      const ms = Array.from({ length: MAX_SKIP_PER_CHAIN + 1 }, () => p.alice.encrypt(te.encode('z')));
      p.bob.decrypt(ms[MAX_SKIP_PER_CHAIN]!);
      assert.ok(p.bob.skippedCount <= MAX_SKIPPED_KEYS);
      p.alice.decrypt(p.bob.encrypt(te.encode('y')));
    }
    assert.equal(p.bob.skippedCount, MAX_SKIPPED_KEYS);
    const e = p.bob.encode();
    assert.deepEqual(Session.decode(e, p.cb).encode(), e);
  });
});
