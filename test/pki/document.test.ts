import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  MAX_DOCUMENT_LENGTH,
  compareNodes,
  decodeDocument,
  decodeSignedDocument,
  defaultThreshold,
  documentExpiresAt,
  documentHash,
  encodeDocument,
  encodeSignedDocument,
  epochAt,
  epochStart,
  signDocument,
  verifySignedDocument,
} from '../../src/pki/document.js';
import { portableEd25519 } from '../../src/pki/ed25519.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import type { ConsensusDocument, DocumentNode, NetworkParameters } from '../../src/pki/types.js';
import { concatBytes, toHex } from '../../src/util/bytes.js';
import { bytes32, params, testAuthorities } from './fixtures.js';

const pkiCode = (...codes: string[]) => (e: unknown): boolean => e instanceof Error && 'code' in e && codes.includes(String(e.code));

const nameArb = fc.string({ unit: fc.constantFrom(...'abcXYZ019._-'.split('')), minLength: 1, maxLength: 64 });
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

function nodeArb(epoch: number, layers: number): fc.Arbitrary<DocumentNode> {
  return fc
    .record({
      name: nameArb,
      identityKey: key32,
      linkKey: key32,
      gateway: fc.boolean(),
      layer: fc.integer({ min: 1, max: layers }),
      port: fc.integer({ min: 1, max: 65535 }),
      ws: fc.boolean(),
      keys: fc.array(key32, { minLength: 1, maxLength: 2 }),
    })
    .map((r) => ({
      name: r.name,
      identityKey: r.identityKey,
      linkKey: r.linkKey,
      role: r.gateway ? ('gateway' as const) : ('mix' as const),
      layer: r.gateway ? 0 : r.layer,
      tcpAddress: `node.example:${r.port}`,
      wsAddress: r.gateway && r.ws ? `wss://node.example:${r.port}/link` : null,
      mixKeys: r.keys.map((publicKey, i) => ({ epoch: epoch + i, publicKey })),
    }));
}

const paramsArb: fc.Arbitrary<NetworkParameters> = fc.record({
  epochPeriodMs: fc.integer({ min: 1, max: 0xffffffff }),
  hops: fc.integer({ min: 1, max: 255 }),
  userPayloadLength: fc.integer({ min: 1, max: 0xffffffff }),
  withSurb: fc.boolean(),
  layers: fc.integer({ min: 1, max: 5 }),
  mixMeanDelayMs: fc.double({ min: 0, max: 1e6, noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v)),
  sendRatePerS: fc.double({ min: 0, max: 1e4, noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v)),
  loopRatePerS: fc.double({ min: 0, max: 1e4, noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v)),
  fetchRatePerS: fc.double({ min: 0, max: 1e4, noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v)),
  gatewayRatePerClientPerS: fc.double({ min: 0, max: 1e4, noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v)),
});

const documentArb: fc.Arbitrary<ConsensusDocument> = fc
  .tuple(fc.integer({ min: 0, max: 2 ** 52 }), paramsArb)
  .chain(([epoch, p]) =>
    fc.uniqueArray(nodeArb(epoch, p.layers), { maxLength: 12, selector: (n) => toHex(n.identityKey) }).map((nodes) => ({ epoch, params: { ...p }, nodes: [...nodes].sort(compareNodes) })),
  );

const auths = testAuthorities(3, 'doc');
const infos = auths.map((a) => a.info);

function sampleDocument(epoch = 500): ConsensusDocument {
  const node = (name: string, role: 'mix' | 'gateway', layer: number): DocumentNode => ({
    name,
    identityKey: bytes32(`id ${name}`),
    linkKey: bytes32(`link ${name}`),
    role,
    layer,
    tcpAddress: `${name}.example:7000`,
    wsAddress: null,
    mixKeys: [
      { epoch, publicKey: bytes32(`m ${name} ${epoch}`) },
      { epoch: epoch + 1, publicKey: bytes32(`m ${name} ${epoch + 1}`) },
    ],
  });
  return { epoch, params, nodes: [node('g', 'gateway', 0), node('m1', 'mix', 1), node('m2', 'mix', 2), node('m3', 'mix', 3)].sort(compareNodes) };
}

function signedBy(bytes: Uint8Array, signers: readonly number[]): Uint8Array {
  return encodeSignedDocument(
    bytes,
    signers.map((i) => ({ authority: auths[i]!.info.identityKey, signature: signDocument(bytes, auths[i]!.seed, nodeEd25519) })),
  );
}

