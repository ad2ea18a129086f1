import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import { SIGNATURE_MESSAGE_LENGTH, decodeSignatureMessage, encodeSignatureMessage, signVote, verifyVote } from '../../src/pki/vote.js';
import { concatBytes, toHex } from '../../src/util/bytes.js';
import { bytes32, range, testAuthorities, testNetwork } from './fixtures.js';

const pkiCode = (...codes: string[]) => (e: unknown): boolean => e instanceof Error && 'code' in e && codes.includes(String(e.code));

const auths = testAuthorities(3, 'vote');
const infos = auths.map((a) => a.info);
const nodes = testNetwork('v');
const voted = nodes.map((n) => n.descriptor(range(10, 3))).map(({ desc, bytes }) => ({ bytes, descriptor: desc }));

describe('votes', () => {
  test('round trip, descriptors in identity-key order whatever the input order', () => {
    const bytes = signVote(10, [...voted].reverse(), auths[1]!.seed, nodeEd25519);
    const v = verifyVote(bytes, { authorities: infos, ed: nodeEd25519, epoch: 10 });
    assert.equal(v.epoch, 10);
    assert.deepEqual(v.authority, auths[1]!.info.identityKey);
    const keys = v.descriptors.map((d) => toHex(d.descriptor.identityKey));
    assert.deepEqual(keys, [...keys].sort());
    assert.equal(v.descriptors.length, voted.length);
    assert.deepEqual(signVote(10, voted, auths[1]!.seed, nodeEd25519), bytes);
    assert.equal(verifyVote(signVote(11, [], auths[0]!.seed, nodeEd25519), { authorities: infos, ed: nodeEd25519 }).descriptors.length, 0);
  });

  test('a vote from an authority not listed is ERR_PKI_UNAUTHORIZED; a bad signature ERR_PKI_SIGNATURE; another epoch ERR_PKI_EPOCH', () => {
    const stranger = testAuthorities(1, 'x')[0]!;
    assert.throws(() => verifyVote(signVote(10, voted, stranger.seed, nodeEd25519), { authorities: infos, ed: nodeEd25519 }), pkiCode('ERR_PKI_UNAUTHORIZED'));
    const bytes = signVote(10, voted, auths[0]!.seed, nodeEd25519);
    const bad = bytes.slice();
    bad[bad.length - 1]! ^= 1;
    assert.throws(() => verifyVote(bad, { authorities: infos, ed: nodeEd25519 }), pkiCode('ERR_PKI_SIGNATURE'));
    assert.throws(() => verifyVote(bytes, { authorities: infos, ed: nodeEd25519, epoch: 11 }), pkiCode('ERR_PKI_EPOCH'));
  });

  test('two descriptors for one node are refused when signing and verifying', () => {
    const twice = [voted[0]!, { bytes: nodes[0]!.descriptor([11]).bytes, descriptor: nodes[0]!.descriptor([11]).desc }];
    assert.throws(() => signVote(10, twice, auths[0]!.seed, nodeEd25519), RangeError);
    // Hand-made: the same descriptor twice, correctly signed by the authority.
    const d = voted[0]!.bytes;
    const body = concatBytes(Uint8Array.of(4), new Uint8Array(7), Uint8Array.of(10), auths[0]!.info.identityKey, Uint8Array.of(0, 2, d.length >> 8, d.length & 0xff), d, Uint8Array.of(d.length >> 8, d.length & 0xff), d);
    const sig = nodeEd25519.sign(auths[0]!.seed, concatBytes(new TextEncoder().encode('backchannel/vote/v1\0'), body));
    assert.throws(() => verifyVote(concatBytes(body, sig), { authorities: infos, ed: nodeEd25519 }), pkiCode('ERR_PKI_ENCODING'));
  });

  test('any flip or truncation is a typed PKI error', () => {
    const bytes = signVote(10, voted.slice(0, 3), auths[2]!.seed, nodeEd25519);
    fc.assert(
      fc.property(fc.nat({ max: bytes.length * 8 - 1 }), fc.nat({ max: bytes.length - 1 }), fc.uint8Array({ maxLength: 300 }), (bit, cut, random) => {
        const flipped = bytes.slice();
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        assert.throws(() => verifyVote(flipped, { authorities: infos, ed: nodeEd25519 }), pkiCode('ERR_PKI_ENCODING', 'ERR_PKI_SIGNATURE', 'ERR_PKI_UNAUTHORIZED'));
        assert.throws(() => verifyVote(bytes.subarray(0, cut), { authorities: infos, ed: nodeEd25519 }), pkiCode('ERR_PKI_ENCODING', 'ERR_PKI_SIGNATURE', 'ERR_PKI_UNAUTHORIZED'));
        assert.throws(() => verifyVote(random, { authorities: infos, ed: nodeEd25519 }), pkiCode('ERR_PKI_ENCODING', 'ERR_PKI_SIGNATURE', 'ERR_PKI_UNAUTHORIZED'));
      }),
    );
  });
});

describe('signature messages', () => {
  test('round trip and strictness', () => {
    const m = { epoch: 2 ** 40, documentHash: bytes32('h'), authority: auths[0]!.info.identityKey, signature: new Uint8Array(64).fill(7) };
    const bytes = encodeSignatureMessage(m);
    assert.equal(bytes.length, SIGNATURE_MESSAGE_LENGTH);
    assert.deepEqual(decodeSignatureMessage(bytes), m);
    assert.throws(() => decodeSignatureMessage(bytes.subarray(1)), pkiCode('ERR_PKI_ENCODING'));
    assert.throws(() => decodeSignatureMessage(concatBytes(bytes, Uint8Array.of(0))), pkiCode('ERR_PKI_ENCODING'));
    assert.throws(() => decodeSignatureMessage(concatBytes(Uint8Array.of(9), bytes.subarray(1))), pkiCode('ERR_PKI_ENCODING'));
    assert.throws(() => encodeSignatureMessage({ ...m, documentHash: new Uint8Array(31) }), RangeError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (random) => {
        try {
          decodeSignatureMessage(random);
        } catch (e) {
          assert.ok(pkiCode('ERR_PKI_ENCODING')(e));
        }
      }),
    );
  });
});
