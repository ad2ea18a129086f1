// Services in descriptors and documents (the rendezvous service of contacts by code): a node
// without services encodes byte for byte as before; one with services round-trips in the
// services formats, and the strict decoders refuse what the encoders never write.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DESCRIPTOR_FORMAT, DESCRIPTOR_FORMAT_SERVICES, verifyDescriptor } from '../../src/pki/descriptor.js';
import { DOCUMENT_FORMAT, DOCUMENT_FORMAT_SERVICES, decodeDocument, encodeDocument } from '../../src/pki/document.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import { buildConsensus } from '../../src/pki/consensus.js';
import type { ConsensusDocument, DocumentNode } from '../../src/pki/types.js';
import { params, testNetwork, testNode } from './fixtures.js';

const pkiEncoding = (e: unknown): boolean => e instanceof Error && 'code' in e && e.code === 'ERR_PKI_ENCODING';

function documentOf(nodes: DocumentNode[]): ConsensusDocument {
  return { epoch: 5, params, nodes };
}

describe('node services', () => {
  test('a descriptor without services is format 1, one with services format 6, and both round-trip', () => {
    const gw = testNode('gw-a', 'gateway', 0);
    const plain = gw.descriptor([5, 6]);
    assert.equal(plain.bytes[0], DESCRIPTOR_FORMAT);
    assert.equal(verifyDescriptor(plain.bytes, nodeEd25519).services, undefined);
    const withService = gw.descriptor([5, 6], { services: ['rendezvous'] });
    assert.equal(withService.bytes[0], DESCRIPTOR_FORMAT_SERVICES);
    assert.equal(withService.bytes.length, plain.bytes.length + 1);
    assert.deepEqual(verifyDescriptor(withService.bytes, nodeEd25519).services, ['rendezvous']);
    // An empty list is the same as none.
    assert.deepEqual(gw.descriptor([5, 6], { services: [] }).bytes, plain.bytes);
  });

  test('only gateways list services, and only known ones', () => {
    const mix = testNode('mix-a', 'mix', 1);
    assert.throws(() => mix.descriptor([5], { services: ['rendezvous'] }), pkiEncoding);
    const gw = testNode('gw-b', 'gateway', 0);
    assert.throws(() => gw.descriptor([5], { services: ['mailbox' as 'rendezvous'] }), pkiEncoding);
    assert.throws(() => gw.descriptor([5], { services: ['rendezvous', 'rendezvous'] }), pkiEncoding);
  });

  test('a document is format 2 without services and format 7 with, and decodes to what was encoded', () => {
    const net = testNetwork('s');
    const nodes = net.map((n) => n.descriptor([5, 6]).desc);
    const plain = documentOf(nodes.map((n) => ({ ...n })).sort((a, b) => (a.role === b.role ? 0 : a.role === 'gateway' ? -1 : 1)));
    const sorted = decodeDocument(encodeDocument(buildSorted(plain)));
    const bytes = encodeDocument(sorted);
    assert.equal(bytes[0], DOCUMENT_FORMAT);
    const served = { ...sorted, nodes: sorted.nodes.map((n) => (n.role === 'gateway' ? { ...n, services: ['rendezvous' as const] } : n)) };
    const sBytes = encodeDocument(served);
    assert.equal(sBytes[0], DOCUMENT_FORMAT_SERVICES);
    assert.equal(sBytes.length, bytes.length + sorted.nodes.length);
    assert.deepEqual(decodeDocument(sBytes), served);
    // Format 7 with no service listed is never written, so never read.
    const forged = bytes.slice();
    forged[0] = DOCUMENT_FORMAT_SERVICES;
    assert.throws(() => decodeDocument(forged), pkiEncoding);
  });

  test('the consensus carries a gateway\'s services from its descriptor', () => {
    const net = testNetwork('c');
    const descriptors = net.map((n) => n.descriptor([5, 6], n.role === 'gateway' ? { services: ['rendezvous'] } : {}));
    const vote = { epoch: 5, authority: new Uint8Array(32), descriptors: descriptors.map((d) => ({ bytes: d.bytes, descriptor: d.desc })) };
    const doc = buildConsensus({ epoch: 5, params, votes: [vote as never], threshold: 1 });
    for (const n of doc.nodes) assert.deepEqual(n.services, n.role === 'gateway' ? ['rendezvous'] : undefined);
  });
});

function buildSorted(doc: ConsensusDocument): ConsensusDocument {
  const rank = (n: DocumentNode): number => (n.role === 'gateway' ? 0 : n.layer);
  const cmp = (a: Uint8Array, b: Uint8Array): number => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return 0;
  };
  return { ...doc, nodes: [...doc.nodes].sort((a, b) => rank(a) - rank(b) || cmp(a.identityKey, b.identityKey)) };
}
