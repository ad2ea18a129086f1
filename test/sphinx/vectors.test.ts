// Katzenpost's Sphinx vectors, reproduced byte for byte at every hop, through both crypto backends.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { nodeBackend } from '../../src/crypto/node.js';
import { portableBackend } from '../../src/crypto/portable.js';
import { decodeCommands, encodeCommand, geometryFromForwardPayload, Sphinx } from '../../src/sphinx/index.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { isBackchannelError } from '../../src/errors.js';
import { loadVectors } from '../vectors.js';

export interface SphinxCase {
  Nodes: { ID: string; PrivateKey: string }[];
  Path: { ID: string; PublicKey: string; Commands: string[] }[];
  Packets: string[];
  Payload: string;
  Surb?: string;
  SurbKeys?: string;
}

/** The geometry of the vector file: 5 hops, 103-byte forward payload, no SURB. */
export const VECTOR_HOPS = 5;
export const VECTOR_FORWARD_PAYLOAD = 103;

const cases = loadVectors<SphinxCase[]>('katzenpost/sphinx_vectors.json');
const commandVectors = loadVectors<Record<string, string | number>>('katzenpost/sphinx_commands_vectors.json');

for (const backend of [nodeBackend, portableBackend]) {
  describe(`Katzenpost Sphinx vectors with the ${backend.name} backend`, () => {
    test('every hop of all 10 cases is reproduced byte for byte', { skip: 'skip' in cases ? cases.skip : false }, () => {
      if (!('data' in cases)) return;
      assert.equal(cases.data.length, 10);
      const sphinx = new Sphinx(geometryFromForwardPayload(VECTOR_HOPS, VECTOR_FORWARD_PAYLOAD), backend);
      let hopsChecked = 0;
      let surbsChecked = 0;
      for (const [ci, c] of cases.data.entries()) {
        const isSurb = (c.SurbKeys ?? '') !== '';
        for (let i = 0; i < c.Nodes.length; i++) {
          const r = sphinx.unwrap(fromHex(c.Nodes[i]!.PrivateKey), fromHex(c.Packets[i]!));
          assert.equal(toHex(r.replayTag), toHex(backend.sha512_256(fromHex(c.Packets[i]!).subarray(2, 34))));
          const wantCmds = c.Path[i]!.Commands;
          if (i < c.Nodes.length - 1) {
            assert.equal(r.kind, 'forward', `case ${ci} hop ${i}`);
            if (r.kind !== 'forward') return;
            assert.equal(toHex(r.packet), c.Packets[i + 1], `case ${ci} hop ${i} output packet`);
            assert.equal(toHex(r.nextHop), c.Path[i + 1]!.ID);
            const delay = decodeCommands(fromHex(wantCmds[0]!))[0];
            assert.equal(delay?.type, 'nodeDelay');
            assert.equal(r.delayMs, delay?.type === 'nodeDelay' ? delay.delayMs : -1);
          } else {
            assert.equal(r.kind, 'final', `case ${ci} hop ${i}`);
            if (r.kind !== 'final') return;
            assert.equal(c.Packets[i + 1], '');
            assert.equal(toHex(encodeCommand({ type: 'recipient', id: r.recipient })), wantCmds[0]);
            if (isSurb) {
              assert.ok(r.surbId);
              assert.equal(toHex(encodeCommand({ type: 'surbReply', id: r.surbId })), wantCmds[1]);
              const plain = sphinx.decryptSurbPayload(r.payload, fromHex(c.SurbKeys!));
              assert.equal(toHex(plain), c.Payload, `case ${ci} SURB payload`);
              surbsChecked++;
            } else {
              assert.equal(r.surbId, null);
              assert.equal(toHex(r.payload), c.Payload, `case ${ci} final payload`);
            }
          }
          hopsChecked++;
        }
      }
      assert.equal(hopsChecked, 30);
      assert.equal(surbsChecked, 5);
    });

    test('every hop of all 10 cases is reproduced byte for byte when unwrapped in place, and into another array', { skip: 'skip' in cases ? cases.skip : false }, () => {
      if (!('data' in cases)) return;
      const g = geometryFromForwardPayload(VECTOR_HOPS, VECTOR_FORWARD_PAYLOAD);
      const sphinx = new Sphinx(g, backend);
      let hopsChecked = 0;
      for (const [ci, c] of cases.data.entries()) {
        for (let i = 0; i < c.Nodes.length; i++) {
          const key = fromHex(c.Nodes[i]!.PrivateKey);
          const want = sphinx.unwrap(key, fromHex(c.Packets[i]!));
          const inPlace = fromHex(c.Packets[i]!);
          const into = new Uint8Array(g.packetLength).fill(0xa5);
          const source = fromHex(c.Packets[i]!);
          for (const [label, r, holder] of [
            ['in place', sphinx.unwrap(key, inPlace, inPlace), inPlace],
            ['into', sphinx.unwrap(key, source, into), into],
          ] as const) {
            assert.deepEqual(r, want, `case ${ci} hop ${i} ${label}`);
            if (r.kind === 'forward') {
              assert.equal(r.packet, holder, `case ${ci} hop ${i} ${label}: the packet is where it was asked for`);
              assert.equal(toHex(r.packet), c.Packets[i + 1]);
            } else {
              assert.equal(r.payload.buffer, holder.buffer, `case ${ci} hop ${i} ${label}: the payload is a view`);
            }
          }
          assert.equal(toHex(source), c.Packets[i], 'unwrapping into another array leaves the packet as it was');
          hopsChecked++;
        }
      }
      assert.equal(hopsChecked, 30);
    });

    test('a packet that fails the MAC under one key is left intact for the next, also in place', { skip: 'skip' in cases ? cases.skip : false }, () => {
      if (!('data' in cases)) return;
      const sphinx = new Sphinx(geometryFromForwardPayload(VECTOR_HOPS, VECTOR_FORWARD_PAYLOAD), backend);
      const c = cases.data.find((x) => x.Nodes.length >= 2)!;
      const packet = fromHex(c.Packets[0]!);
      const wrongKey = fromHex(c.Nodes[1]!.PrivateKey);
      assert.throws(() => sphinx.unwrap(wrongKey, packet, packet), (e) => isBackchannelError(e, 'ERR_SPHINX_MAC'));
      assert.equal(toHex(packet), c.Packets[0]);
      const r = sphinx.unwrap(fromHex(c.Nodes[0]!.PrivateKey), packet, packet);
      assert.ok(r.kind === 'forward' && toHex(r.packet) === c.Packets[1]);
      assert.throws(() => sphinx.unwrap(wrongKey, packet, new Uint8Array(10)), RangeError);
    });

    test('a SURB from the vectors carries the reply header and first hop', { skip: 'skip' in cases ? cases.skip : false }, () => {
      if (!('data' in cases)) return;
      const g = geometryFromForwardPayload(VECTOR_HOPS, VECTOR_FORWARD_PAYLOAD);
      for (const c of cases.data.filter((x) => (x.Surb ?? '') !== '')) {
        const surb = fromHex(c.Surb!);
        assert.equal(surb.length, g.surbLength);
        // The SURB's header is the header of the reply packet, and the id after it is hop 0's.
        assert.equal(toHex(surb.subarray(0, g.headerLength)), c.Packets[0]!.slice(0, 2 * g.headerLength));
        assert.equal(toHex(surb.subarray(g.headerLength, g.headerLength + 32)), c.Path[0]!.ID);
      }
    });
  });
}

describe('Katzenpost routing command vectors', () => {
  test('every command encodes and decodes as Katzenpost does', { skip: 'skip' in commandVectors ? commandVectors.skip : false }, () => {
    if (!('data' in commandVectors)) return;
    const v = commandVectors.data;
    const cases = [
      { cmd: { type: 'nextHop', id: fromHex(String(v['NextHopID'])), mac: fromHex(String(v['NextHopMAC'])) } as const, want: String(v['NextHopCmdWant']) },
      { cmd: { type: 'recipient', id: fromHex(String(v['RecipientID'])) } as const, want: String(v['RecipientCmdWant']) },
      { cmd: { type: 'surbReply', id: fromHex(String(v['SURBReplyID'])) } as const, want: String(v['SURBReplyCmdWant']) },
      { cmd: { type: 'nodeDelay', delayMs: Number(v['NodeDelay']) } as const, want: String(v['NodeDelayCmdWant']) },
    ];
    for (const { cmd, want } of cases) {
      assert.equal(toHex(encodeCommand(cmd)), want, cmd.type);
      assert.deepEqual(decodeCommands(fromHex(want)), [cmd], cmd.type);
    }
  });
});
