// Introductions by a mutual contact over the fake network: the flow to two new contacts, decline
// and expiry (nothing half made), restarts, bad input (typed errors and counted drops), a lying
// introducer caught by safety numbers, and the codec of the introduction contents.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type ErrorCode, isBackchannelError } from '../../src/errors.js';
import {
  CARD_LENGTH,
  INTRODUCTION_GRACE_MS,
  INTRODUCTION_RETENTION_MS,
  INTRODUCTION_TTL_MS,
  INTRO_CARD_PARTS,
  INTRO_CARD_PART_LENGTH,
  MAX_CONTENT_LENGTH,
  MAX_OPEN_OFFERS_PER_CONTACT,
  type Content,
  decodeContent,
  encodeContent,
} from '../../src/messaging/index.js';
import type { Party } from './_net.js';
import { triangle } from './_triangle.js';
import { decodePrekeyStore } from '../../src/messaging/identity.js';

const isCode = (code: ErrorCode) => (e: unknown) => isBackchannelError(e, code);

function offerId(p: Party): number {
  const offered = p.messenger.introductions().filter((i) => i.role === 'received' && i.state === 'offered');
  assert.equal(offered.length, 1);
  return offered[0]!.id;
}

function texts(p: Party, contact: string, direction: 'in' | 'out'): string[] {
  return p.messenger.history(contact).filter((h) => h.direction === direction).map((h) => h.text ?? '');
}

function contactId(p: Party, name: string): number {
  return p.store.contacts().find((c) => c.name === name)!.id;
}

/** Has `from` send `content` to its contact `to` inside their session (a misbehaving peer). */
function sendRaw(from: Party, to: string, content: Content): void {
  from.store.queueControl(contactId(from, to), encodeContent(content));
  from.messenger.tick();
}

