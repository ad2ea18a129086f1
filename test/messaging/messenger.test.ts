// The messenger over a fake network: cards, sessions by name, receipts and states, files, queued
// messages, held set-ups, drops, duplicates, reordering, crashes between steps, restarts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isBackchannelError } from '../../src/errors.js';
import {
  BODY_LENGTH,
  CARD_LENGTH,
  MAX_INLINE_TEXT,
  cardFromText,
  cardToText,
  decodeCard,
  decodeContent,
  encodeCard,
  encodeContent,
  padBody,
  unpadBody,
} from '../../src/messaging/index.js';
import { Net } from './_net.js';

const te = new TextEncoder();

function texts(net: Net, who: string, contact: string, direction: 'in' | 'out'): string[] {
  const p = net.parties.find((x) => x.name === who)!;
  return p.messenger.history(contact).filter((h) => h.direction === direction).map((h) => h.text ?? `file:${h.fileName}`);
}

describe('contact cards', () => {
  test('encode, decode, text form; bad input is ERR_MSG_ENCODING', () => {
    const net = new Net();
    const a = net.party('a');
    const card = a.messenger.newCard();
    assert.equal(card.length, CARD_LENGTH);
    const d = decodeCard(card);
    assert.deepEqual(d.address.mailbox, a.address.mailbox);
    assert.deepEqual(encodeCard(d), card);
    assert.deepEqual(cardFromText(cardToText(card)), card);
    assert.deepEqual(cardFromText(cardToText(card).replace(/(.{60})/g, '$1\n')), card);
    for (const bad of [card.subarray(1), Uint8Array.of(2, ...card.subarray(1)), Uint8Array.of(...card, 0)]) {
      assert.throws(() => decodeCard(bad), (e: unknown) => isBackchannelError(e, 'ERR_MSG_ENCODING'));
    }
    assert.throws(() => cardFromText('abc'), (e: unknown) => isBackchannelError(e, 'ERR_MSG_ENCODING'));
  });

  test('content codec round trip and padding', () => {
    const msgId = new Uint8Array(8).fill(7);
    for (const c of [
      { kind: 'hello' as const, sentAt: 5 },
      { kind: 'text' as const, msgId, sentAt: 99, text: 'héllo' },
      { kind: 'receipt' as const, msgIds: [msgId, msgId] },
    ]) assert.deepEqual(decodeContent(encodeContent(c)), c);
    assert.deepEqual(decodeContent(Uint8Array.of(0x13)), { kind: 'unsupported', type: 0x13 });
    assert.throws(() => decodeContent(Uint8Array.of(0x7f)), (e: unknown) => isBackchannelError(e, 'ERR_MSG_ENCODING'));
    const body = padBody(Uint8Array.of(1, 2, 3));
    assert.equal(body.length, BODY_LENGTH);
    assert.deepEqual(unpadBody(body), Uint8Array.of(1, 2, 3));
    body[BODY_LENGTH - 1] = 1;
    assert.equal(unpadBody(body), null);
  });
});

