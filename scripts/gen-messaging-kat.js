#!/usr/bin/env node
// Writes test/messaging/vectors/kdf-chains.json: known answers for the messaging layer's key
// derivations (docs/messaging.md): the X3DH KDF with the ML-KEM secret, the root KDF with and
// without a post-quantum secret, the chain KDF over several steps, and a body sealed under its
// message key.
//
// It computes them with node:crypto (hkdfSync, createHmac, createCipheriv), written here from the description in
// docs/messaging.md and not from src/messaging, so that the test that reads the file checks our
// code against a second implementation. Inputs are SHA-256 of fixed labels.
//
//   node scripts/gen-messaging-kat.js      (rewrites the file; commit the result)
import { Buffer } from 'node:buffer';
import { createCipheriv, createHash, createHmac, hkdfSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { URL, fileURLToPath } from 'node:url';
import { TextEncoder } from 'node:util';

const OUT = new URL('../test/messaging/vectors/kdf-chains.json', import.meta.url);
const te = new TextEncoder();
const hex = (b) => Buffer.from(b).toString('hex');
const input = (label) => createHash('sha256').update(`backchannel messaging kat: ${label}`).digest();
const hkdf = (salt, ikm, info, length) => Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();

const INFO_X3DH = te.encode('Backchannel messaging v1 X3DH');
const INFO_ROOT = te.encode('Backchannel messaging v1 root');

// X3DH: HKDF(salt = 32 zero bytes, ikm = 0xFF*32 || DH1..DH4 || SS, info) -> SK || HKa || NHKb.
const x3dh = [];
for (const k of [0, 1]) {
  const dhs = [1, 2, 3, 4].map((i) => input(`x3dh ${k} dh${i}`));
  const ss = input(`x3dh ${k} kem`);
  const out = hkdf(Buffer.alloc(32), Buffer.concat([Buffer.alloc(32, 0xff), ...dhs, ss]), INFO_X3DH, 96);
  x3dh.push({ dh: dhs.map(hex), kem: hex(ss), sk: hex(out.subarray(0, 32)), hka: hex(out.subarray(32, 64)), nhkb: hex(out.subarray(64, 96)) });
}

// Root KDF: HKDF(salt = rk, ikm = dh || [ss], info) -> rk' || ck || nhk, chained over five steps
// (every other one with a post-quantum secret).
const root = [];
let rk = input('root rk0');
for (let i = 0; i < 5; i++) {
  const dh = input(`root dh${i}`);
  const pq = i % 2 === 1 ? input(`root pq${i}`) : null;
  const out = hkdf(rk, pq ? Buffer.concat([dh, pq]) : dh, INFO_ROOT, 96);
  root.push({ rk: hex(rk), dh: hex(dh), pq: pq ? hex(pq) : null, next_rk: hex(out.subarray(0, 32)), ck: hex(out.subarray(32, 64)), nhk: hex(out.subarray(64, 96)) });
  rk = out.subarray(0, 32);
}

// Chain KDF: ck' = HMAC(ck, 0x02), mk = HMAC(ck, 0x01); the first ten steps and step 999.
const ck0 = input('chain ck0');
const chain = { ck0: hex(ck0), steps: [] };
let ck = ck0;
for (let n = 0; n < 1000; n++) {
  const mk = hmac(ck, Buffer.of(0x01));
  const next = hmac(ck, Buffer.of(0x02));
  if (n < 10 || n === 999) chain.steps.push({ n, mk: hex(mk), ck: hex(next) });
  ck = next;
}

// Message bodies: ChaCha20-Poly1305 with the message key itself as the key and a zero nonce,
// associated data = the session's AD || the message's prefix; the output is ciphertext || tag.
const body = [0, 1, 2].map((i) => {
  const mk = input(`body mk${i}`);
  const ad = Buffer.concat([input(`body ad${i}`), input(`body prefix${i}`).subarray(0, 10 + i)]);
  const plaintext = Buffer.from(`body ${i}: ${'x'.repeat(40 * i)}`);
  const cipher = createCipheriv('chacha20-poly1305', mk, Buffer.alloc(12), { authTagLength: 16 });
  cipher.setAAD(ad);
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { mk: hex(mk), ad: hex(ad), plaintext: hex(plaintext), sealed: hex(sealed) };
});

const doc = {
  about: 'Known answers for the messaging KDFs (docs/messaging.md), written by scripts/gen-messaging-kat.js with node:crypto.',
  info: { x3dh: hex(INFO_X3DH), root: hex(INFO_ROOT) },
  x3dh,
  root,
  chain,
  body,
};
writeFileSync(fileURLToPath(OUT), `${JSON.stringify(doc, null, 2)}\n`);
console.log(`gen-messaging-kat: wrote ${fileURLToPath(OUT)}`);
