// Property tests: round trips over random paths and geometries, every bit flip caught where it
// should be, SURB round trips, and malformed input of every length giving typed errors.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nodeBackend } from '../../src/crypto/node.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { BackchannelError, isBackchannelError } from '../../src/errors.js';
import { decodeCommands, defaultGeometry, geometryFromForwardPayload, geometryFromUserPayload, Sphinx } from '../../src/sphinx/index.js';
import type { Geometry, PathHop, UnwrapResult } from '../../src/sphinx/index.js';
import { seededBackend } from '../helpers/seeded.js';

interface Node {
  id: Uint8Array;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

function makeNodes(c: CryptoBackend, n: number): Node[] {
  return Array.from({ length: n }, () => {
    const privateKey = c.randomBytes(32);
    return { id: c.randomBytes(32), privateKey, publicKey: c.x25519Base(privateKey) };
  });
}

function makePath(c: CryptoBackend, nodes: Node[], surbId?: Uint8Array): PathHop[] {
  return nodes.map((n, i) => ({
    id: n.id,
    publicKey: n.publicKey,
    commands:
      i < nodes.length - 1
        ? [{ type: 'nodeDelay' as const, delayMs: 1000 * i + 7 }]
        : [{ type: 'recipient' as const, id: c.randomBytes(32) }, ...(surbId ? [{ type: 'surbReply' as const, id: surbId }] : [])],
  }));
}

/** Unwraps `packet` along `nodes`, checking each forward hop; returns the final result. */
function route(sphinx: Sphinx, nodes: Node[], packet: Uint8Array): Extract<UnwrapResult, { kind: 'final' }> {
  let p = packet;
  for (let i = 0; i < nodes.length; i++) {
    const r = sphinx.unwrap(nodes[i]!.privateKey, p);
    if (i < nodes.length - 1) {
      assert.equal(r.kind, 'forward');
      if (r.kind !== 'forward') throw new Error('unreachable');
      assert.deepEqual(r.nextHop, nodes[i + 1]!.id);
      assert.equal(r.delayMs, 1000 * i + 7);
      assert.equal(r.packet.length, sphinx.geometry.packetLength);
      p = r.packet;
    } else {
      assert.equal(r.kind, 'final');
      if (r.kind !== 'final') throw new Error('unreachable');
      return r;
    }
  }
  throw new Error('unreachable');
}

/** A packet through as many hops as the geometry holds, with everything needed to route it. */
function fullPathPacket(g: Geometry, seed: Uint8Array): { sphinx: Sphinx; nodes: Node[]; packet: Uint8Array } {
  const c = seededBackend(nodeBackend, seed);
  const sphinx = new Sphinx(g, c);
  const nodes = makeNodes(c, g.hops);
  return { sphinx, nodes, packet: sphinx.createPacket(makePath(c, nodes), c.randomBytes(g.forwardPayloadLength)) };
}

const geometryArb = fc
  .record({ hops: fc.integer({ min: 1, max: 6 }), payload: fc.integer({ min: 0, max: 700 }) })
  .map(({ hops, payload }) => geometryFromForwardPayload(hops, payload));
const seedArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

function isTypedSphinxError(e: unknown): boolean {
  return e instanceof BackchannelError && e.code.startsWith('ERR_SPHINX_');
}

describe('Sphinx properties', () => {
  test('geometry sizes match Katzenpost for the vectors and the default', () => {
    const v = geometryFromForwardPayload(5, 103);
    assert.equal(v.headerLength, 476);
    assert.equal(v.packetLength, 611);
    assert.equal(v.perHopRoutingInfoLength, 82);
    const d = defaultGeometry();
    assert.equal(d.surbLength, 572);
    assert.equal(d.forwardPayloadLength, 2000 + 2 + 572);
    assert.equal(d.packetLength, 476 + 32 + 2574);
    assert.deepEqual(geometryFromUserPayload(5, 103, false), v);
    assert.throws(() => geometryFromForwardPayload(0, 10), (e) => isBackchannelError(e, 'ERR_SPHINX_GEOMETRY'));
    assert.throws(() => geometryFromForwardPayload(3, -1), (e) => isBackchannelError(e, 'ERR_SPHINX_GEOMETRY'));
    assert.throws(() => geometryFromForwardPayload(3, 1.5), (e) => isBackchannelError(e, 'ERR_SPHINX_GEOMETRY'));
  });

  test('create then unwrap returns the payload for random paths and geometries', () => {
    fc.assert(
      fc.property(geometryArb, seedArb, fc.integer({ min: 1, max: 6 }), (g, seed, pathLen) => {
        const c = seededBackend(nodeBackend, seed);
        const sphinx = new Sphinx(g, c);
        const nodes = makeNodes(c, Math.min(pathLen, g.hops));
        const payload = c.randomBytes(g.forwardPayloadLength);
        const final = route(sphinx, nodes, sphinx.createPacket(makePath(c, nodes), payload));
        assert.deepEqual(final.payload, payload);
        assert.equal(final.surbId, null);
      }),
      { numRuns: 60 },
    );
  });

  test('a header bit flipped anywhere is caught by the hop that reads it', () => {
    fc.assert(
      fc.property(geometryArb, seedArb, fc.nat(), fc.nat(), (g, seed, hopPick, bitPick) => {
        const { sphinx, nodes, packet: created } = fullPathPacket(g, seed);
        let packet = created;
        const hop = hopPick % nodes.length;
        for (let i = 0; i < hop; i++) {
          const r = sphinx.unwrap(nodes[i]!.privateKey, packet);
          if (r.kind !== 'forward') throw new Error('unreachable');
          packet = r.packet;
        }
        const bit = bitPick % (8 * g.headerLength);
        const bad = packet.slice();
        bad[bit >> 3]! ^= 1 << (bit & 7);
        assert.throws(() => sphinx.unwrap(nodes[hop]!.privateKey, bad), isTypedSphinxError);
      }),
      { numRuns: 150 },
    );
  });

  test('every one of the header bits of a 5-hop packet is caught at the first hop', () => {
    const c = seededBackend(nodeBackend, new Uint8Array(32).fill(1));
    const g = geometryFromForwardPayload(5, 103);
    const sphinx = new Sphinx(g, c);
    const nodes = makeNodes(c, 5);
    const packet = sphinx.createPacket(makePath(c, nodes), c.randomBytes(g.forwardPayloadLength));
    const codes = new Map<string, number>();
    for (let bit = 0; bit < 8 * g.headerLength; bit++) {
      const bad = packet.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      try {
        sphinx.unwrap(nodes[0]!.privateKey, bad);
        assert.fail(`bit ${bit} was not caught`);
      } catch (e) {
        assert.ok(isTypedSphinxError(e), `bit ${bit}: ${String(e)}`);
        const code = (e as BackchannelError).code;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }
    assert.equal(codes.get('ERR_SPHINX_VERSION'), 16);
    assert.equal((codes.get('ERR_SPHINX_MAC') ?? 0) + (codes.get('ERR_SPHINX_POINT') ?? 0), 8 * (g.headerLength - 2));
  });

  test('a payload bit flipped at any hop is caught by the zero tag at the last hop', () => {
    fc.assert(
      fc.property(geometryArb, seedArb, fc.nat(), fc.nat(), (g, seed, hopPick, bitPick) => {
        const { sphinx, nodes, packet: created } = fullPathPacket(g, seed);
        let packet = created;
        const hop = hopPick % nodes.length;
        const bit = 8 * g.headerLength + (bitPick % (8 * g.payloadLength));
        for (let i = 0; i < nodes.length; i++) {
          if (i === hop) packet[bit >> 3]! ^= 1 << (bit & 7);
          if (i === nodes.length - 1) {
            assert.throws(() => sphinx.unwrap(nodes[i]!.privateKey, packet), (e) => isBackchannelError(e, 'ERR_SPHINX_TAG'));
          } else {
            const r = sphinx.unwrap(nodes[i]!.privateKey, packet);
            if (r.kind !== 'forward') throw new Error('unreachable');
            packet = r.packet;
          }
        }
      }),
      { numRuns: 80 },
    );
  });

  test('a SURB carries a reply back to its creator, and only its keys open it', () => {
    fc.assert(
      fc.property(geometryArb, seedArb, fc.integer({ min: 1, max: 6 }), (g, seed, pathLen) => {
        const c = seededBackend(nodeBackend, seed);
        const sphinx = new Sphinx(g, c);
        const nodes = makeNodes(c, Math.min(pathLen, g.hops));
        const surbId = c.randomBytes(16);
        const { surb, surbKeys } = sphinx.createSurb(makePath(c, nodes, surbId));
        assert.equal(surb.length, g.surbLength);
        const reply = c.randomBytes(g.forwardPayloadLength);
        const { packet, firstHop } = sphinx.createPacketFromSurb(surb, reply);
        assert.deepEqual(firstHop, nodes[0]!.id);
        const final = route(sphinx, nodes, packet);
        assert.deepEqual(final.surbId, surbId);
        assert.equal(final.payload.length, g.payloadLength);
        assert.deepEqual(sphinx.decryptSurbPayload(final.payload, surbKeys), reply);
        const wrong = surbKeys.slice();
        wrong[0]! ^= 1;
        assert.throws(() => sphinx.decryptSurbPayload(final.payload, wrong), (e) => isBackchannelError(e, 'ERR_SPHINX_TAG'));
      }),
      { numRuns: 40 },
    );
  });

  test('malformed packets of every length give typed errors, never a crash', () => {
    const g: Geometry = geometryFromForwardPayload(3, 50);
    const sphinx = new Sphinx(g, nodeBackend);
    const key = nodeBackend.randomBytes(32);
    for (let len = 0; len <= g.packetLength + 40; len++) {
      const junk = nodeBackend.randomBytes(len);
      if (len >= 2) junk[0] = junk[1] = 0; // get past the version check, to the point and MAC checks
      assert.throws(() => sphinx.unwrap(key, junk), isTypedSphinxError, `length ${len}`);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2 * g.packetLength }), fc.uint8Array({ maxLength: 500 }), (bytes, keys) => {
        for (const f of [
          () => sphinx.unwrap(key, bytes),
          () => sphinx.decryptSurbPayload(bytes, keys),
          () => sphinx.createPacketFromSurb(bytes, keys),
          () => decodeCommands(bytes),
        ]) {
          try {
            f();
          } catch (e) {
            assert.ok(isTypedSphinxError(e), String(e));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  test('routing commands are decoded strictly', () => {
    const id = new Uint8Array(32).fill(9);
    const ok = Uint8Array.from([0x80, 0, 0, 1, 0, 0x02, ...id, 0, 0]);
    assert.deepEqual(decodeCommands(ok), [
      { type: 'nodeDelay', delayMs: 256 },
      { type: 'recipient', id },
    ]);
    const err = (b: number[]) => assert.throws(() => decodeCommands(Uint8Array.from(b)), (e) => isBackchannelError(e, 'ERR_SPHINX_COMMAND'), b.join(','));
    err([0x04]); // unknown tag
    err([0x80, 0, 0]); // truncated
    err([0x00, 0, 1]); // non-zero after padding
    err([0x80, 0, 0, 0, 1, 0x80, 0, 0, 0, 2]); // repeated
    assert.deepEqual(decodeCommands(new Uint8Array(0)), []);
  });

  test('bad paths are refused before any work', () => {
    const c = nodeBackend;
    const g = geometryFromForwardPayload(3, 10);
    const sphinx = new Sphinx(g, c);
    const nodes = makeNodes(c, 4);
    const payload = new Uint8Array(10);
    const pathErr = (p: PathHop[]) => assert.throws(() => sphinx.createPacket(p, payload), (e) => isBackchannelError(e, 'ERR_SPHINX_PATH'));
    pathErr([]);
    pathErr(makePath(c, nodes)); // 4 hops in a 3-hop geometry
    const p = makePath(c, nodes.slice(0, 2));
    pathErr([{ ...p[0]!, commands: [{ type: 'recipient', id: new Uint8Array(32) }] }, p[1]!]);
    pathErr([p[0]!, { ...p[1]!, commands: [] }]);
    assert.throws(() => sphinx.createPacket(p, new Uint8Array(11)), (e) => isBackchannelError(e, 'ERR_SPHINX_LENGTH'));
    assert.throws(() => sphinx.createPacket([{ ...p[0]!, id: new Uint8Array(3) }, p[1]!], payload), RangeError);
  });
});
