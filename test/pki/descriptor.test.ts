import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isBackchannelError } from '../../src/errors.js';
import {
  MAX_DESCRIPTOR_LENGTH,
  descriptorHash,
  encodeDescriptorBody,
  isValidTcpAddress,
  isValidWsAddress,
  signDescriptor,
  verifyDescriptor,
} from '../../src/pki/descriptor.js';
import { portableEd25519 } from '../../src/pki/ed25519.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import { Writer } from '../../src/pki/encoding.js';
import type { Descriptor } from '../../src/pki/types.js';
import { concatBytes } from '../../src/util/bytes.js';
import { bytes32, range, testNode } from './fixtures.js';

const pkiError = (e: unknown): boolean => e instanceof Error && 'code' in e && /^ERR_PKI_(ENCODING|SIGNATURE)$/.test(String(e.code));
const encodingError = (e: unknown): boolean => isBackchannelError(e, 'ERR_PKI_ENCODING');

const gw = testNode('gw-a', 'gateway', 0);
const mix = testNode('mix-a', 'mix', 2);

/** Signs an arbitrary body the way signDescriptor does (context string from docs/directory.md), bypassing the encoder's checks. */
function forge(body: Uint8Array, seed: Uint8Array): Uint8Array {
  return concatBytes(body, nodeEd25519.sign(seed, concatBytes(new TextEncoder().encode('backchannel/descriptor/v1\0'), body)));
}

/** The body layout written by hand, to make descriptors the encoder refuses to make. */
function rawBody(d: { name: string; identityKey: Uint8Array; role: number; layer: number; tcp: string; ws: string; keys: Array<[number, Uint8Array]> }): Uint8Array {
  const w = new Writer().u8(1).string(d.name, 1).raw(d.identityKey).raw(bytes32('link')).u8(d.role).u8(d.layer).string(d.tcp, 1).string(d.ws, 1).u8(d.keys.length);
  for (const [e, k] of d.keys) w.u64(e).raw(k);
  return w.finish();
}

