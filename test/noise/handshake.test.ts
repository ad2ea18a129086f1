/** Behaviour of the Noise API beyond the vectors: misuse, tampering, rekeying, limits. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isBackchannelError } from '../../src/errors.js';
import { nodeBackend } from '../../src/crypto/node.js';
import type { Handshake } from '../../src/noise/index.js';
import { MAX_MESSAGE_LENGTH, PATTERN_NAMES, createHandshake, parsePattern } from '../../src/noise/index.js';

const XK = 'Noise_XK_25519_ChaChaPoly_BLAKE2b';

function keyPair(): { priv: Uint8Array; pub: Uint8Array } {
  const priv = new Uint8Array(randomBytes(32));
  return { priv, pub: nodeBackend.x25519Base(priv) };
}

function xkPair(protocolName = XK): { init: Handshake; resp: Handshake; i: ReturnType<typeof keyPair>; r: ReturnType<typeof keyPair> } {
  const i = keyPair();
  const r = keyPair();
  const init = createHandshake({ protocolName, initiator: true, s: i.priv, rs: r.pub, prologue: Uint8Array.of(1, 2) });
  const resp = createHandshake({ protocolName, initiator: false, s: r.priv, prologue: Uint8Array.of(1, 2) });
  return { init, resp, i, r };
}

/** Runs the three XK messages; returns them. */
function runXK(init: Handshake, resp: Handshake): Uint8Array[] {
  const m1 = init.writeMessage();
  resp.readMessage(m1);
  const m2 = resp.writeMessage();
  init.readMessage(m2);
  const m3 = init.writeMessage(Uint8Array.of(7));
  assert.deepEqual(resp.readMessage(m3), Uint8Array.of(7));
  return [m1, m2, m3];
}

const code = (c: string) => (e: unknown): boolean => isBackchannelError(e) && e.code === c;

describe('noise handshake', () => {
  test('XK authenticates both sides and agrees on keys', () => {
    const { init, resp, i } = xkPair();
    assert.equal(resp.remoteStatic, null);
    runXK(init, resp);
    assert.ok(init.finished && resp.finished);
    assert.deepEqual(resp.remoteStatic, i.pub);
    assert.deepEqual(init.handshakeHash, resp.handshakeHash);
    const [iSend, iRecv] = init.split();
    const [rRecv, rSend] = resp.split();
    const ad = Uint8Array.of(9);
    assert.deepEqual(rRecv.decrypt(ad, iSend.encrypt(ad, Uint8Array.of(1, 2, 3))), Uint8Array.of(1, 2, 3));
    assert.deepEqual(iRecv.decrypt(ad, rSend.encrypt(ad, Uint8Array.of(4))), Uint8Array.of(4));
  });

  test('every pattern of the table, with and without a psk, completes with random keys', () => {
    for (const base of PATTERN_NAMES) {
      for (const name of [base, `${base}psk0`]) {
        const pattern = parsePattern(name);
        const i = keyPair();
        const r = keyPair();
        const psks = name.endsWith('psk0') ? [new Uint8Array(randomBytes(32))] : [];
        const init = createHandshake({
          protocolName: `Noise_${name}_25519_AESGCM_SHA256`, initiator: true, s: i.priv, psks,
          ...(pattern.responderPreMessage.includes('s') ? { rs: r.pub } : {}),
        });
        const resp = createHandshake({
          protocolName: `Noise_${name}_25519_AESGCM_SHA256`, initiator: false, s: r.priv, psks,
          ...(pattern.initiatorPreMessage.includes('s') ? { rs: i.pub } : {}),
        });
        for (let k = 0; !init.finished; k++) {
          const [w, rd] = k % 2 === 0 ? [init, resp] : [resp, init];
          assert.deepEqual(rd.readMessage(w.writeMessage(Uint8Array.of(k))), Uint8Array.of(k), name);
        }
        assert.ok(resp.finished, name);
        assert.deepEqual(init.handshakeHash, resp.handshakeHash, name);
      }
    }
  });

  test('calls out of turn, split too early and split twice are state errors', () => {
    const { init, resp } = xkPair();
    assert.throws(() => resp.writeMessage(), code('ERR_NOISE_STATE'));
    assert.throws(() => init.readMessage(new Uint8Array(48)), code('ERR_NOISE_STATE'));
    assert.throws(() => init.split(), code('ERR_NOISE_STATE'));
    runXK(init, resp);
    assert.throws(() => init.writeMessage(), code('ERR_NOISE_STATE'));
    init.split();
    assert.throws(() => init.split(), code('ERR_NOISE_STATE'));
  });

  test('unknown or unsupported protocol names and wrong keys give typed errors', () => {
    for (const name of ['Noise_XK_448_ChaChaPoly_BLAKE2b', 'Noise_ZZ_25519_ChaChaPoly_BLAKE2b', 'Noise_XK_25519_AES_BLAKE2b',
      'Noise_XK_25519_ChaChaPoly_MD5', 'Noise_XKpsk9_25519_ChaChaPoly_SHA256', 'Noise_XK_25519_ChaChaPoly', 'XK', '']) {
      assert.throws(() => createHandshake({ protocolName: name, initiator: true }), code('ERR_NOISE_PROTOCOL'), name);
    }
    const r = keyPair();
    assert.throws(() => createHandshake({ protocolName: XK, initiator: true, rs: r.pub }), code('ERR_NOISE_KEY'));
    assert.throws(() => createHandshake({ protocolName: XK, initiator: true, s: r.priv }), code('ERR_NOISE_KEY'));
    assert.throws(() => createHandshake({ protocolName: XK, initiator: true, s: r.priv, rs: new Uint8Array(31) }), code('ERR_NOISE_KEY'));
    assert.throws(() => createHandshake({ protocolName: 'Noise_XX_25519_ChaChaPoly_SHA256', initiator: true, s: r.priv, rs: r.pub }), code('ERR_NOISE_KEY'));
    assert.throws(() => createHandshake({ protocolName: 'Noise_NNpsk0_25519_ChaChaPoly_SHA256', initiator: true }), code('ERR_NOISE_KEY'));
    assert.throws(() => createHandshake({ protocolName: 'Noise_NNpsk0_25519_ChaChaPoly_SHA256', initiator: true, psks: [new Uint8Array(16)] }), code('ERR_NOISE_KEY'));
  });

  test('an initiator with the wrong responder key is refused at the first message', () => {
    const i = keyPair();
    const r = keyPair();
    const init = createHandshake({ protocolName: XK, initiator: true, s: i.priv, rs: keyPair().pub });
    const resp = createHandshake({ protocolName: XK, initiator: false, s: r.priv });
    assert.throws(() => resp.readMessage(init.writeMessage()), code('ERR_NOISE_DECRYPT'));
    assert.throws(() => resp.writeMessage(), code('ERR_NOISE_STATE'));
  });

  test('any flipped bit or truncation of a handshake message is a typed error, and the handshake stays failed', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 }), fc.nat(), fc.boolean(), (which, pos, truncate) => {
      const { init, resp } = xkPair();
      const msgs: Uint8Array[] = [];
      const steps: [Handshake, Handshake][] = [[init, resp], [resp, init], [init, resp]];
      for (let k = 0; k < 3; k++) {
        const [w, r] = steps[k]!;
        const m = w.writeMessage(Uint8Array.of(k));
        msgs.push(m);
        if (k === which) {
          const bad = truncate ? m.subarray(0, pos % m.length) : Uint8Array.from(m);
          if (!truncate) bad[pos % m.length]! ^= 1 << (pos % 8);
          let thrown: unknown;
          try {
            r.readMessage(bad);
          } catch (e) {
            thrown = e;
          }
          // The first message's ephemeral key is unauthenticated until the payload tag: every
          // change must still be caught there.
          assert.ok(isBackchannelError(thrown), `message ${k}: ${String(thrown)}`);
          assert.match(thrown.code, /^ERR_(NOISE_(DECRYPT|LENGTH)|CRYPTO_LOW_ORDER)$/);
          assert.throws(() => r.readMessage(m), code('ERR_NOISE_STATE'));
          return;
        }
        r.readMessage(m);
      }
    }), { numRuns: 300 });
  });

  test('payloads that would exceed 65535 bytes are refused before any state changes', () => {
    const { init, resp } = xkPair();
    assert.throws(() => init.writeMessage(new Uint8Array(MAX_MESSAGE_LENGTH - 32 - 16 + 1)), code('ERR_NOISE_LENGTH'));
    const m1 = init.writeMessage(new Uint8Array(MAX_MESSAGE_LENGTH - 32 - 16));
    assert.equal(m1.length, MAX_MESSAGE_LENGTH);
    resp.readMessage(m1);
  });
});

