/** A client's admission payload: its encoding, the proof of work (bound to both keys) and invitation tokens. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { nodeBackend } from '../../src/crypto/node.js';
import { toHex } from '../../src/util/bytes.js';
import { TwoBlockSha256 } from '../../src/wire/_work-sha256.js';
import { ADMISSION_LENGTH, decodeAdmission, encodeAdmission, leadingZeroBits, mintToken, solveWork, tokenValid, workBits } from '../../src/wire/admission.js';
import { HANDSHAKE_PAYLOAD_LENGTH } from '../../src/link/link.js';

const gateway = new Uint8Array(32).fill(7);
const client = new Uint8Array(32).fill(9);

describe('wire: admission', () => {
  test('the payload is the length every handshake carries, and round-trips each kind', () => {
    assert.equal(ADMISSION_LENGTH, HANDSHAKE_PAYLOAD_LENGTH);
    const nonce = new Uint8Array(16).fill(3);
    const token = new Uint8Array(32).fill(4);
    assert.deepEqual(decodeAdmission(encodeAdmission({ kind: 'none' })), { kind: 'none' });
    assert.deepEqual(decodeAdmission(encodeAdmission({ kind: 'work', nonce })), { kind: 'work', nonce });
    assert.deepEqual(decodeAdmission(encodeAdmission({ kind: 'token', token })), { kind: 'token', token });
    for (const p of [encodeAdmission({ kind: 'none' })]) assert.equal(p.length, ADMISSION_LENGTH);
  });

  test('anything else decodes as no admission: an older peer\'s empty payload, another length, an unknown kind, work with bytes past its nonce', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const a = decodeAdmission(bytes);
        if (bytes.length !== ADMISSION_LENGTH || (bytes[0] !== 1 && bytes[0] !== 2)) return a.kind === 'none';
        return true;
      }),
    );
    const work = encodeAdmission({ kind: 'work', nonce: new Uint8Array(16) });
    work[20] = 1;
    assert.equal(decodeAdmission(work).kind, 'none');
  });

  test('the solver\'s two-block SHA-256 is SHA-256 (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ minLength: 6, maxLength: 55 }), fc.integer({ min: 0, max: 2 ** 48 - 1 }), (first, rest, counter) => {
        const h = new TwoBlockSha256(first, rest);
        h.set(0, counter);
        const msg = new Uint8Array(64 + rest.length);
        msg.set(first);
        msg.set(rest, 64);
        let n = counter;
        for (let i = 5; i >= 0; i--, n = Math.floor(n / 256)) msg[64 + i] = n & 0xff;
        const want = sha256(msg);
        return toHex(h.digest()) === toHex(want) && h.leadingZeros() === leadingZeroBits(want);
      }),
      { numRuns: 200 },
    );
  });

  test('a solved proof holds for its client key at its gateway, and not for another key or gateway', async () => {
    let reports = 0;
    const nonce = await solveWork(gateway, client, 16, { chunk: 4096, onProgress: () => reports++, yieldNow: () => Promise.resolve() });
    assert.ok(nonce !== null);
    assert.ok(workBits(gateway, client, nonce) >= 16);
    // Another key or gateway sees an unrelated digest: 16 bits by chance once in 65,536.
    assert.ok(workBits(gateway, new Uint8Array(32).fill(8), nonce) < 16);
    assert.ok(workBits(new Uint8Array(32).fill(6), client, nonce) < 16);
    assert.ok(reports > 0, 'progress was reported');
  });

  test('a solve stops when cancelled', async () => {
    assert.equal(await solveWork(gateway, client, 40, { chunk: 1000, cancelled: () => true }), null);
  });

  test('tokens: one minted under the key is valid; another key, a changed byte, another length are not', () => {
    const key = nodeBackend.randomBytes(32);
    const token = mintToken(nodeBackend, key, nodeBackend.randomBytes(16));
    assert.equal(tokenValid(nodeBackend, key, token), true);
    assert.equal(tokenValid(nodeBackend, nodeBackend.randomBytes(32), token), false);
    for (const i of [0, 15, 16, 31]) {
      const t = token.slice();
      t[i]! ^= 1;
      assert.equal(tokenValid(nodeBackend, key, t), false);
    }
    assert.equal(tokenValid(nodeBackend, key, token.subarray(0, 31)), false);
  });
});
