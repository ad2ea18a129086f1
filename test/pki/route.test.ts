import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isBackchannelError } from '../../src/errors.js';
import { chooseMixes, pathHops, randomIntFrom } from '../../src/pki/route.js';
import type { ConsensusDocument, DocumentNode } from '../../src/pki/types.js';

function node(name: string, role: 'mix' | 'gateway', layer: number, epochs: number[]): DocumentNode {
  const id = new Uint8Array(32).fill(name.length + layer);
  return { name, identityKey: id, linkKey: id, role, layer, tcpAddress: '127.0.0.1:1', wsAddress: null, mixKeys: epochs.map((epoch) => ({ epoch, publicKey: new Uint8Array(32).fill(epoch % 256) })) };
}

describe('routes through the topology', () => {
  it('draws uniform integers without bias from random bytes', () => {
    let i = 0;
    // 0xffffffff is above the largest multiple of 3 below 2^32, so it is redrawn, not reduced.
    const bytes = [Uint8Array.of(0xff, 0xff, 0xff, 0xff), Uint8Array.of(0, 0, 0, 5)];
    const r = randomIntFrom(() => bytes[i++]!);
    assert.equal(r(3), 2);
    assert.equal(i, 2);
    assert.throws(() => r(0), RangeError);
  });

  it('picks one mix per layer, in order, and refuses an empty layer', () => {
    const params = { epochPeriodMs: 60_000, hops: 5, userPayloadLength: 2000, withSurb: true, layers: 3, mixMeanDelayMs: 50, sendRatePerS: 20, loopRatePerS: 5, fetchRatePerS: 10, gatewayRatePerClientPerS: 25 };
    const doc: ConsensusDocument = { epoch: 1, params, nodes: [node('g', 'gateway', 0, [1]), node('a', 'mix', 1, [1]), node('b', 'mix', 2, [1]), node('c', 'mix', 3, [1])] };
    assert.deepEqual(chooseMixes(doc, () => 0).map((n) => n.layer), [1, 2, 3]);
    const holey = { ...doc, nodes: doc.nodes.filter((n) => n.layer !== 2) };
    assert.throws(() => chooseMixes(holey, () => 0), (e) => isBackchannelError(e, 'ERR_SPHINX_PATH'));
  });

  it('puts delays on every hop but the last, the recipient (and SURB id) on the last, and needs each key', () => {
    const nodes = [node('g', 'gateway', 0, [7]), node('a', 'mix', 1, [7]), node('h', 'gateway', 0, [7])];
    const hops = pathHops(nodes, 7, [0, 12], { recipient: new Uint8Array(32), surbId: new Uint8Array(16) });
    assert.deepEqual(hops[0]!.commands, []);
    assert.deepEqual(hops[1]!.commands, [{ type: 'nodeDelay', delayMs: 12 }]);
    assert.deepEqual(hops[2]!.commands.map((c) => c.type), ['recipient', 'surbReply']);
    assert.throws(() => pathHops(nodes, 8, [0, 1], { recipient: new Uint8Array(32) }), (e) => isBackchannelError(e, 'ERR_SPHINX_PATH'));
    assert.throws(() => pathHops(nodes, 7, [0], { recipient: new Uint8Array(32) }), (e) => isBackchannelError(e, 'ERR_SPHINX_PATH'));
  });
});