describe('noise transport', () => {
  function pair(): { a: ReturnType<Handshake['split']>; b: ReturnType<Handshake['split']> } {
    const { init, resp } = xkPair();
    runXK(init, resp);
    return { a: init.split(), b: resp.split() };
  }
  const ad = new Uint8Array(0);

  test('rekey on both sides keeps the channel; on one side breaks it', () => {
    const { a, b } = pair();
    a[0].rekey();
    b[0].rekey();
    assert.deepEqual(b[0].decrypt(ad, a[0].encrypt(ad, Uint8Array.of(5))), Uint8Array.of(5));
    a[0].rekey();
    assert.throws(() => b[0].decrypt(ad, a[0].encrypt(ad, Uint8Array.of(5))), code('ERR_NOISE_DECRYPT'));
  });

  test('replayed, reordered, flipped and truncated ciphertexts fail; a failure does not advance the nonce', () => {
    const { a, b } = pair();
    const c1 = a[0].encrypt(ad, Uint8Array.of(1));
    const c2 = a[0].encrypt(ad, Uint8Array.of(2));
    assert.throws(() => b[0].decrypt(ad, c2), code('ERR_NOISE_DECRYPT'));
    const flipped = Uint8Array.from(c1);
    flipped[0]! ^= 0x80;
    assert.throws(() => b[0].decrypt(ad, flipped), code('ERR_NOISE_DECRYPT'));
    assert.throws(() => b[0].decrypt(ad, c1.subarray(0, 15)), code('ERR_NOISE_LENGTH'));
    assert.throws(() => b[0].decrypt(Uint8Array.of(1), c1), code('ERR_NOISE_DECRYPT'));
    assert.equal(b[0].nonce, 0);
    assert.deepEqual(b[0].decrypt(ad, c1), Uint8Array.of(1));
    assert.throws(() => b[0].decrypt(ad, c1), code('ERR_NOISE_DECRYPT'));
    assert.deepEqual(b[0].decrypt(ad, c2), Uint8Array.of(2));
    assert.throws(() => a[0].encrypt(ad, new Uint8Array(MAX_MESSAGE_LENGTH - 15)), code('ERR_NOISE_LENGTH'));
  });

  test('destroyed cipher states no longer encrypt', () => {
    const { a } = pair();
    a[0].destroy();
    assert.throws(() => a[0].rekey(), code('ERR_NOISE_STATE'));
  });
});
