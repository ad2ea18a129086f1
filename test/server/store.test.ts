/**
 * The gateway's final stage decides, and returns, what becomes of a packet that ends at the
 * gateway; it never stores or sends anything itself. Real Sphinx packets, opened as the last hop.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { finalStage } from '../../src/server/store.js';
import type { FinalOutcome } from '../../src/server/store.js';
import type { MailboxRoute } from '../../src/server/mailbox.js';
import { ownMailbox } from '../../src/pki/intake.js';
import { equalBytes } from '../../src/util/bytes.js';
import { RECIPIENT_ID_LENGTH, SURB_ID_LENGTH } from '../../src/sphinx/constants.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { encodeForwardPayload } from '../../src/sphinx/payload.js';
import { Sphinx } from '../../src/sphinx/sphinx.js';
import type { PathHop } from '../../src/sphinx/sphinx.js';

const c = nodeBackend;
const g = geometryFromUserPayload(3, 200, true);
const sphinx = new Sphinx(g, c);
const hops = Array.from({ length: g.hops }, () => {
  const privateKey = c.randomBytes(32);
  return { id: c.randomBytes(32), privateKey, publicKey: c.x25519Base(privateKey) };
});
const registered = c.randomBytes(RECIPIENT_ID_LENGTH);
const stage = finalStage(sphinx, { route: (r) => (Buffer.from(r).equals(registered) ? { kind: 'client' } : { kind: 'unknown' }) });

function path(recipient: Uint8Array, surbId?: Uint8Array): PathHop[] {
  return hops.map((h, i) => ({
    id: h.id,
    publicKey: h.publicKey,
    commands: i < hops.length - 1 ? [] : [{ type: 'recipient', id: recipient }, ...(surbId ? [{ type: 'surbReply' as const, id: surbId }] : [])],
  }));
}

/** The outcome the last hop gets for `packet`. */
function arrive(packet: Uint8Array): FinalOutcome {
  let p = packet;
  for (let i = 0; i < hops.length; i++) {
    const r = sphinx.unwrap(hops[i]!.privateKey, p);
    if (r.kind === 'final') return { ...r, epoch: 1 };
    p = r.packet;
  }
  throw new Error('test: the route did not end');
}

describe('the gateway final stage', () => {
  test('a forward payload with a SURB is stored, then acknowledged with a packet to the SURB\'s first hop', () => {
    const ackPath = path(c.randomBytes(RECIPIENT_ID_LENGTH), c.randomBytes(SURB_ID_LENGTH));
    const { surb, surbKeys } = sphinx.createSurb(ackPath);
    const body = c.randomBytes(50);
    const action = stage(arrive(sphinx.createPacket(path(registered), encodeForwardPayload(g, body, surb))));
    assert.equal(action.kind, 'store');
    if (action.kind !== 'store') return;
    assert.deepEqual(action.entry.recipient, registered);
    assert.equal(action.entry.surbId, null);
    assert.deepEqual(action.entry.payload.subarray(0, body.length), body);
    assert.equal(action.then?.kind, 'ack');
    if (action.then?.kind !== 'ack') return;
    assert.deepEqual(action.then.firstHop, hops[0]!.id);
    // The acknowledgement travels the SURB's route and says only "stored": an all-zero payload.
    const back = arrive(action.then.packet);
    assert.ok(sphinx.decryptSurbPayload(back.payload, surbKeys).every((b) => b === 0));
  });

  test('a forward payload without a SURB is stored with nothing after', () => {
    const action = stage(arrive(sphinx.createPacket(path(registered), encodeForwardPayload(g, Uint8Array.of(7), null))));
    assert.equal(action.kind, 'store');
    assert.equal(action.kind === 'store' && action.then, null);
  });

  test('a SURB reply is stored as it came, with its SURB id, and not acknowledged', () => {
    const surbId = c.randomBytes(SURB_ID_LENGTH);
    const { surb } = sphinx.createSurb(path(registered, surbId));
    const { packet } = sphinx.createPacketFromSurb(surb, new Uint8Array(g.forwardPayloadLength).fill(3));
    const outcome = arrive(packet);
    const action = stage(outcome);
    assert.equal(action.kind, 'store');
    if (action.kind !== 'store') return;
    assert.deepEqual(action.entry.surbId, surbId);
    assert.deepEqual(action.entry.payload, outcome.payload);
    assert.equal(action.then, null);
  });

  test('drop cover, an unknown recipient and a malformed payload are drops, each with its reason', () => {
    const zero = new Uint8Array(RECIPIENT_ID_LENGTH);
    assert.deepEqual(stage(arrive(sphinx.createPacket(path(zero), encodeForwardPayload(g, Uint8Array.of(1), null)))), { kind: 'drop', reason: 'drop_cover' });
    const stranger = c.randomBytes(RECIPIENT_ID_LENGTH);
    assert.deepEqual(stage(arrive(sphinx.createPacket(path(stranger), encodeForwardPayload(g, Uint8Array.of(1), null)))), { kind: 'drop', reason: 'unknown_recipient' });
    const badFlags = encodeForwardPayload(g, Uint8Array.of(1), null);
    badFlags[0] = 0x80;
    assert.deepEqual(stage(arrive(sphinx.createPacket(path(registered), badFlags))), { kind: 'drop', reason: 'bad_payload' });
  });

  test('a garbage SURB still stores the body; its acknowledgement names a first hop that no document lists', () => {
    const { surb } = sphinx.createSurb(path(c.randomBytes(RECIPIENT_ID_LENGTH), c.randomBytes(SURB_ID_LENGTH)));
    surb.fill(0);
    const action = stage(arrive(sphinx.createPacket(path(registered), encodeForwardPayload(g, Uint8Array.of(9), surb))));
    assert.equal(action.kind, 'store');
    if (action.kind !== 'store') return;
    assert.equal(action.entry.payload[0], 9);
    // The node looks the first hop up before sending and counts unknown_next_hop.
    assert.equal(action.then?.kind, 'ack');
    assert.ok(action.then?.kind === 'ack' && action.then.firstHop.every((b) => b === 0));
  });
});

