/**
 * Known-answer tests: every AEZ v5 vector in ../shared/vectors/aez and Katzenpost's SPRP vectors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  aezDecrypt,
  aezEncrypt,
  aezExtract,
  aezHash,
  aezPrf,
  sprpDecrypt,
  sprpDecryptInPlace,
  sprpEncrypt,
  sprpEncryptInPlace,
} from '../../src/aez/index.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { loadVectors } from '../vectors.js';

interface EncryptVector {
  key: string;
  nonce: string;
  ad: string[];
  /** Authenticator length in bytes (0 or 16 in this file). */
  tau: number;
  message: string;
  result: string;
}
interface ExtractVector {
  key: string;
  result: string;
}
interface HashVector {
  key: string;
  /** The integer in the first tweak block, [tau]_128: a length in bits (the file has odd values such as 139). */
  tau: number;
  /** The rest of the tweak vector. */
  ad: string[];
  result: string;
}
interface PrfVector {
  key: string;
  delta: string;
  /** Output length in bytes (it always equals the result's length). */
  tau: number;
  result: string;
}
interface SprpFile {
  vectors: { name: string; key_hex: string; iv_hex: string; plaintext_hex: string; ciphertext_hex: string }[];
}

const enc = loadVectors<EncryptVector[]>('aez/encrypt.json');
const ext = loadVectors<ExtractVector[]>('aez/extract.json');
const hsh = loadVectors<HashVector[]>('aez/hash.json');
const prf = loadVectors<PrfVector[]>('aez/prf.json');
const kp = loadVectors<SprpFile>('katzenpost/sprp_aez.json');

const skipOf = (v: { data: unknown } | { skip: string }): string | false => ('skip' in v ? v.skip : false);
const ran = { encrypt: 0, extract: 0, hash: 0, prf: 0, katzenpost: 0 };

test('every AEZ encrypt vector encrypts to its result and decrypts back to its message', { skip: skipOf(enc) }, () => {
  if (!('data' in enc)) return;
  assert.ok(enc.data.length > 0);
  for (const [n, v] of enc.data.entries()) {
    const key = fromHex(v.key);
    const nonce = fromHex(v.nonce);
    const ad = v.ad.map(fromHex);
    const c = aezEncrypt(key, nonce, ad, v.tau, fromHex(v.message));
    assert.equal(toHex(c), v.result, `encrypt vector ${n} (message ${v.message.length / 2} bytes, tau ${v.tau})`);
    const m = aezDecrypt(key, nonce, ad, v.tau, fromHex(v.result));
    assert.equal(toHex(m), v.message, `decrypt vector ${n}`);
    ran.encrypt++;
  }
});

test('every Extract vector derives its 48-byte I||J||L', { skip: skipOf(ext) }, () => {
  if (!('data' in ext)) return;
  assert.ok(ext.data.length > 0);
  for (const [n, v] of ext.data.entries()) {
    assert.equal(toHex(aezExtract(fromHex(v.key))), v.result, `extract vector ${n} (key ${v.key.length / 2} bytes)`);
    ran.extract++;
  }
});

test('every AEZ-hash vector hashes ([tau]_128, ...ad) to its Delta, tau taken in bits', { skip: skipOf(hsh) }, () => {
  if (!('data' in hsh)) return;
  assert.ok(hsh.data.length > 0);
  for (const [n, v] of hsh.data.entries()) {
    const delta = aezHash(fromHex(v.key), v.ad.map(fromHex), v.tau);
    assert.equal(toHex(delta), v.result, `hash vector ${n}`);
    ran.hash++;
  }
});

test('every AEZ-prf vector expands its Delta to tau bytes', { skip: skipOf(prf) }, () => {
  if (!('data' in prf)) return;
  assert.ok(prf.data.length > 0);
  for (const [n, v] of prf.data.entries()) {
    const out = aezPrf(fromHex(v.key), fromHex(v.delta), v.tau);
    assert.equal(toHex(out), v.result, `prf vector ${n}`);
    ran.prf++;
  }
});

test('every Katzenpost SPRP vector enciphers and deciphers, copying and in place', { skip: skipOf(kp) }, () => {
  if (!('data' in kp)) return;
  assert.ok(kp.data.vectors.length > 0);
  for (const v of kp.data.vectors) {
    const key = fromHex(v.key_hex);
    const iv = fromHex(v.iv_hex);
    const pt = fromHex(v.plaintext_hex);
    assert.equal(toHex(sprpEncrypt(key, iv, pt)), v.ciphertext_hex, `${v.name} encrypt`);
    assert.equal(toHex(sprpDecrypt(key, iv, fromHex(v.ciphertext_hex))), v.plaintext_hex, `${v.name} decrypt`);
    const buf = fromHex(v.plaintext_hex);
    sprpEncryptInPlace(key, iv, buf);
    assert.equal(toHex(buf), v.ciphertext_hex, `${v.name} encrypt in place`);
    sprpDecryptInPlace(key, iv, buf);
    assert.equal(toHex(buf), v.plaintext_hex, `${v.name} decrypt in place`);
    // The same operation through the general API: tau 0, nonce = iv, no additional data.
    assert.equal(toHex(aezEncrypt(key, iv, [], 0, pt)), v.ciphertext_hex, `${v.name} via aezEncrypt`);
    ran.katzenpost++;
  }
});

test('the number of vectors run is reported and matches the files', (t) => {
  const expected = {
    encrypt: 'data' in enc ? enc.data.length : 0,
    extract: 'data' in ext ? ext.data.length : 0,
    hash: 'data' in hsh ? hsh.data.length : 0,
    prf: 'data' in prf ? prf.data.length : 0,
    katzenpost: 'data' in kp ? kp.data.vectors.length : 0,
  };
  t.diagnostic(
    `aez vectors run: encrypt ${ran.encrypt}, extract ${ran.extract}, hash ${ran.hash}, prf ${ran.prf}, ` +
      `katzenpost sprp ${ran.katzenpost} (total ${Object.values(ran).reduce((a, b) => a + b, 0)})`,
  );
  assert.deepEqual(ran, expected);
});
