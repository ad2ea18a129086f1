// Mailbox rotation notices (content 0x12): the contact that wrote to a rotated mailbox is told the
// new address inside the session and writes there from then on; what it sent before still arrives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeContent, encodeContent } from '../../src/messaging/index.js';
import { equalBytes } from '../../src/util/bytes.js';
import { Net } from './_net.js';

test('a rotated mailbox: the contact is told, switches, and mail already on the way arrives', () => {
  const net = new Net();
  const a = net.party('a');
  const b = net.party('b');
  net.introduce(a, 'alice', b, 'bob');
  net.settle();
  a.messenger.sendText('bob', 'before');
  net.collect(); // on the wire to b's old mailbox
  const fresh = new Uint8Array(32).fill(0xee);
  b.extra.push(fresh);
  assert.deepEqual(b.messenger.mailboxRotated(b.address.mailbox, { gateway: b.address.gateway, mailbox: fresh }), ['alice']);
  assert.deepEqual(b.messenger.ourMailboxOf('alice'), fresh);
  // A mailbox no contact writes to: nobody is told.
  assert.deepEqual(b.messenger.mailboxRotated(new Uint8Array(32), { gateway: b.address.gateway, mailbox: fresh }), []);
  net.settle();
  a.messenger.sendText('bob', 'after');
  net.collect();
  assert.equal(net.wire.length, 1);
  assert.ok(equalBytes(net.wire[0]!.sent.to.mailbox, fresh));
  net.settle();
  assert.deepEqual(b.messenger.history('alice').map((h) => h.text), ['before', 'after']);
  assert.equal(a.messenger.history('bob').at(-1)!.state, 'delivered');
  // It survives a restart of the contact.
  net.restart(a);
  a.messenger.sendText('bob', 'later');
  net.collect();
  assert.ok(equalBytes(net.wire[0]!.sent.to.mailbox, fresh));
  net.settle();
  assert.equal(a.messenger.drops.malformed + a.messenger.drops.unsupported, 0);
});

test('rotation content: round trip; a wrong length is an encoding error', () => {
  const c = { kind: 'rotation' as const, gateway: new Uint8Array(32).fill(1), mailbox: new Uint8Array(32).fill(2) };
  assert.deepEqual(decodeContent(encodeContent(c)), c);
  assert.throws(() => decodeContent(encodeContent(c).subarray(0, 40)));
  assert.throws(() => decodeContent(Uint8Array.of(...encodeContent(c), 0)));
});