describe('the per-mailbox intake limit', () => {
  test('past its bucket a mailbox\'s entries are dropped (intake_limited, never acknowledged), per address; the bucket refills, so nobody is silenced for good', async () => {
    const { RateLimiter, intakeRates } = await import('../../src/server/rate-limit.js');
    let now = 0;
    const clock = { now: () => now } as never;
    const rates = intakeRates({ fetchRatePerS: 30, sendRatePerS: 20, loopRatePerS: 5 });
    const buckets = { client: new RateLimiter({ ...rates.mailbox, clock }), alias: new RateLimiter({ ...rates.alias, clock }), own: new RateLimiter({ ...rates.own, clock }) };
    const aliasId = c.randomBytes(RECIPIENT_ID_LENGTH);
    const ownId = ownMailbox(c, registered);
    const route = (r: Uint8Array): MailboxRoute =>
      Buffer.from(r).equals(registered) ? { kind: 'client' } : Buffer.from(r).equals(aliasId) ? { kind: 'alias', owner: registered, revoked: false } : Buffer.from(r).equals(ownId) ? { kind: 'own', owner: registered } : { kind: 'unknown' };
    const limited = finalStage(sphinx, { route }, undefined, (addressed, kind) => buckets[kind].take(addressed));
    const toAlias = arrive(sphinx.createPacket(path(aliasId), encodeForwardPayload(g, c.randomBytes(10), null)));
    const toMain = arrive(sphinx.createPacket(path(registered), encodeForwardPayload(g, c.randomBytes(10), null)));
    const kinds = (o: FinalOutcome, n: number): string[] => Array.from({ length: n }, () => {
      const a = limited(o);
      return a.kind === 'drop' ? a.reason : a.kind;
    });
    // The alias: its burst, then drops; the main mailbox is not touched by the alias's flood.
    const flood = kinds(toAlias, rates.alias.burst + 50);
    assert.equal(flood.filter((k) => k === 'store').length, rates.alias.burst);
    assert.equal(flood.filter((k) => k === 'intake_limited').length, 50);
    assert.deepEqual(kinds(toMain, 3), ['store', 'store', 'store']);
    // A second later the alias takes its rate again.
    now += 1000;
    const later = kinds(toAlias, rates.alias.perSecond + 1);
    assert.equal(later.filter((k) => k === 'store').length, rates.alias.perSecond);
    // Below the fetch rate, so that a flooded address's queue stays short: half of it for the
    // main mailbox with 10 s of burst, a third for an extra one with 20 s. The own mailbox takes
    // SURB replies to SURBs its owner made: an acknowledgement or answer per send tick, a loop's
    // acknowledgement per loop tick, and room for replies, with 10 s of it.
    assert.deepEqual(rates.mailbox, { perSecond: 15, burst: 150 });
    assert.deepEqual(rates.alias, { perSecond: 10, burst: 200 });
    assert.deepEqual(rates.own, { perSecond: 30, burst: 300 });
    // An own mailbox's entry (a SURB reply) goes to its owner's queue, tagged with it, from a
    // bucket of its own; forward mail for it is refused, whoever computed its id.
    assert.deepEqual(limited(arrive(sphinx.createPacket(path(ownId), encodeForwardPayload(g, c.randomBytes(10), null)))), { kind: 'drop', reason: 'unknown_recipient' });
    const { surb: toOwnSurb } = sphinx.createSurb(path(ownId, c.randomBytes(SURB_ID_LENGTH)));
    const toOwn = arrive(sphinx.createPacketFromSurb(toOwnSurb, new Uint8Array(g.forwardPayloadLength)).packet);
    const stored0 = limited(toOwn);
    assert.ok(stored0.kind === 'store' && equalBytes(stored0.entry.recipient, registered) && equalBytes(stored0.entry.mailbox ?? new Uint8Array(0), ownId));
    const ownRun = kinds(toOwn, rates.own.burst + 10);
    assert.equal(ownRun.filter((k) => k === 'intake_limited').length, 11, 'the own bucket, with one taken before (and none by the forward mail refused)');
    assert.deepEqual(kinds(toMain, 2), ['store', 'store'], 'the main mailbox is not touched by the own one');
    now += 60_000;
    let stored = 0;
    for (let t = 0; t < 60_000; t += 100) {
      now += 100;
      if (limited(toMain).kind === 'store') stored++;
    }
    assert.equal(stored, 600, 'a mailbox taking 10 entries a second for a minute loses none');
    // A flood of 80/s for a minute gets its burst and the rate, no more: about 150 + 15 × 60.
    now += 60_000;
    let flooded = 0;
    for (let t = 0; t < 60_000; t += 12.5) {
      now += 12.5;
      if (limited(toMain).kind === 'store') flooded++;
    }
    assert.ok(flooded >= 1_040 && flooded <= 1_060, `the flood stored ${flooded}`);
  });
});
