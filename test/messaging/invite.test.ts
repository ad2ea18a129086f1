// Contacts by code, the exchange itself: two sides stepped against a real rendezvous service (in
// memory, no network). The right code gives each side the other's card; a wrong code fails on
// both sides and burns the code; a taken channel is drawn again; lost answers, restarts (the
// state through its encoding) and expiry are handled.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeBackend } from '../../src/crypto/node.js';
import {
  MAX_CARD_LENGTH,
  MISMATCH_MESSAGE,
  decodeInviteState,
  encodeInviteState,
  expireInvite,
  inviteEnded,
  inviteRequest,
  newAccept,
  newInvite,
  onInviteAnswer,
} from '../../src/messaging/invite.js';
import type { ContactExchange, InviteEvent, InviteState } from '../../src/messaging/invite.js';
import { WORDLIST } from '../../src/messaging/wordlist.js';
import { decodeRendezvousAnswer, encodeRendezvousAnswer, encodeRendezvousRequest } from '../../src/messaging/rendezvous.js';
import { RendezvousService } from '../../src/server/rendezvous.js';
import { toHex } from '../../src/util/bytes.js';

const c = nodeBackend;
const now = 1_700_000_000_000;
const clock = { now: () => now, setTimer: () => 0, clearTimer: () => undefined };

/** A ContactExchange with random cards of `cardLength` bytes that records what it is given. */
function recordingExchange(cardLength = 1300): ContactExchange & { added: { name: string; ours: string; theirs: string }[]; made: string[] } {
  const made: string[] = [];
  const added: { name: string; ours: string; theirs: string }[] = [];
  return {
    made,
    added,
    newCard() {
      const card = c.randomBytes(cardLength);
      made.push(toHex(card));
      return card;
    },
    addContact(name, ours, theirs) {
      added.push({ name, ours: toHex(ours), theirs: toHex(theirs) });
    },
  };
}

function step(svc: RendezvousService, s: InviteState, x: ContactExchange, lose = false): InviteEvent[] {
  const req = inviteRequest(s, now);
  if (req === null) return [];
  const { answer } = svc.handle(encodeRendezvousRequest(req));
  // Through the answer's wire form, padded as a SURB reply is.
  const back = decodeRendezvousAnswer(encodeRendezvousAnswer(answer, 2000));
  return onInviteAnswer(s, lose ? null : back, c, x);
}

function openInvite(svc: RendezvousService, x: ContactExchange): { a: InviteState; code: string } {
  const a = newInvite(c, { name: 'bob', now });
  const ev = step(svc, a, x);
  const code = ev.find((e) => e.type === 'code');
  assert.ok(code !== undefined && code.type === 'code');
  assert.equal(a.stage, 'open');
  return { a, code: code.code };
}

/** Steps both sides in turn until both end (or a bound). */
function run(svc: RendezvousService, a: InviteState, xa: ContactExchange, b: InviteState, xb: ContactExchange): { ea: InviteEvent[]; eb: InviteEvent[] } {
  const ea: InviteEvent[] = [];
  const eb: InviteEvent[] = [];
  for (let i = 0; i < 20 && !(inviteEnded(a) && inviteEnded(b)); i++) {
    eb.push(...step(svc, b, xb));
    ea.push(...step(svc, a, xa));
  }
  return { ea, eb };
}

const failure = (events: InviteEvent[]) => events.find((e) => e.type === 'failed') as Extract<InviteEvent, { type: 'failed' }> | undefined;