describe('consensus documents', () => {
  test('round trip, and decoding accepts only what encoding produces', () => {
    fc.assert(
      fc.property(documentArb, (doc) => {
        const bytes = encodeDocument(doc);
        const back = decodeDocument(bytes);
        assert.deepEqual(back, doc);
        assert.deepEqual(encodeDocument(back), bytes);
      }),
      { numRuns: 150 },
    );
  });

  test('nodes must be in document order, once each, with keys for the epoch and the next', () => {
    const doc = sampleDocument();
    const [g, m1, m2] = doc.nodes as [DocumentNode, DocumentNode, DocumentNode];
    const encodingError = pkiCode('ERR_PKI_ENCODING');
    assert.throws(() => encodeDocument({ ...doc, nodes: [m1, g] }), encodingError);
    assert.throws(() => encodeDocument({ ...doc, nodes: [g, m1, m1] }), encodingError);
    assert.throws(() => encodeDocument({ ...doc, nodes: [g, { ...m2, identityKey: m1.identityKey, layer: 1 }, m1].sort(compareNodes) }), encodingError);
    assert.throws(() => encodeDocument({ ...doc, nodes: [{ ...m1, mixKeys: m1.mixKeys.slice(1) }] }), encodingError);
    assert.throws(() => encodeDocument({ ...doc, nodes: [{ ...m1, mixKeys: [...m1.mixKeys, { epoch: doc.epoch + 2, publicKey: bytes32('x') }] }] }), encodingError);
    assert.throws(() => encodeDocument({ ...doc, nodes: [{ ...m1, layer: 4 }] }), encodingError);
    assert.throws(() => encodeDocument({ ...doc, params: { ...doc.params, sendRatePerS: Infinity } }), encodingError);
    assert.throws(() => encodeDocument({ ...doc, params: { ...doc.params, epochPeriodMs: 0 } }), encodingError);
    assert.throws(() => encodeDocument({ ...doc, params: { ...doc.params, loopRatePerS: -1 } }), encodingError);
    assert.throws(() => encodeDocument({ ...doc, epoch: -1 }), encodingError);
  });

  test('any bit flip, truncation or random input decodes to a typed error or to a different valid document', () => {
    const bytes = encodeDocument(sampleDocument());
    fc.assert(
      fc.property(fc.nat({ max: bytes.length * 8 - 1 }), fc.nat({ max: bytes.length - 1 }), fc.uint8Array({ maxLength: 400 }), (bit, cut, random) => {
        const flipped = bytes.slice();
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        try {
          // A flip inside a key or a rate can still be a valid document; it must then re-encode to itself.
          assert.deepEqual(encodeDocument(decodeDocument(flipped)), flipped);
        } catch (e) {
          assert.ok(pkiCode('ERR_PKI_ENCODING')(e), String(e));
        }
        assert.throws(() => decodeDocument(bytes.subarray(0, cut)), pkiCode('ERR_PKI_ENCODING'));
        assert.throws(() => decodeDocument(concatBytes(bytes, Uint8Array.of(cut & 0xff))), pkiCode('ERR_PKI_ENCODING'));
        assert.throws(() => decodeDocument(random), pkiCode('ERR_PKI_ENCODING'));
        assert.throws(() => verifySignedDocument(random, { authorities: infos, threshold: 2, ed: nodeEd25519 }), pkiCode('ERR_PKI_ENCODING'));
      }),
    );
  });

  test('every truncation or flip of a signed document is a typed PKI error or still verifies', () => {
    const signed = signedBy(encodeDocument(sampleDocument()), [0, 1, 2]);
    fc.assert(
      fc.property(fc.nat({ max: signed.length * 8 - 1 }), fc.nat({ max: signed.length - 1 }), (bit, cut) => {
        const flipped = signed.slice();
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        try {
          // Flipping one of three signatures leaves two valid ones: still above the threshold.
          const v = verifySignedDocument(flipped, { authorities: infos, threshold: 2, ed: nodeEd25519 });
          assert.equal(v.signatures.length, 2);
        } catch (e) {
          assert.ok(pkiCode('ERR_PKI_ENCODING', 'ERR_PKI_THRESHOLD')(e), String(e));
        }
        assert.throws(() => verifySignedDocument(signed.subarray(0, cut), { authorities: infos, threshold: 2, ed: nodeEd25519 }), pkiCode('ERR_PKI_ENCODING'));
      }),
      { numRuns: 200 },
    );
  });

  test('documents are bounded in size', () => {
    assert.throws(() => decodeDocument(new Uint8Array(MAX_DOCUMENT_LENGTH + 1)), pkiCode('ERR_PKI_ENCODING'));
    assert.throws(() => encodeSignedDocument(new Uint8Array(MAX_DOCUMENT_LENGTH + 1), []), pkiCode('ERR_PKI_ENCODING'));
  });
});