describe('introductions', () => {
  test('both accept: they become contacts, talk by name, and their safety numbers agree', () => {
    const { net, a, b, c } = triangle();
    const made = a.messenger.introduce('bob', 'carol');
    assert.deepEqual([made.role, made.names, made.answers, made.state], ['made', ['bob', 'carol'], ['pending', 'pending'], 'offered']);
    net.settle();
    const atB = b.messenger.introductions();
    assert.deepEqual(atB.map((i) => [i.role, i.from, i.names, i.state]), [['received', 'alice', ['carol'], 'offered']]);
    assert.deepEqual(c.messenger.introductions().map((i) => [i.from, i.names]), [['alice', ['bob']]]);

    b.messenger.acceptIntroduction(atB[0]!.id);
    net.settle();
    assert.deepEqual(a.messenger.introductions()[0]!.answers, ['accepted', 'pending']);
    assert.equal(b.messenger.introductions()[0]!.state, 'accepted');
    assert.deepEqual(b.messenger.contacts().map((x) => x.name), ['alice']);

    c.messenger.acceptIntroduction(offerId(c), 'Bobby');
    net.settle();
    assert.deepEqual(a.messenger.introductions().map((i) => [i.state, i.answers]), [['done', ['accepted', 'accepted']]]);
    assert.deepEqual(b.messenger.introductions().map((i) => [i.state, i.names]), [['done', ['carol']]]);
    assert.deepEqual(c.messenger.introductions().map((i) => [i.state, i.names]), [['done', ['Bobby']]]);
    assert.deepEqual(b.messenger.contacts().map((x) => x.name), ['alice', 'carol']);
    assert.deepEqual(c.messenger.contacts().map((x) => x.name), ['Bobby', 'alice']);
    assert.equal(b.messenger.contact('carol').session, 'up');
    assert.equal(c.messenger.contact('Bobby').session, 'up');
    assert.equal(b.messenger.safetyNumber('carol'), c.messenger.safetyNumber('Bobby'));

    b.messenger.sendText('carol', 'hi carol, alice says hi');
    c.messenger.sendText('Bobby', 'hi bob');
    net.settle();
    assert.deepEqual(texts(c, 'Bobby', 'in'), ['hi carol, alice says hi']);
    assert.deepEqual(texts(b, 'carol', 'in'), ['hi bob']);
    assert.equal(b.messenger.history('carol')[0]!.state, 'delivered');
    // The introducer sees none of it, and nothing was dropped anywhere.
    assert.deepEqual(a.messenger.history('bob'), []);
    for (const p of [a, b, c]) assert.equal(p.messenger.drops.introduction, 0, p.name);
  });

  test('answers and cards in any order, and restarts at every step, make the contacts once', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 4 }), fc.integer({ min: 0, max: 1000 }), (bFirst, restarts, seed) => {
        const { net, a, b, c } = triangle();
        const parties = { a, b, c };
        let r = seed;
        const shuffleDeliver = (): void => {
          for (let rounds = 0; rounds < 100; rounds++) {
            net.collect();
            if (net.wire.length === 0) return;
            while (net.wire.length > 0) {
              r = (r * 1103515245 + 12345) % 2147483648;
              net.deliver(r % net.wire.length);
            }
          }
        };
        a.messenger.introduce('bob', 'carol');
        shuffleDeliver();
        for (const name of restarts.slice(0, 2)) net.restart(parties[name as 'a']);
        const [first, second] = bFirst ? [b, c] : [c, b];
        first.messenger.acceptIntroduction(offerId(first));
        for (const name of restarts.slice(2)) net.restart(parties[name as 'a']);
        second.messenger.acceptIntroduction(offerId(second));
        shuffleDeliver();
        assert.deepEqual(b.messenger.contacts().map((x) => x.name), ['alice', 'carol']);
        assert.deepEqual(c.messenger.contacts().map((x) => x.name), ['alice', 'bob']);
        b.messenger.sendText('carol', 'one');
        c.messenger.sendText('bob', 'two');
        shuffleDeliver();
        assert.deepEqual(texts(c, 'bob', 'in'), ['one']);
        assert.deepEqual(texts(b, 'carol', 'in'), ['two']);
        for (const p of [a, b, c]) {
          assert.equal(p.messenger.introductions().length, 1);
          assert.equal(p.messenger.introductions()[0]!.state, 'done');
        }
      }),
      { numRuns: 12 },
    );
  });

  test('a decline: the introducer is told, the other side expires, nobody is half a contact', () => {
    const { net, a, b, c } = triangle();
    a.messenger.introduce('bob', 'carol');
    net.settle();
    c.messenger.acceptIntroduction(offerId(c));
    b.messenger.declineIntroduction(offerId(b));
    net.settle();
    // Bob's decline came first: carol's accept, read after it, is too late (counted).
    assert.deepEqual(a.messenger.introductions().map((i) => [i.state, i.answers]), [['declined', ['declined', 'pending']]]);
    assert.equal(a.messenger.drops.introduction, 1);
    assert.equal(b.messenger.introductions()[0]!.state, 'declined');
    // Carol is told nothing: she waits, then her side expires.
    assert.equal(c.messenger.introductions()[0]!.state, 'accepted');
    assert.equal(c.messenger.introductions()[0]!.expiresAt, c.messenger.introductions()[0]!.createdAt + INTRODUCTION_TTL_MS + INTRODUCTION_GRACE_MS);
    net.clock.ms += INTRODUCTION_TTL_MS + INTRODUCTION_GRACE_MS + 1000;
    assert.equal(c.messenger.introductions()[0]!.state, 'expired');
    assert.deepEqual(b.messenger.contacts().map((x) => x.name), ['alice']);
    assert.deepEqual(c.messenger.contacts().map((x) => x.name), ['alice']);
    // A late answer changes nothing.
    assert.throws(() => b.messenger.acceptIntroduction(b.messenger.introductions()[0]!.id), isCode('ERR_MSG_INTRODUCTION'));
  });

  test('an introduction not answered in time expires on every side', () => {
    const { net, a, b, c } = triangle();
    a.messenger.introduce('bob', 'carol');
    net.settle();
    b.messenger.acceptIntroduction(offerId(b));
    net.settle();
    net.clock.ms += INTRODUCTION_TTL_MS + 1;
    assert.equal(a.messenger.introductions()[0]!.state, 'expired');
    assert.equal(c.messenger.introductions()[0]!.state, 'expired');
    assert.throws(() => c.messenger.acceptIntroduction(c.messenger.introductions()[0]!.id), isCode('ERR_MSG_INTRODUCTION'));
    net.clock.ms += INTRODUCTION_GRACE_MS;
    assert.equal(b.messenger.introductions()[0]!.state, 'expired');
  });

  test('bad calls are typed errors', () => {
    const { net, a, b, c } = triangle();
    assert.throws(() => a.messenger.introduce('bob', 'bob'), isCode('ERR_MSG_INTRODUCTION'));
    assert.throws(() => a.messenger.introduce('bob', 'nobody'), isCode('ERR_MSG_CONTACT'));
    a.messenger.setBlocked('carol', true);
    assert.throws(() => a.messenger.introduce('bob', 'carol'), isCode('ERR_MSG_INTRODUCTION'));
    a.messenger.setBlocked('carol', false);
    a.messenger.introduce('bob', 'carol');
    net.settle();
    const id = offerId(b);
    assert.throws(() => b.messenger.acceptIntroduction(id + 1000), isCode('ERR_MSG_INTRODUCTION'));
    assert.throws(() => b.messenger.acceptIntroduction(Number.NaN), isCode('ERR_MSG_INTRODUCTION'));
    // The introducer may not answer its own introduction.
    assert.throws(() => a.messenger.acceptIntroduction(a.messenger.introductions()[0]!.id), isCode('ERR_MSG_INTRODUCTION'));
    assert.throws(() => b.messenger.acceptIntroduction(id, 'alice'), isCode('ERR_MSG_CONTACT'));
    assert.throws(() => b.messenger.acceptIntroduction(id, ' bad name'), isCode('ERR_MSG_CONTACT'));
    b.messenger.acceptIntroduction(id);
    assert.throws(() => b.messenger.acceptIntroduction(id), isCode('ERR_MSG_INTRODUCTION'));
    assert.throws(() => b.messenger.declineIntroduction(id), isCode('ERR_MSG_INTRODUCTION'));
    // Offered by a contact blocked since: no answer can go.
    c.messenger.setBlocked('alice', true);
    assert.throws(() => c.messenger.acceptIntroduction(offerId(c)), isCode('ERR_MSG_INTRODUCTION'));
  });

  test('two who are contacts already: the forwarded card fails cleanly on both sides', () => {
    const { net, a, b, c } = triangle();
    net.introduce(b, 'bob-for-carol', c, 'carol-for-bob');
    net.settle();
    a.messenger.introduce('bob', 'carol');
    net.settle();
    b.messenger.acceptIntroduction(offerId(b));
    c.messenger.acceptIntroduction(offerId(c));
    net.settle();
    assert.equal(b.messenger.introductions()[0]!.state, 'failed');
    assert.equal(c.messenger.introductions()[0]!.state, 'failed');
    assert.equal(b.messenger.drops.introduction, 1);
    assert.deepEqual(b.messenger.contacts().map((x) => x.name), ['alice', 'carol-for-bob']);
  });

  test('messages that name no introduction of the sender, duplicates and bad pieces are counted drops', () => {
    const { net, a, b, c } = triangle();
    const d = net.party('d');
    net.introduce(d, 'dave', b, 'bob');
    net.settle();
    a.messenger.introduce('bob', 'carol');
    net.settle();
    const introId = a.store.introductions()[0]!.introId;
    b.messenger.acceptIntroduction(offerId(b));
    net.settle();
    // Dave is b's contact but not the introducer: his pieces and answers are dropped.
    sendRaw(d, 'bob', { kind: 'intro-card', introId, part: 0, parts: INTRO_CARD_PARTS, bytes: new Uint8Array(INTRO_CARD_PART_LENGTH) });
    sendRaw(d, 'bob', { kind: 'intro-decline', introId });
    net.settle();
    assert.equal(b.messenger.drops.introduction, 2);
    // The introducer sends a piece of a wrong length, one with a wrong count, and the same offer twice.
    sendRaw(a, 'bob', { kind: 'intro-card', introId, part: 0, parts: INTRO_CARD_PARTS, bytes: new Uint8Array(10) });
    sendRaw(a, 'bob', { kind: 'intro-card', introId, part: 0, parts: 2, bytes: new Uint8Array(INTRO_CARD_PART_LENGTH) });
    sendRaw(a, 'bob', { kind: 'intro-offer', introId, sentAt: 1, name: 'carol' });
    net.settle();
    assert.equal(b.messenger.drops.introduction, 5);
    // An answer to the introducer for an introduction it never made, and a second answer.
    sendRaw(b, 'alice', { kind: 'intro-decline', introId: new Uint8Array(16).fill(9) });
    sendRaw(b, 'alice', { kind: 'intro-decline', introId });
    net.settle();
    assert.equal(a.messenger.drops.introduction, 2);
    assert.deepEqual(a.messenger.introductions()[0]!.answers, ['accepted', 'pending']);
    // Still completes.
    c.messenger.acceptIntroduction(offerId(c));
    net.settle();
    assert.deepEqual(b.messenger.contacts().map((x) => x.name), ['alice', 'carol', 'dave']);
    assert.equal(b.messenger.introductions()[0]!.state, 'done');
  });

  test('a flood of offers from one contact is capped', () => {
    const { net, a, b } = triangle();
    const d = net.party('d');
    net.introduce(a, 'alice', d, 'dave');
    net.settle();
    for (let i = 0; i < MAX_OPEN_OFFERS_PER_CONTACT + 3; i++) a.messenger.introduce('bob', 'dave');
    net.settle();
    assert.equal(b.messenger.introductions().length, MAX_OPEN_OFFERS_PER_CONTACT);
    assert.equal(b.messenger.drops.introduction, 3);
  });

  test('a card that does not decode fails the introduction, counted', () => {
    const { net, a, b, c } = triangle();
    a.messenger.introduce('bob', 'carol');
    net.settle();
    c.messenger.acceptIntroduction(offerId(c));
    net.settle();
    // The introducer (here its store) spoils carol's card before bob's answer makes it go out.
    const r = a.store.introductions()[0]!;
    r.card2![0] = 9; // an unknown card version
    a.store.updateIntroduction(r);
    b.messenger.acceptIntroduction(offerId(b));
    net.settle();
    assert.equal(b.messenger.introductions()[0]!.state, 'failed');
    assert.equal(b.messenger.drops.introduction, 1);
    assert.deepEqual(b.messenger.contacts().map((x) => x.name), ['alice']);
  });

  test('a lying introducer that swaps in a card of its own is caught by comparing safety numbers', () => {
    const { net, a, b, c } = triangle();
    const m = net.party('m'); // the introducer's second identity, in the middle
    a.messenger.introduce('bob', 'carol');
    net.settle();
    c.messenger.acceptIntroduction(offerId(c));
    net.settle();
    const r = a.store.introductions()[0]!;
    r.card2 = m.messenger.newCard();
    a.store.updateIntroduction(r);
    b.messenger.acceptIntroduction(offerId(b));
    net.settle();
    // Bob has a contact "carol" whose messages go to m, not to c.
    assert.deepEqual(b.messenger.contacts().map((x) => x.name), ['alice', 'carol']);
    const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    assert.equal(b.messenger.contact('carol').identityKey, hex(m.messenger.identityKey));
    // Carol got bob's real card: her safety number with "bob" is not bob's with "carol".
    assert.notEqual(b.messenger.safetyNumber('carol'), c.messenger.safetyNumber('bob'));
  });

  test('state survives a restart: offers are listed once, and accepted after it', () => {
    const { net, a, b, c } = triangle();
    a.messenger.introduce('bob', 'carol');
    net.settle();
    net.restart(b);
    net.restart(b);
    assert.equal(b.messenger.introductions().length, 1);
    b.messenger.acceptIntroduction(offerId(b));
    net.restart(a);
    c.messenger.acceptIntroduction(offerId(c));
    net.settle();
    net.restart(c);
    assert.deepEqual(c.messenger.contacts().map((x) => x.name), ['alice', 'bob']);
    assert.equal(c.messenger.introductions().length, 1);
  });
});

