import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { buildConsensus } from '../../src/pki/consensus.js';
import { compareBytes, decodeDocument, encodeDocument } from '../../src/pki/document.js';
import { descriptorHash } from '../../src/pki/descriptor.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import type { Vote, VotedDescriptor } from '../../src/pki/vote.js';
import { signVote, verifyVote } from '../../src/pki/vote.js';
import { toHex } from '../../src/util/bytes.js';
import { params, range, testAuthorities, testNetwork, testNode } from './fixtures.js';

const pkiCode = (...codes: string[]) => (e: unknown): boolean => e instanceof Error && 'code' in e && codes.includes(String(e.code));

const E = 1000;
const auths = testAuthorities(5, 'cons');
const nodes = testNetwork('c');
const current = nodes.map((n) => n.descriptor(range(E, 3))).map(({ desc, bytes }) => ({ bytes, descriptor: desc }));

function vote(authority: number, descriptors: readonly VotedDescriptor[], epoch = E): Vote {
  return { epoch, authority: auths[authority]!.info.identityKey, descriptors };
}

describe('consensus', () => {
  test('lists every node that a majority voted for, in document order, with keys for E and E+1', () => {
    const votes = [vote(0, current), vote(1, current), vote(2, current)];
    const doc = buildConsensus({ epoch: E, params, votes, threshold: 3 });
    assert.equal(doc.nodes.length, nodes.length);
    assert.deepEqual(doc.nodes.map((n) => n.role === 'gateway' ? 0 : n.layer), [0, 0, 1, 1, 2, 2, 3, 3]);
    for (let i = 1; i < doc.nodes.length; i++) {
      const a = doc.nodes[i - 1]!;
      const b = doc.nodes[i]!;
      if (a.layer === b.layer) assert.ok(compareBytes(a.identityKey, b.identityKey) < 0);
    }
    for (const n of doc.nodes) assert.deepEqual(n.mixKeys.map((k) => k.epoch), [E, E + 1]);
    assert.deepEqual(decodeDocument(encodeDocument(doc)), doc);
  });

  test('a node needs threshold votes of ALL authorities, not of those that voted', () => {
    const some = current.slice(0, 3);
    const doc = buildConsensus({ epoch: E, params, votes: [vote(0, current), vote(1, current), vote(2, some)], threshold: 3 });
    assert.deepEqual(doc.nodes.map((n) => n.name).sort(), some.map((d) => d.descriptor.name).sort());
  });

  test('fewer votes than the threshold is ERR_PKI_THRESHOLD; a vote for another epoch ERR_PKI_EPOCH; two from one authority a RangeError', () => {
    assert.throws(() => buildConsensus({ epoch: E, params, votes: [vote(0, current), vote(1, current)], threshold: 3 }), pkiCode('ERR_PKI_THRESHOLD'));
    assert.throws(() => buildConsensus({ epoch: E, params, votes: [vote(0, current), vote(1, current, E + 1)], threshold: 2 }), pkiCode('ERR_PKI_EPOCH'));
    assert.throws(() => buildConsensus({ epoch: E, params, votes: [vote(0, current), vote(0, current)], threshold: 2 }), RangeError);
  });

  test('conflicting descriptors: most votes wins; a tie goes to the lowest descriptor hash', () => {
    const node = testNode('c-flip', 'mix', 1);
    const a = node.descriptor(range(E, 2));
    const b = node.descriptor(range(E - 1, 3)); // same node, other bytes
    const va = { bytes: a.bytes, descriptor: a.desc };
    const vb = { bytes: b.bytes, descriptor: b.desc };
    const doc1 = buildConsensus({ epoch: E, params, votes: [vote(0, [va]), vote(1, [vb]), vote(2, [vb])], threshold: 2 });
    assert.equal(doc1.nodes.length, 1);
    assert.equal(doc1.nodes[0]!.mixKeys[0]!.publicKey.length, 32);
    // With threshold 1 and one vote each, the lower hash wins.
    const lower = compareBytes(descriptorHash(a.bytes), descriptorHash(b.bytes)) < 0 ? a : b;
    const doc2 = buildConsensus({ epoch: E, params, votes: [vote(0, [va]), vote(1, [vb])], threshold: 1 });
    const doc3 = buildConsensus({ epoch: E, params, votes: [vote(1, [vb]), vote(0, [va])], threshold: 1 });
    assert.deepEqual(encodeDocument(doc2), encodeDocument(doc3));
    assert.deepEqual(doc2.nodes[0]!.mixKeys[0], lower.desc.mixKeys.find((k) => k.epoch === E));
    // Split 1-1-1 among three versions with threshold 2: nobody has a majority, the node is left out.
    const c = node.descriptor(range(E, 1));
    const vc = { bytes: c.bytes, descriptor: c.desc };
    assert.equal(buildConsensus({ epoch: E, params, votes: [vote(0, [va]), vote(1, [vb]), vote(2, [vc])], threshold: 2 }).nodes.length, 0);
  });

  test('a node without a key for E is left out; one without E+1 is listed with one key', () => {
    const late = testNode('c-late', 'mix', 2).descriptor(range(E + 1, 2));
    const last = testNode('c-last', 'mix', 3).descriptor([E]);
    const extra = [{ bytes: late.bytes, descriptor: late.desc }, { bytes: last.bytes, descriptor: last.desc }];
    const doc = buildConsensus({ epoch: E, params, votes: [vote(0, extra), vote(1, extra)], threshold: 2 });
    assert.deepEqual(doc.nodes.map((n) => n.name), ['c-last']);
    assert.deepEqual(doc.nodes[0]!.mixKeys.map((k) => k.epoch), [E]);
  });

  test('the accept filter and the network layers bound what is listed', () => {
    const deep = testNode('c-deep', 'mix', 4).descriptor(range(E, 2));
    const all = [...current, { bytes: deep.bytes, descriptor: deep.desc }];
    const doc = buildConsensus({ epoch: E, params, votes: [vote(0, all), vote(1, all)], threshold: 2, accept: (d) => d.role === 'mix' });
    assert.ok(doc.nodes.every((n) => n.role === 'mix' && n.layer <= 3));
    assert.equal(doc.nodes.length, 6);
  });

  test('the same votes in any order, with descriptors in any order, give the same bytes', () => {
    const variants = nodes.map((n) => [n.descriptor(range(E, 2)), n.descriptor(range(E, 3)), n.descriptor(range(E - 1, 4))].map(({ desc, bytes }) => ({ bytes, descriptor: desc })));
    const ballot = fc.array(fc.option(fc.nat({ max: 2 }), { nil: undefined }), { minLength: nodes.length, maxLength: nodes.length });
    fc.assert(
      fc.property(
        fc.array(ballot, { minLength: 3, maxLength: 5 }),
        fc.integer({ min: 1, max: 3 }),
        fc.infiniteStream(fc.nat()),
        (ballots, threshold, shuffles) => {
          const votes = ballots.map((b, i) => vote(i, b.flatMap((choice, node) => (choice === undefined ? [] : [variants[node]![choice]!]))));
          const shuffle = <T>(xs: readonly T[]): T[] => {
            const out = [...xs];
            const it = shuffles[Symbol.iterator]();
            for (let i = out.length - 1; i > 0; i--) {
              const j = (it.next().value as number) % (i + 1);
              [out[i], out[j]] = [out[j]!, out[i]!];
            }
            return out;
          };
          const reference = encodeDocument(buildConsensus({ epoch: E, params, votes, threshold }));
          const mixed = shuffle(votes).map((v) => ({ ...v, descriptors: shuffle(v.descriptors) }));
          assert.deepEqual(encodeDocument(buildConsensus({ epoch: E, params, votes: mixed, threshold })), reference);
        },
      ),
      { numRuns: 100 },
    );
  });

  test('works on votes as they come off the wire', () => {
    const wire = [0, 1, 2].map((i) => verifyVote(signVote(E, [...current].reverse(), auths[i]!.seed, nodeEd25519), { authorities: auths.map((a) => a.info), ed: nodeEd25519 }));
    const doc = buildConsensus({ epoch: E, params, votes: wire, threshold: 3 });
    assert.deepEqual(new Set(doc.nodes.map((n) => toHex(n.identityKey))), new Set(nodes.map((n) => toHex(n.identityKey))));
  });
});