describe('document signatures and thresholds', () => {
  const doc = sampleDocument(77);
  const bytes = encodeDocument(doc);
  const opts = { authorities: infos, threshold: 2, ed: nodeEd25519 };

  test('2 of 3 valid signatures pass; the result carries the counted ones, in key order', () => {
    const v = verifySignedDocument(signedBy(bytes, [2, 0]), opts);
    assert.deepEqual(v.document, doc);
    assert.deepEqual(v.bytes, bytes);
    assert.equal(v.signatures.length, 2);
    assert.ok(toHex(v.signatures[0]!.authority) < toHex(v.signatures[1]!.authority));
    assert.equal(verifySignedDocument(signedBy(bytes, [0, 1, 2]), { ...opts, ed: portableEd25519 }).signatures.length, 3);
  });

  test('1 of 3 is ERR_PKI_THRESHOLD', () => {
    assert.throws(() => verifySignedDocument(signedBy(bytes, [1]), opts), pkiCode('ERR_PKI_THRESHOLD'));
    assert.throws(() => verifySignedDocument(signedBy(bytes, []), opts), pkiCode('ERR_PKI_THRESHOLD'));
  });

  test('duplicates from one authority count once', () => {
    const sig = signDocument(bytes, auths[0]!.seed, nodeEd25519);
    // encodeSignedDocument keeps one per authority; write the duplicates by hand.
    const one = encodeSignedDocument(bytes, [{ authority: auths[0]!.info.identityKey, signature: sig }]);
    const dup = concatBytes(one.subarray(0, one.length - 97), Uint8Array.of(3), one.subarray(one.length - 96), one.subarray(one.length - 96), one.subarray(one.length - 96));
    assert.equal(decodeSignedDocument(dup).signatures.length, 3);
    assert.throws(() => verifySignedDocument(dup, opts), pkiCode('ERR_PKI_THRESHOLD'));
    assert.equal(verifySignedDocument(dup, { ...opts, threshold: 1 }).signatures.length, 1);
  });

  test('signatures by unknown authorities, over other documents, or corrupted are ignored', () => {
    const stranger = testAuthorities(1, 'stranger')[0]!;
    const other = encodeDocument(sampleDocument(78));
    const sigs = [
      { authority: auths[0]!.info.identityKey, signature: signDocument(bytes, auths[0]!.seed, nodeEd25519) },
      { authority: stranger.info.identityKey, signature: signDocument(bytes, stranger.seed, nodeEd25519) },
      { authority: auths[1]!.info.identityKey, signature: signDocument(other, auths[1]!.seed, nodeEd25519) },
    ];
    assert.throws(() => verifySignedDocument(encodeSignedDocument(bytes, sigs), opts), pkiCode('ERR_PKI_THRESHOLD'));
    const withStranger = verifySignedDocument(encodeSignedDocument(bytes, sigs), { ...opts, authorities: [...infos, stranger.info], threshold: 2 });
    assert.equal(withStranger.signatures.length, 2);
    // A signature over the raw bytes rather than the context-prefixed hash does not count.
    const raw = { authority: auths[2]!.info.identityKey, signature: nodeEd25519.sign(auths[2]!.seed, bytes) };
    assert.throws(() => verifySignedDocument(encodeSignedDocument(bytes, [sigs[0]!, raw]), opts), pkiCode('ERR_PKI_THRESHOLD'));
    // The signature covers the documented message: context ‖ SHA-512/256(bytes).
    const msg = concatBytes(new TextEncoder().encode('backchannel/document/v1\0'), documentHash(bytes));
    assert.ok(nodeEd25519.verify(auths[0]!.info.identityKey, msg, sigs[0]!.signature));
  });

  test('the wrong epoch is ERR_PKI_EPOCH', () => {
    assert.throws(() => verifySignedDocument(signedBy(bytes, [0, 1]), { ...opts, epoch: 78 }), pkiCode('ERR_PKI_EPOCH'));
    assert.equal(verifySignedDocument(signedBy(bytes, [0, 1]), { ...opts, epoch: 77 }).document.epoch, 77);
  });

  test('a threshold outside 1..authorities is a RangeError', () => {
    assert.throws(() => verifySignedDocument(signedBy(bytes, [0, 1]), { ...opts, threshold: 0 }), RangeError);
    assert.throws(() => verifySignedDocument(signedBy(bytes, [0, 1]), { ...opts, threshold: 4 }), RangeError);
  });
});

describe('epochs', () => {
  test('epoch arithmetic', () => {
    assert.equal(epochAt(0, 60_000), 0);
    assert.equal(epochAt(59_999, 60_000), 0);
    assert.equal(epochAt(60_000, 60_000), 1);
    assert.equal(epochStart(3, 60_000), 180_000);
    assert.equal(documentExpiresAt(3, 60_000), 300_000);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 1, max: 0xffffffff }), (now, p) => {
        const e = epochAt(now, p);
        assert.ok(epochStart(e, p) <= now && now < epochStart(e + 1, p));
      }),
    );
  });

  test('the default threshold is a majority', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 9].map(defaultThreshold), [1, 2, 2, 3, 3, 5]);
  });
});
