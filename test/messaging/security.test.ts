// What a copy of one party's state can and cannot read: forward secrecy (nothing already read),
// post-compromise security after a DH round trip, and, against an adversary that also learns
// every X25519 secret the party makes later (what a quantum computer would give it), after the
// post-quantum ratchet's round trip. Each attack also runs where it must succeed, so that the
// tests can fail.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BackchannelError } from '../../src/errors.js';
import {
  type MessagingComponents,
  PQ_RATCHET_MESSAGES,
  Session,
  acceptSession,
  createBundle,
  createPrekeyStore,
  generateIdentity,
  initiateSession,
} from '../../src/messaging/index.js';
import { Stream, components, copyOf, makePair, splitBackend, te, td } from './_pair.js';

function readable(s: Session, m: Uint8Array): boolean {
  try {
    s.decrypt(m);
    return true;
  } catch (e) {
    assert.ok(e instanceof BackchannelError && e.code.startsWith('ERR_MSG_'), String(e));
    return false;
  }
}

describe('forward secrecy', () => {
  test('a copy of Bob taken after message n reads none of the messages he had read, in any chain', () => {
    const p = makePair('fs');
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) {
      const m = p.alice.encrypt(te.encode(`a${i}`));
      sent.push(m);
      p.bob.decrypt(m);
      if (i % 6 === 5) p.alice.decrypt(p.bob.encrypt(te.encode('turn')));
    }
    // One message held back: its key is still in Bob's cache, as it must be to read it later.
    const late = p.alice.encrypt(te.encode('late'));
    const after = p.alice.encrypt(te.encode('after'));
    p.bob.decrypt(after);
    const seized = copyOf(p.bob, p.cb);
    for (const m of [...sent, after]) assert.ok(!readable(copyOf(seized, p.cb), m));
    assert.equal(td.decode(seized.decrypt(late)), 'late');
  });
});

describe('post-compromise security', () => {
  test('a copy of Bob with his state at message n cannot follow once Alice has answered a new ratchet key of Bob', () => {
    const p = makePair('pcs');
    p.alice.decrypt(p.bob.encrypt(te.encode('r')));
    // The adversary's copy, with randomness of its own from then on.
    const thief = copyOf(p.bob, components('pcs/thief'));
    const a1 = p.alice.encrypt(te.encode('a1')); // Alice's current chain: the copy reads it.
    assert.ok(readable(thief, a1));
    p.bob.decrypt(a1);
    // Bob's next chain uses a fresh ratchet key; Alice's reply chain answers it.
    p.alice.decrypt(p.bob.encrypt(te.encode('b')));
    const a2 = p.alice.encrypt(te.encode('a2'));
    assert.ok(!readable(thief, a2));
    // Control: a copy taken after Bob made that key reads Alice's reply chain.
    const later = copyOf(p.bob, components('pcs/thief2'));
    assert.equal(td.decode(p.bob.decrypt(a2)), 'a2');
    const a3 = p.alice.encrypt(te.encode('a3'));
    assert.ok(readable(later, a3));
    assert.ok(!readable(thief, a3));
  });
});

/**
 * Bob and an adversary "shadow" that runs Bob's side in lockstep (the same sends, the same
 * reads) from a copy of Bob's state, with Bob's X25519 randomness (so it knows every X25519
 * secret of Bob's, and through them every DH output of the session: what a quantum computer
 * that breaks X25519 gives) and, unless `sameKem`, ML-KEM randomness of its own.
 * Returns which of Alice's messages after the compromise the shadow could read.
 */
function quantumShadow(sameKem: boolean, bobOffers: boolean): { readBeforeHeal: number; readAfterHeal: number; healed: boolean } {
  const clock = { ms: 0 };
  const streams = { dh: Stream.of('q/bob/dh'), kem: Stream.of('q/bob/kem'), nonce: Stream.of('q/bob/nonce') };
  const cb: MessagingComponents = { crypto: splitBackend(streams), now: () => clock.ms };
  const ca = components('q/alice', clock);
  const aliceId = generateIdentity(ca.crypto);
  const bobId = generateIdentity(cb.crypto);
  const store = createPrekeyStore();
  const alice = initiateSession(aliceId, createBundle(cb.crypto, bobId, store), ca);
  const bob = acceptSession(bobId, store, alice.encrypt(te.encode('hello')), cb).session;
  alice.decrypt(bob.encrypt(te.encode('hi')));
  // Compromise: the shadow gets Bob's state and, from now on, Bob's X25519 randomness.
  const shadowStreams = { dh: streams.dh.clone(), kem: sameKem ? streams.kem.clone() : Stream.of('q/shadow/kem'), nonce: Stream.of('q/shadow/nonce') };
  const shadow = Session.decode(bob.encode(), { crypto: splitBackend(shadowStreams), now: () => clock.ms });
  const bobSends = (text: string): Uint8Array => {
    shadow.encrypt(te.encode(text));
    return bob.encrypt(te.encode(text));
  };
  let readBeforeHeal = 0;
  let readAfterHeal = 0;
  let healed = false;
  // Bob sends enough to be due for an offer (when `bobOffers`); Alice stays below her own quota.
  const n = bobOffers ? PQ_RATCHET_MESSAGES + 1 : 5;
  for (let i = 0; i < n; i++) alice.decrypt(bobSends(`b${i}`));
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 2; i++) {
      const m = alice.encrypt(te.encode(`a${round}.${i}`));
      const wasOutstanding = bob.pqOfferOutstanding;
      assert.equal(td.decode(bob.decrypt(m)), `a${round}.${i}`);
      if (wasOutstanding && !bob.pqOfferOutstanding) healed = true;
      const ok = readable(shadow, m);
      if (healed) readAfterHeal += ok ? 1 : 0;
      else readBeforeHeal += ok ? 1 : 0;
    }
    alice.decrypt(bobSends(`b.${round}`));
  }
  return { readBeforeHeal, readAfterHeal, healed };
}

describe('post-compromise security against an adversary that knows every X25519 secret', () => {
  test('once the post-quantum round trip completes, the shadow reads nothing Alice sends', () => {
    const r = quantumShadow(false, true);
    assert.ok(r.healed, 'the post-quantum step completed');
    assert.ok(r.readBeforeHeal > 0, 'before it, the shadow reads along');
    assert.equal(r.readAfterHeal, 0);
  });

  test('control: with Bob\'s ML-KEM randomness too, the shadow reads everything (only the KEM secret locks it out)', () => {
    const r = quantumShadow(true, true);
    assert.ok(r.healed);
    assert.equal(r.readBeforeHeal + r.readAfterHeal, 8);
  });

  test('control: without a post-quantum step, the DH ratchet alone does not lock this adversary out', () => {
    const r = quantumShadow(false, false);
    assert.ok(!r.healed);
    assert.equal(r.readBeforeHeal, 8);
  });
});