describe('descriptors', () => {
  test('round trip through sign and verify, on both Ed25519 implementations', () => {
    for (const node of [gw, mix]) {
      const { desc, bytes } = node.descriptor(range(100, 4));
      assert.deepEqual(verifyDescriptor(bytes, nodeEd25519), desc);
      assert.deepEqual(verifyDescriptor(bytes, portableEd25519), desc);
      assert.deepEqual(signDescriptor(desc, node.seed, portableEd25519), bytes);
      assert.equal(bytes[0], 1);
    }
  });

  test('the hand-written layout is the encoder layout', () => {
    const { desc } = mix.descriptor([7, 8]);
    const body = rawBody({ name: desc.name, identityKey: desc.identityKey, role: 1, layer: 2, tcp: desc.tcpAddress, ws: '', keys: desc.mixKeys.map((k) => [k.epoch, k.publicKey]) });
    assert.deepEqual(encodeDescriptorBody({ ...desc, linkKey: bytes32('link') }), body);
    assert.deepEqual(verifyDescriptor(forge(body, mix.seed), nodeEd25519).mixKeys, desc.mixKeys);
  });

  test('a signature by another key, or over other bytes, is ERR_PKI_SIGNATURE', () => {
    const { desc, bytes } = mix.descriptor([1]);
    assert.throws(() => signDescriptor(desc, gw.seed, nodeEd25519), (e) => isBackchannelError(e, 'ERR_PKI_SIGNATURE'));
    const body = bytes.subarray(0, bytes.length - 64);
    assert.throws(() => verifyDescriptor(forge(body, gw.seed), nodeEd25519), (e) => isBackchannelError(e, 'ERR_PKI_SIGNATURE'));
    // A descriptor body signed without the context string does not verify either.
    const bare = concatBytes(body, nodeEd25519.sign(mix.seed, body));
    assert.throws(() => verifyDescriptor(bare, nodeEd25519), (e) => isBackchannelError(e, 'ERR_PKI_SIGNATURE'));
  });

  test('field rules are enforced when signing', () => {
    const { desc } = mix.descriptor([5, 6]);
    const bad: Array<Partial<Descriptor>> = [
      { name: '' },
      { name: 'a'.repeat(65) },
      { name: 'has space' },
      { name: 'é' },
      { linkKey: new Uint8Array(31) },
      { layer: 0 },
      { role: 'gateway' }, // a gateway in layer 2
      { role: 'relay' as 'mix' },
      { tcpAddress: 'localhost' },
      { tcpAddress: 'localhost:0' },
      { tcpAddress: 'localhost:65536' },
      { tcpAddress: 'localhost:080' },
      { tcpAddress: '-bad-.example:1' },
      { tcpAddress: 'a..b:1' },
      { tcpAddress: `${'a'.repeat(250)}.example:1` },
      { tcpAddress: 'host name:1' },
      { wsAddress: 'ws://127.0.0.1:1/link' }, // a mix may not have one
      { mixKeys: [] },
      { mixKeys: range(1, 5).map((epoch) => ({ epoch, publicKey: bytes32(`k${epoch}`) })) },
      { mixKeys: [{ epoch: 2, publicKey: bytes32('a') }, { epoch: 4, publicKey: bytes32('b') }] },
      { mixKeys: [{ epoch: 3, publicKey: bytes32('a') }, { epoch: 2, publicKey: bytes32('b') }] },
      { mixKeys: [{ epoch: 3, publicKey: new Uint8Array(16) }] },
    ];
    for (const b of bad) assert.throws(() => signDescriptor({ ...desc, ...b }, mix.seed, nodeEd25519), encodingError, JSON.stringify(Object.keys(b)));
    const gwDesc = gw.descriptor([1]).desc;
    for (const ws of ['http://x:1/', 'ws://', 'ws://host:0/', 'ws://user@host/', 'ws://host/a b', 'ws://host/?q=1', '']) {
      assert.throws(() => signDescriptor({ ...gwDesc, wsAddress: ws }, gw.seed, nodeEd25519), encodingError, ws);
    }
  });

  test('field rules are enforced when verifying, whatever the signature', () => {
    const base = { name: 'mix-a', identityKey: mix.identityKey, role: 1, layer: 2, tcp: '10.0.0.1:7000', ws: '', keys: [[9, bytes32('k')]] as Array<[number, Uint8Array]> };
    assert.doesNotThrow(() => verifyDescriptor(forge(rawBody(base), mix.seed), nodeEd25519));
    const variants = [
      { ...base, role: 2 },
      { ...base, role: 0 }, // a gateway in layer 2
      { ...base, layer: 0 },
      { ...base, ws: 'ws://h/' }, // a mix with a WebSocket address
      { ...base, tcp: 'nohost' },
      { ...base, name: 'bad name' },
      { ...base, keys: [] },
      { ...base, keys: [[9, bytes32('k')], [11, bytes32('k')]] as Array<[number, Uint8Array]> },
    ];
    for (const v of variants) assert.throws(() => verifyDescriptor(forge(rawBody(v), mix.seed), nodeEd25519), encodingError);
    // A wrong format byte, and trailing bytes inside the signed body.
    const body = rawBody(base);
    assert.throws(() => verifyDescriptor(forge(Uint8Array.of(2, ...body.subarray(1)), mix.seed), nodeEd25519), encodingError);
    assert.throws(() => verifyDescriptor(forge(Uint8Array.of(...body, 0), mix.seed), nodeEd25519), encodingError);
  });

  test('sizes are bounded', () => {
    assert.throws(() => verifyDescriptor(new Uint8Array(MAX_DESCRIPTOR_LENGTH + 1), nodeEd25519), encodingError);
    assert.throws(() => verifyDescriptor(new Uint8Array(10), nodeEd25519), encodingError);
    const longest = gw.descriptor(range(0, 4), {
      name: 'n'.repeat(64),
      tcpAddress: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(55)}:65535`,
      wsAddress: `wss://${'w'.repeat(60)}/${'p'.repeat(180)}`,
    });
    assert.ok(longest.bytes.length < 1024, `${longest.bytes.length}`);
  });

  test('any bit flip or truncation is a typed error, never another exception', () => {
    const { bytes } = gw.descriptor(range(40, 3));
    fc.assert(
      fc.property(fc.nat({ max: bytes.length * 8 - 1 }), fc.nat({ max: bytes.length - 1 }), (bit, cut) => {
        const flipped = bytes.slice();
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        assert.throws(() => verifyDescriptor(flipped, nodeEd25519), pkiError);
        assert.throws(() => verifyDescriptor(bytes.subarray(0, cut), nodeEd25519), pkiError);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (random) => {
        assert.throws(() => verifyDescriptor(random, nodeEd25519), pkiError);
        const withFormat = Uint8Array.of(1, ...random);
        assert.throws(() => verifyDescriptor(withFormat, portableEd25519), pkiError);
      }),
    );
  });

  test('address rules', () => {
    for (const ok of ['127.0.0.1:1', 'mix-1.example.org:65535', '[::1]:443', '[2001:db8::1]:8080', 'localhost:7000']) assert.ok(isValidTcpAddress(ok), ok);
    for (const bad of ['[::1]', '::1:80', '127.0.0.1:', ':80', 'a_b:1', 'a.-b:1', '[zz]:1', 'x:1:2']) assert.ok(!isValidTcpAddress(bad), bad);
    for (const ok of ['ws://127.0.0.1:8080/link', 'wss://gw.example.org/link', 'ws://[::1]:9/', 'wss://h']) assert.ok(isValidWsAddress(ok), ok);
    for (const bad of ['wss://h:99999/', 'ws:/h/', 'WS://h/', 'ws://h#f', 'ws://h:1:2/']) assert.ok(!isValidWsAddress(bad), bad);
  });

  test('the descriptor hash is SHA-512/256 of the signed bytes', () => {
    const { bytes } = gw.descriptor([1]);
    assert.equal(descriptorHash(bytes).length, 32);
    assert.notDeepEqual(descriptorHash(bytes), descriptorHash(gw.descriptor([2]).bytes));
  });
});