describe('contacts by code', () => {
  test('the right code gives each side the other\'s card, under the names they chose', () => {
    const svc = new RendezvousService({ clock });
    // Cards as long as a posting allows, on both sides.
    const xa = recordingExchange(MAX_CARD_LENGTH);
    const xb = recordingExchange(MAX_CARD_LENGTH);
    const { a, code } = openInvite(svc, xa);
    const b = newAccept(c, { code: code.toUpperCase().replaceAll('-', ' '), name: 'alice', now });
    const { ea, eb } = run(svc, a, xa, b, xb);
    assert.equal(a.stage, 'done');
    assert.equal(b.stage, 'done');
    assert.ok(ea.some((e) => e.type === 'done') && eb.some((e) => e.type === 'done'));
    assert.deepEqual(xa.added, [{ name: 'bob', ours: xa.made[0], theirs: xb.made[0] }]);
    assert.deepEqual(xb.added, [{ name: 'alice', ours: xb.made[0], theirs: xa.made[0] }]);
    // No secret stays in an ended invite.
    for (const s of [a, b]) assert.deepEqual([s.y, s.posting, s.ourCard], [null, null, null]);
  });

  test('a wrong code fails on both sides with the same clear message, and the code is burned', () => {
    const svc = new RendezvousService({ clock });
    const xa = recordingExchange();
    const xb = recordingExchange();
    const { a, code } = openInvite(svc, xa);
    const parts = code.split('-');
    const i = WORDLIST.indexOf(parts[2]!);
    parts[2] = WORDLIST[(i + 1) % WORDLIST.length]!;
    const b = newAccept(c, { code: parts.join('-'), name: 'mallory', now });
    const { ea, eb } = run(svc, a, xa, b, xb);
    for (const [s, events] of [[a, ea], [b, eb]] as const) {
      assert.equal(s.stage, 'failed');
      assert.deepEqual(s.failure, { code: 'ERR_INVITE_MISMATCH', message: MISMATCH_MESSAGE });
      assert.equal(failure(events)?.code, 'ERR_INVITE_MISMATCH');
    }
    assert.deepEqual([xa.added, xb.added], [[], []]);
    // The right code now finds only the burned invite: no second guess.
    const late = newAccept(c, { code, name: 'carol', now });
    const xc = recordingExchange();
    const events = [...step(svc, late, xc), ...step(svc, late, xc)];
    assert.equal(late.stage, 'failed');
    assert.equal(failure(events)?.code, 'ERR_INVITE_STATE');
    assert.match(failure(events)!.message, /used already/);
    assert.deepEqual(xc.added, []);
  });

  test('a code used once cannot be used again', () => {
    const svc = new RendezvousService({ clock });
    const { a, code } = openInvite(svc, recordingExchange());
    const b = newAccept(c, { code, name: 'x', now });
    run(svc, a, recordingExchange(), b, recordingExchange());
    assert.equal(b.stage, 'done');
    const again = newAccept(c, { code, name: 'y', now });
    step(svc, again, recordingExchange());
    assert.equal(again.stage, 'failed');
    assert.equal(again.failure?.code, 'ERR_INVITE_STATE');
  });

  test('a taken channel is drawn again before the code is shown', () => {
    const svc = new RendezvousService({ clock });
    const a = newInvite(c, { name: 'bob', now });
    const first = a.channel;
    // Someone else holds side 0 of that channel already.
    svc.handle(encodeRendezvousRequest({ op: 'post', channel: first, side: 0, token: c.randomBytes(16), lifetimeS: 60, posting: Uint8Array.of(1) }));
    const x = recordingExchange();
    assert.deepEqual(step(svc, a, x), []);
    assert.equal(a.stage, 'claiming');
    assert.notEqual(a.channel, first);
    assert.ok(step(svc, a, x).some((e) => e.type === 'code'));
    assert.ok(a.code.startsWith(`${a.channel}-`));
  });

  test('lost answers change nothing, and a restart (the state through its encoding) goes on', () => {
    const svc = new RendezvousService({ clock });
    const xa = recordingExchange();
    const xb = recordingExchange();
    const opened = openInvite(svc, xa);
    let a = opened.a;
    let b = newAccept(c, { code: opened.code, name: 'alice', now });
    for (let i = 0; i < 20 && !(inviteEnded(a) && inviteEnded(b)); i++) {
      const before = encodeInviteState(b);
      assert.deepEqual(step(svc, b, xb, true), []); // lost: no change
      assert.deepEqual(encodeInviteState(b), before);
      step(svc, b, xb);
      a = decodeInviteState(encodeInviteState(a));
      b = decodeInviteState(encodeInviteState(b));
      step(svc, a, xa);
    }
    assert.deepEqual([a.stage, b.stage], ['done', 'done']);
    assert.equal(xa.added[0]!.theirs, xb.made[0]);
    assert.equal(xb.added[0]!.theirs, xa.made[0]);
    assert.equal(xb.made.length, 1); // the same card, however often the reply was posted
  });

  test('an invite expires with a clear error, and malformed states and codes are typed errors', () => {
    const a = newInvite(c, { name: 'bob', now });
    const e = expireInvite(a);
    assert.equal(e?.type, 'failed');
    assert.equal(a.failure?.code, 'ERR_INVITE_EXPIRED');
    assert.equal(expireInvite(a), null);
    assert.throws(() => newAccept(c, { code: '12-not-a-real-code', name: 'x', now }), (err: unknown) => (err as { code?: string }).code === 'ERR_INVITE_CODE');
    assert.throws(() => decodeInviteState(new TextEncoder().encode('{"id":1}')), (err: unknown) => (err as { code?: string }).code === 'ERR_INVITE_STATE');
    assert.throws(() => newInvite(c, { name: 'x', now, lifetimeMs: 5 }), RangeError);
  });

  test('garbage posted on the other side burns the invite rather than crash it', () => {
    const svc = new RendezvousService({ clock });
    const { a, code } = openInvite(svc, recordingExchange());
    svc.handle(encodeRendezvousRequest({ op: 'post', channel: a.channel, side: 1, token: c.randomBytes(16), lifetimeS: 60, posting: Uint8Array.of(2, 0xff, 0xff) }));
    const events = [...step(svc, a, recordingExchange()), ...step(svc, a, recordingExchange())];
    assert.equal(a.stage, 'failed');
    assert.equal(failure(events)?.code, 'ERR_INVITE_MISMATCH');
    assert.ok(code.length > 0);
  });
});