describe('introduction contents', () => {
  const id16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
  const k32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const introContent: fc.Arbitrary<Content> = fc.oneof(
    fc.record({ kind: fc.constant('intro-offer' as const), introId: id16, sentAt: fc.integer({ min: 0, max: 2 ** 48 }), name: fc.string({ maxLength: 64 }) }),
    fc.integer({ min: 0, max: INTRO_CARD_PARTS - 1 }).chain((part) =>
      fc.record({ kind: fc.constant('intro-card' as const), introId: id16, part: fc.constant(part), parts: fc.constant(INTRO_CARD_PARTS), bytes: fc.uint8Array({ maxLength: INTRO_CARD_PART_LENGTH }) }),
    ),
    fc.record({ kind: fc.constant('intro-decline' as const), introId: id16 }),
    fc.record({ kind: fc.constant('intro-accept' as const), introId: id16, prekeyId: fc.nat({ max: 0xffffffff }), prekey: k32, gateway: k32, mailbox: k32 }),
  );

  test('round trip, within one content', () => {
    assert.ok(INTRO_CARD_PARTS * INTRO_CARD_PART_LENGTH >= CARD_LENGTH && (INTRO_CARD_PARTS - 1) * INTRO_CARD_PART_LENGTH < CARD_LENGTH);
    fc.assert(
      fc.property(introContent, (c) => {
        const bytes = encodeContent(c);
        assert.ok(bytes.length <= MAX_CONTENT_LENGTH);
        assert.deepEqual(decodeContent(bytes), { ...c });
      }),
    );
  });

  test('any other bytes after the kind are an encoding error, never a crash', () => {
    fc.assert(
      fc.property(fc.constantFrom(0x10, 0x11), fc.uint8Array({ maxLength: 200 }), (kind, rest) => {
        try {
          const c = decodeContent(Uint8Array.of(kind, ...rest));
          assert.ok(c.kind.startsWith('intro-'));
          assert.deepEqual(decodeContent(encodeContent(c)), c);
        } catch (e) {
          assert.ok(isBackchannelError(e, 'ERR_MSG_ENCODING'), String(e));
        }
      }),
    );
  });
});