describe('messenger', () => {
  test('two contacts talk by name; states go queued, sent, delivered; safety numbers agree', () => {
    const net = new Net();
    const a = net.party('a');
    const b = net.party('b');
    net.introduce(a, 'alice', b, 'bob');
    assert.deepEqual(a.messenger.contacts().map((c) => c.name), ['bob']);
    const states: string[] = [];
    a.messenger.subscribe((e) => {
      if (e.type === 'state') states.push(e.entry.state);
    });
    const sent = a.messenger.sendText('bob', 'hello bob');
    assert.equal(sent.state, 'queued');
    net.settle();
    b.messenger.sendText('alice', 'hello alice');
    net.settle();
    assert.deepEqual(texts(net, 'b', 'alice', 'in'), ['hello bob']);
    assert.deepEqual(texts(net, 'a', 'bob', 'in'), ['hello alice']);
    assert.deepEqual(a.messenger.history('bob').filter((h) => h.direction === 'out').map((h) => h.state), ['delivered']);
    assert.deepEqual(b.messenger.history('alice').filter((h) => h.direction === 'out').map((h) => h.state), ['delivered']);
    assert.ok(states.includes('sent') && states.at(-1) === 'delivered', states.join());
    assert.equal(a.messenger.contact('bob').session, 'up');
    assert.equal(b.messenger.contact('alice').session, 'up');
    const n = a.messenger.safetyNumber('bob');
    assert.match(n, /^(\d{5} ){11}\d{5}$/);
    assert.equal(b.messenger.safetyNumber('alice'), n);
    // the sent time is the sender's
    const got = b.messenger.history('alice')[0]!;
    assert.equal(got.sentAt, sent.sentAt);
    assert.ok(got.receivedAt > got.sentAt);
    // every message body on the wire has the same size
    for (const p of net.parties) for (const o of p.client.s.outbox) assert.equal(o.body.length, BODY_LENGTH);
  });

  test('the waiting side queues until the set-up comes; a set-up before the contact is added is held', () => {
    const net = new Net();
    const a = net.party('a');
    const b = net.party('b');
    const ca = a.messenger.newCard();
    const cb = b.messenger.newCard();
    // Whoever initiates adds first; the other writes before anything arrived.
    const aFirst = a.messenger.identityKey[0]! < b.messenger.identityKey[0]! || (a.messenger.identityKey[0] === b.messenger.identityKey[0]);
    const [init, resp, cInit, cResp] = aFirst ? [a, b, ca, cb] : [b, a, cb, ca];
    init.messenger.addContact('peer', cInit, cResp);
    net.collect();
    // The set-up reaches the responder before it knows the initiator: held, not shown by recv.
    assert.equal(net.deliver(0), true);
    assert.equal(resp.client.unconsumed(0, 10).length, 0);
    resp.messenger.addContact('peer', cResp, cInit);
    assert.equal(resp.messenger.contact('peer').session, 'up');
    resp.messenger.sendText('peer', 'written early');
    net.settle();
    assert.deepEqual(texts(net, init.name, 'peer', 'in'), ['written early']);
    assert.equal(init.messenger.contact('peer').session, 'up');

    // And a responder that writes before the set-up arrives: queued, then flushed.
    const net2 = new Net();
    const x = net2.party('x');
    const y = net2.party('y');
    net2.introduce(x, 'x', y, 'y');
    const waiting = x.messenger.contact('y').session === 'waiting' ? x : y;
    const other = waiting === x ? 'y' : 'x';
    const h = waiting.messenger.sendText(other, 'before the session');
    assert.equal(h.state, 'queued');
    net2.settle();
    assert.equal(waiting.messenger.history(other)[0]!.state, 'delivered');
  });

  test('files and long texts go as attachments, in either order of arrival', () => {
    const net = new Net();
    const a = net.party('a');
    const b = net.party('b');
    net.introduce(a, 'alice', b, 'bob');
    net.settle();
    const data = new Uint8Array(5000).map((_, i) => i % 251);
    a.messenger.sendFile('bob', 'notes.bin', data);
    net.collect();
    assert.equal(net.wire.length, 2);
    // the ratchet message (second) first, then the file
    net.deliver(1);
    assert.equal(b.messenger.history('alice')[0]!.state, 'receiving');
    net.deliver(0);
    const got = b.messenger.history('alice')[0]!;
    assert.equal(got.state, 'received');
    assert.equal(got.fileName, 'notes.bin');
    assert.deepEqual(b.messenger.fileData(got.id)?.data, data);
    net.settle();
    assert.equal(a.messenger.history('bob')[0]!.state, 'delivered');
    // a long text: the file first
    const long = 'x'.repeat(MAX_INLINE_TEXT + 100);
    a.messenger.sendText('bob', long);
    net.collect();
    net.deliver(0);
    net.deliver(0);
    net.settle();
    assert.deepEqual(texts(net, 'b', 'alice', 'in').at(-1), long);
    assert.equal(a.messenger.history('bob').at(-1)!.state, 'delivered');
  });

  test('a forged attachment body is dropped and the real one still completes', () => {
    const net = new Net();
    const a = net.party('a');
    const b = net.party('b');
    net.introduce(a, 'alice', b, 'bob');
    net.settle();
    a.messenger.sendFile('bob', 'f', te.encode('real contents'));
    net.collect();
    const real = net.wire[0]!.sent.body;
    const forged = real.slice();
    forged[forged.length - 1]! ^= 1;
    net.deliver(1);
    b.messenger.handleInbox(b.client.arrive(forged, 1));
    assert.equal(b.messenger.drops.badAttachment, 1);
    net.deliver(0);
    assert.equal(b.messenger.history('alice')[0]!.state, 'received');
  });

  test('the largest text fits one body with a set-up or a post-quantum offer or answer in its header', () => {
    const net = new Net();
    const a = net.party('a');
    const b = net.party('b');
    const ca = a.messenger.newCard();
    const cb = b.messenger.newCard();
    const aInitiates = Buffer.compare(Buffer.from(a.messenger.identityKey), Buffer.from(b.messenger.identityKey)) < 0;
    const [init, resp] = aInitiates ? [a, b] : [b, a];
    a.messenger.addContact('peer', ca, cb);
    b.messenger.addContact('peer', cb, ca);
    const full = 'y'.repeat(MAX_INLINE_TEXT);
    // Before any reply: the initiator's messages carry the set-up.
    init.messenger.sendText('peer', full);
    net.collect();
    // Past PQ_RATCHET_MESSAGES in both directions: offers and answers ride in headers.
    for (let i = 0; i < 60; i++) {
      init.messenger.sendText('peer', full);
      resp.messenger.sendText('peer', full);
      net.settle();
    }
    for (const p of net.parties) for (const o of p.client.s.outbox) assert.equal(o.body.length, BODY_LENGTH);
    assert.equal(texts(net, resp.name, 'peer', 'in').length, 61);
    assert.ok(init.messenger.history('peer').every((h) => h.direction === 'in' || h.state === 'delivered'));
    assert.equal(init.messenger.history('peer').filter((h) => h.kind === 'file').length, 0, 'no text went as an attachment');
  });

  test('while the client cannot send, hellos, receipts and messages wait for tick()', () => {
    const net = new Net();
    const a = net.party('a');
    const b = net.party('b');
    a.client.canSend = false;
    b.client.canSend = false;
    net.introduce(a, 'alice', b, 'bob');
    a.messenger.sendText('bob', 'patience');
    net.collect();
    assert.equal(net.wire.length, 0);
    a.client.canSend = true;
    assert.equal(a.messenger.tick(), 1);
    net.collect();
    // b cannot send its hello or receipt yet, but reads what comes
    while (net.wire.length > 0) net.deliver(0);
    assert.deepEqual(texts(net, 'b', 'alice', 'in'), ['patience']);
    net.collect();
    assert.equal(net.wire.length, 0);
    b.client.canSend = true;
    assert.equal(b.messenger.tick(), 1);
    net.settle();
    assert.equal(a.messenger.history('bob')[0]!.state, 'delivered');
    assert.equal(a.messenger.contact('bob').session, 'up');
  });

  test('messages of no contact stay in the inbox', () => {
    const net = new Net();
    const a = net.party('a');
    const b = net.party('b');
    net.introduce(a, 'alice', b, 'bob');
    net.settle();
    const plain = a.client.arrive(te.encode('anonymous hello'), 1);
    assert.equal(a.messenger.handleInbox(plain), false);
    const garbage = a.client.arrive(padBody(new Uint8Array(1500).fill(2)), 1);
    assert.equal(a.messenger.handleInbox(garbage), false);
    assert.equal(a.client.unconsumed(0, 10).length, 2);
  });

  test('duplicates are dropped and counted; a crash before the commit loses nothing and shows nothing twice', () => {
    const net = new Net();
    const a = net.party('a');
    const b = net.party('b');
    net.introduce(a, 'alice', b, 'bob');
    net.settle();
    a.messenger.sendText('bob', 'one');
    a.messenger.sendText('bob', 'two');
    net.collect();
    net.deliver(0, { keep: true });
    net.deliver(0); // the same again
    assert.equal(b.messenger.drops.duplicate, 1);
    // crash while taking "two": rolled back, still in the inbox
    b.client.crashOnConsume = true;
    assert.equal(net.deliver(0), false);
    assert.deepEqual(texts(net, 'b', 'alice', 'in'), ['one']);
    assert.equal(b.client.unconsumed(0, 10).length, 1);
    net.restart(b);
    assert.deepEqual(texts(net, 'b', 'alice', 'in'), ['one', 'two']);
    assert.equal(b.client.unconsumed(0, 10).length, 0);
    net.restart(b);
    assert.deepEqual(texts(net, 'b', 'alice', 'in'), ['one', 'two']);
    net.settle();
    assert.deepEqual(a.messenger.history('bob').map((h) => h.state), ['delivered', 'delivered']);
  });

  test('property: under loss, duplication and reordering every text is shown at most once, and exactly once unless lost', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ from: fc.boolean(), op: fc.constantFrom('send', 'deliver', 'dup', 'lose', 'restart', 'crash'), pick: fc.nat() }), { minLength: 10, maxLength: 60 }),
        (ops) => {
          const net = new Net();
          const a = net.party('a');
          const b = net.party('b');
          net.introduce(a, 'alice', b, 'bob');
          net.settle();
          const written = { a: [] as string[], b: [] as string[] };
          const lostTexts = new Set<string>();
          let losses = 0;
          let n = 0;
          const textOf = new Map<string, string>();
          for (const { from, op, pick } of ops) {
            const p = from ? a : b;
            net.collect();
            if (op === 'send') {
              const t = `${p.name}-${n++}`;
              p.messenger.sendText(p === a ? 'bob' : 'alice', t);
              (p === a ? written.a : written.b).push(t);
              net.collect();
              const last = net.wire.at(-1)!;
              textOf.set(Buffer.from(last.sent.id).toString('hex'), t);
            } else if (net.wire.length > 0) {
              const i = pick % net.wire.length;
              if (op === 'deliver') net.deliver(i);
              else if (op === 'dup') net.deliver(i, { keep: true });
              else if (op === 'lose') {
                const t = textOf.get(Buffer.from(net.wire[i]!.sent.id).toString('hex'));
                if (t !== undefined) lostTexts.add(t);
                losses++;
                net.lose(i);
              } else if (op === 'crash') {
                const w = net.wire[i]!;
                const to = w.sent.to.mailbox[0] === a.address.mailbox[0] ? a : b;
                to.client.crashOnConsume = true;
                net.deliver(i);
                to.client.crashOnConsume = false;
              } else net.restart(p);
            }
          }
          net.restart(a);
          net.restart(b);
          net.settle();
          const inB = texts(net, 'b', 'alice', 'in');
          const inA = texts(net, 'a', 'bob', 'in');
          assert.equal(new Set(inB).size, inB.length);
          assert.equal(new Set(inA).size, inA.length);
          for (const t of written.a) if (!lostTexts.has(t)) assert.ok(inB.includes(t), `${t} not shown`);
          for (const t of written.b) if (!lostTexts.has(t)) assert.ok(inA.includes(t), `${t} not shown`);
          for (const h of a.messenger.history('bob').filter((x) => x.direction === 'out')) {
            // A lost receipt leaves its message at 'sent'; a lost text is 'failed'.
            const ok = lostTexts.has(h.text!) ? ['failed', 'sent', 'delivered'] : losses > 0 ? ['sent', 'delivered'] : ['delivered'];
            assert.ok(ok.includes(h.state), `${h.text} ${h.state}`);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  test('names: taken, unknown, bad; rename, verify, remove', () => {
    const net = new Net();
    const a = net.party('a');
    const b = net.party('b');
    const c = net.party('c');
    net.introduce(a, 'alice', b, 'bob');
    const bad = (e: unknown): boolean => isBackchannelError(e, 'ERR_MSG_CONTACT');
    assert.throws(() => a.messenger.addContact('bob', a.messenger.newCard(), c.messenger.newCard()), bad);
    assert.throws(() => a.messenger.addContact('bob2', a.messenger.newCard(), b.messenger.newCard()), bad, 'same identity twice');
    assert.throws(() => a.messenger.addContact('me', a.messenger.newCard(), a.messenger.newCard()), bad);
    assert.throws(() => a.messenger.addContact('x', c.messenger.newCard(), c.messenger.newCard()), bad);
    for (const name of ['', '-x', ' x', 'a\u0007', 'x'.repeat(65)]) assert.throws(() => a.messenger.addContact(name, a.messenger.newCard(), c.messenger.newCard()), bad);
    assert.throws(() => a.messenger.sendText('nobody', 'hi'), bad);
    a.messenger.rename('bob', 'Bob B');
    assert.equal(a.messenger.setVerified('Bob B', true).verified, true);
    assert.deepEqual(a.messenger.contacts().map((x) => [x.name, x.verified]), [['Bob B', true]]);
    a.messenger.remove('Bob B');
    assert.deepEqual(a.messenger.contacts(), []);
  });
});
