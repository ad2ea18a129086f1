/**
 * The gateway's rendezvous service: one posting per side per channel, claimed by a token; answers
 * with the other side's posting; channels expire with the lifetime asked (capped); the number of
 * channels is bounded; bad input is answered "bad", never thrown. Then the final stage: a real
 * Sphinx packet to the rendezvous recipient is answered through its SURB, and nothing is stored.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { nodeBackend } from '../../src/crypto/node.js';
import {
  MAX_POSTING_LENGTH,
  RENDEZVOUS_RECIPIENT,
  decodeRendezvousAnswer,
  decodeRendezvousRequest,
  encodeRendezvousAnswer,
  encodeRendezvousRequest,
  rendezvousGateway,
} from '../../src/messaging/rendezvous.js';
import type { RendezvousRequest } from '../../src/messaging/rendezvous.js';
import { RendezvousService } from '../../src/server/rendezvous.js';
import type { RendezvousOutcome } from '../../src/server/rendezvous.js';
import { finalStage } from '../../src/server/store.js';
import type { FinalOutcome } from '../../src/server/store.js';
import { RECIPIENT_ID_LENGTH, SURB_ID_LENGTH } from '../../src/sphinx/constants.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { encodeForwardPayload } from '../../src/sphinx/payload.js';
import { Sphinx } from '../../src/sphinx/sphinx.js';
import type { PathHop } from '../../src/sphinx/sphinx.js';
import type { ConsensusDocument, DocumentNode } from '../../src/pki/types.js';
import { ManualClock } from '../pki/fixtures.js';
import { params } from '../pki/fixtures.js';

const c = nodeBackend;
const te = new TextEncoder();
const tokenA = c.randomBytes(16);
const tokenB = c.randomBytes(16);

function req(over: Partial<RendezvousRequest>): Uint8Array {
  return encodeRendezvousRequest({ op: 'post', channel: 7, side: 0, token: tokenA, lifetimeS: 3600, posting: te.encode('share A'), ...over });
}

function fresh(opts: { maxChannels?: number; maxLifetimeMs?: number } = {}) {
  const clock = new ManualClock(1_000_000);
  return { clock, svc: new RendezvousService({ clock, ...opts }) };
}

const text = (p: Uint8Array): string => new TextDecoder().decode(p);

describe('the rendezvous wire format', () => {
  test('requests and answers round-trip, with zero padding after them', () => {
    fc.assert(
      fc.property(
        fc.record({ op: fc.constantFrom('post' as const, 'read' as const), channel: fc.integer({ min: 0, max: 0xffff }), side: fc.constantFrom(0 as const, 1 as const), lifetimeS: fc.nat(), posting: fc.uint8Array({ minLength: 1, maxLength: MAX_POSTING_LENGTH }) }),
        fc.nat({ max: 100 }),
        (r, pad) => {
          const full: RendezvousRequest = { ...r, token: tokenA, posting: r.op === 'read' ? new Uint8Array(0) : r.posting };
          const bytes = encodeRendezvousRequest(full);
          const padded = new Uint8Array(bytes.length + pad);
          padded.set(bytes);
          assert.deepEqual(decodeRendezvousRequest(padded), full);
          const a = { status: 'posting' as const, posting: r.posting };
          assert.deepEqual(decodeRendezvousAnswer(encodeRendezvousAnswer(a, 2000)), a);
        },
      ),
      { numRuns: 50 },
    );
  });

  test('any bytes either decode or are a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        for (const f of [decodeRendezvousRequest, decodeRendezvousAnswer]) {
          try {
            f(b);
          } catch (e) {
            assert.equal((e as { code?: string }).code, 'ERR_RENDEZVOUS');
          }
        }
      }),
    );
  });

  test('both sides pick the same serving gateway, only among gateways that list the service', () => {
    const gw = (i: number, services: boolean): DocumentNode => ({
      name: `gw${i}`,
      identityKey: new Uint8Array(32).fill(i),
      linkKey: new Uint8Array(32),
      role: 'gateway',
      layer: 0,
      tcpAddress: '127.0.0.1:1',
      wsAddress: null,
      mixKeys: [],
      ...(services ? { services: ['rendezvous' as const] } : {}),
    });
    const doc: ConsensusDocument = { epoch: 1, params, nodes: [gw(1, true), gw(2, false), gw(3, true), gw(4, true)] };
    const seen = new Set<string>();
    for (let ch = 1; ch <= 200; ch++) {
      const a = rendezvousGateway(doc, ch)!;
      assert.equal(rendezvousGateway({ ...doc, nodes: [...doc.nodes].reverse() }, ch), a);
      assert.notEqual(a.name, 'gw2');
      seen.add(a.name);
    }
    assert.equal(seen.size, 3); // the channels spread over every gateway that offers the service
    assert.equal(rendezvousGateway({ ...doc, nodes: [gw(2, false)] }, 5), undefined);
  });
});

describe('the rendezvous service', () => {
  test('each side reads the other side\'s posting, and "nothing yet" before it', () => {
    const { svc } = fresh();
    let r = svc.handle(req({}));
    assert.deepEqual([r.outcome, r.answer.status], ['posted', 'empty']);
    r = svc.handle(req({ op: 'read', side: 0, posting: new Uint8Array(0) }));
    assert.equal(r.answer.status, 'empty');
    r = svc.handle(req({ side: 1, token: tokenB, posting: te.encode('share B') }));
    assert.deepEqual([r.outcome, r.answer.status, text(r.answer.posting)], ['posted', 'posting', 'share A']);
    r = svc.handle(req({ op: 'read', side: 0, token: tokenB, posting: new Uint8Array(0) }));
    assert.equal(text(r.answer.posting), 'share B');
  });

  test('a side keeps one posting, replaced only by its owner\'s token', () => {
    const { svc } = fresh();
    svc.handle(req({}));
    svc.handle(req({ posting: te.encode('share A, then card A') }));
    const stranger = svc.handle(req({ token: tokenB, posting: te.encode('forged') }));
    assert.deepEqual([stranger.outcome, stranger.answer.status], ['taken', 'taken']);
    const r = svc.handle(req({ op: 'read', side: 1, token: tokenB, posting: new Uint8Array(0) }));
    assert.equal(text(r.answer.posting), 'share A, then card A');
    assert.equal(svc.channels, 1);
  });

  test('a channel ends when its lifetime is up, and the gateway caps the lifetime', () => {
    const { svc, clock } = fresh({ maxLifetimeMs: 120_000 });
    svc.handle(req({ lifetimeS: 60 }));
    clock.t += 59_999;
    assert.equal(svc.handle(req({ op: 'read', side: 1, posting: new Uint8Array(0) })).answer.status, 'posting');
    clock.t += 1;
    assert.equal(svc.handle(req({ op: 'read', side: 1, posting: new Uint8Array(0) })).answer.status, 'empty');
    // A day asked, two minutes given.
    svc.handle(req({ channel: 8, lifetimeS: 86_400 }));
    clock.t += 120_000;
    assert.equal(svc.handle(req({ channel: 8, op: 'read', side: 1, posting: new Uint8Array(0) })).answer.status, 'empty');
    // A later posting does not extend a channel.
    svc.handle(req({ channel: 9, lifetimeS: 60 }));
    clock.t += 30_000;
    svc.handle(req({ channel: 9, side: 1, token: tokenB, lifetimeS: 60 }));
    clock.t += 30_000;
    assert.equal(svc.handle(req({ channel: 9, op: 'read', side: 1, posting: new Uint8Array(0) })).answer.status, 'empty');
  });

  test('the number of channels is bounded; a full service answers "full" until one expires', () => {
    const { svc, clock } = fresh({ maxChannels: 3 });
    for (let ch = 1; ch <= 3; ch++) assert.equal(svc.handle(req({ channel: ch, lifetimeS: 10 + ch })).outcome, 'posted');
    const r = svc.handle(req({ channel: 4 }));
    assert.deepEqual([r.outcome, r.answer.status], ['full', 'full']);
    // Existing channels still work.
    assert.equal(svc.handle(req({ channel: 2, side: 1, token: tokenB })).outcome, 'posted');
    clock.t += 11_000;
    assert.equal(svc.handle(req({ channel: 4 })).outcome, 'posted');
    assert.ok(svc.channels <= 3);
  });

  test('malformed requests are answered "bad", never thrown', () => {
    const { svc } = fresh();
    const good = req({});
    const cases = [new Uint8Array(0), good.slice(0, 10), Uint8Array.of(9, ...good.subarray(1)), Uint8Array.of(1, 7, ...good.subarray(2))];
    const side = good.slice();
    side[4] = 2;
    cases.push(side);
    const len = good.slice();
    len[26] = 0xff; // posting length far past the body
    cases.push(len);
    for (const b of cases) assert.deepEqual([svc.handle(b).outcome, svc.handle(b).answer.status], ['bad', 'bad']);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => void svc.handle(b)));
  });
});

describe('the rendezvous in the gateway\'s final stage', () => {
  const g = geometryFromUserPayload(3, 2000, true);
  const sphinx = new Sphinx(g, c);
  const hops = Array.from({ length: g.hops }, () => {
    const privateKey = c.randomBytes(32);
    return { id: c.randomBytes(32), privateKey, publicKey: c.x25519Base(privateKey) };
  });
  const path = (recipient: Uint8Array, surbId?: Uint8Array): PathHop[] =>
    hops.map((h, i) => ({ id: h.id, publicKey: h.publicKey, commands: i < hops.length - 1 ? [] : [{ type: 'recipient', id: recipient }, ...(surbId ? [{ type: 'surbReply' as const, id: surbId }] : [])] }));
  const arrive = (packet: Uint8Array): FinalOutcome => {
    let p = packet;
    for (const h of hops) {
      const r = sphinx.unwrap(h.privateKey, p);
      if (r.kind === 'final') return { ...r, epoch: 1 };
      p = r.packet;
    }
    throw new Error('test: the route did not end');
  };

  test('a request with a SURB is answered through it, nothing is stored, and the outcome is counted', () => {
    const { svc } = fresh();
    const counted: RendezvousOutcome[] = [];
    const stage = finalStage(sphinx, { route: () => ({ kind: 'unknown' }) }, { service: svc, counted: (o) => counted.push(o) });
    const surbPath = path(c.randomBytes(RECIPIENT_ID_LENGTH), c.randomBytes(SURB_ID_LENGTH));
    const { surb, surbKeys } = sphinx.createSurb(surbPath);
    svc.handle(req({ side: 1, token: tokenB, posting: te.encode('the other side') }));
    const action = stage(arrive(sphinx.createPacket(path(RENDEZVOUS_RECIPIENT), encodeForwardPayload(g, req({}), surb))));
    assert.equal(action.kind, 'answer');
    if (action.kind !== 'answer') return;
    assert.deepEqual(action.then.firstHop, hops[0]!.id);
    const answer = decodeRendezvousAnswer(sphinx.decryptSurbPayload(arrive(action.then.packet).payload, surbKeys));
    assert.deepEqual([answer.status, text(answer.posting)], ['posting', 'the other side']);
    assert.deepEqual(counted, ['posted']);
  });

  test('a request without a SURB is a counted drop; without the service the recipient is unknown', () => {
    const { svc } = fresh();
    const stage = finalStage(sphinx, { route: () => ({ kind: 'unknown' }) }, { service: svc });
    const packet = sphinx.createPacket(path(RENDEZVOUS_RECIPIENT), encodeForwardPayload(g, req({}), null));
    assert.deepEqual(stage(arrive(packet)), { kind: 'drop', reason: 'rendezvous_bad' });
    assert.equal(svc.channels, 0);
    const plain = finalStage(sphinx, { route: () => ({ kind: 'unknown' }) });
    assert.deepEqual(plain(arrive(sphinx.createPacket(path(RENDEZVOUS_RECIPIENT), encodeForwardPayload(g, req({}), null)))), { kind: 'drop', reason: 'unknown_recipient' });
  });
});