describe('introduction notices (what recv --follow and chat show once) and pruning', () => {
  const prekeyCount = (p: Party): number => decodePrekeyStore(p.store.getValue('prekeys')!).keys.size;
  const notices = (p: Party): string[] => p.messenger.introductionNotices().map((n) => `${n.kind} ${n.introduction.state}`);
  const markAll = (p: Party): void => {
    for (const n of p.messenger.introductionNotices()) p.messenger.markIntroductionShown(n.introduction.id, n.kind);
  };

  test('an offer and its outcome are each a notice until marked shown, also across a restart; events say when to look', () => {
    const { net, a, b, c } = triangle();
    const events: string[] = [];
    b.messenger.subscribe((e) => e.type === 'introduction' && events.push(`${e.introduction.role} ${e.introduction.state}`));
    a.messenger.introduce('bob', 'carol');
    assert.deepEqual(notices(a), []); // our own offer is not news to us
    net.settle();
    assert.deepEqual(events, ['received offered']);
    assert.deepEqual(notices(b), ['offer offered']);
    b.messenger.markIntroductionShown(offerId(b), 'offer');
    b.messenger.markIntroductionShown(offerId(b), 'offer'); // idempotent
    assert.deepEqual(notices(b), []);
    net.restart(b);
    b.messenger.subscribe((e) => e.type === 'introduction' && events.push(`${e.introduction.role} ${e.introduction.state}`));
    assert.deepEqual(notices(b), []);
    assert.deepEqual(notices(c), ['offer offered']);
    b.messenger.acceptIntroduction(offerId(b));
    c.messenger.acceptIntroduction(offerId(c)); // carol never saw the offer in a viewer: no offer notice once answered
    assert.deepEqual(notices(c), []);
    net.settle();
    assert.deepEqual(notices(a), ['outcome done']);
    assert.deepEqual(notices(b), ['outcome done']);
    assert.deepEqual(notices(c), ['outcome done']);
    assert.ok(events.includes('received done'));
    for (const p of [a, b, c]) markAll(p);
    for (const p of [a, b, c]) net.restart(p);
    for (const p of [a, b, c]) assert.deepEqual(notices(p), []);
  });

  test('a decline: the decliner is not told its own answer, the introducer is; the one who accepted hears of its expiry', () => {
    const { net, a, b, c } = triangle();
    a.messenger.introduce('bob', 'carol');
    net.settle();
    c.messenger.acceptIntroduction(offerId(c));
    b.messenger.declineIntroduction(offerId(b));
    net.settle();
    assert.deepEqual(notices(b), []);
    assert.deepEqual(notices(a), ['outcome declined']);
    assert.deepEqual(notices(c), []);
    net.clock.ms += INTRODUCTION_TTL_MS + INTRODUCTION_GRACE_MS + 1000;
    assert.deepEqual(notices(c), ['outcome expired']);
  });

  test('a decline gives back what the card held: the accepted side releases its prekey and mailbox at expiry; the decliner made none', () => {
    const { net, a, b, c } = triangle();
    a.messenger.introduce('bob', 'carol');
    net.settle();
    const [b0, c0] = [prekeyCount(b), prekeyCount(c)];
    c.messenger.acceptIntroduction(offerId(c));
    b.messenger.declineIntroduction(offerId(b));
    net.settle();
    assert.equal(prekeyCount(c), c0 + 1); // the card carol made holds a one-time prekey
    assert.equal(prekeyCount(b), b0); // bob made no card
    net.clock.ms += INTRODUCTION_TTL_MS + INTRODUCTION_GRACE_MS + 1000;
    c.messenger.tick();
    assert.equal(c.messenger.introductions()[0]!.state, 'expired');
    assert.equal(prekeyCount(c), c0);
    assert.equal(c.released.length, 1);
    assert.equal(b.released.length, 0);
  });

  test(`finished introductions are deleted ${INTRODUCTION_RETENTION_MS / 86_400_000} days after their answer window closed, open ones never`, () => {
    const { net, a, b, c } = triangle();
    a.messenger.introduce('bob', 'carol');
    net.settle();
    b.messenger.acceptIntroduction(offerId(b));
    c.messenger.acceptIntroduction(offerId(c));
    net.settle();
    a.messenger.introduce('bob', 'carol'); // a second one, declined
    net.settle();
    b.messenger.declineIntroduction(b.messenger.introductions().find((i) => i.state === 'offered')!.id);
    net.settle();
    const window = INTRODUCTION_TTL_MS + INTRODUCTION_GRACE_MS;
    net.clock.ms += window + INTRODUCTION_RETENTION_MS - 60_000;
    for (const p of [a, b, c]) p.messenger.tick();
    assert.equal(a.messenger.introductions().length, 2);
    assert.equal(b.messenger.introductions().length, 2);
    net.clock.ms += 120_000;
    for (const p of [a, b, c]) p.messenger.tick();
    for (const p of [a, b, c]) assert.deepEqual(p.messenger.introductions(), [], p.name);
    // The contacts they made stay, and talk.
    assert.deepEqual(b.messenger.contacts().map((x) => x.name), ['alice', 'carol']);
    // An open offer is never pruned (it expires first).
    a.messenger.introduce('bob', 'carol');
    net.settle();
    assert.equal(b.messenger.introductions()[0]!.state, 'offered');
  });
});
