// The package entry, src/index.ts: it re-exports the protocol libraries, and package.json's "."
// export resolves to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as entry from '../src/index.js';
import * as aez from '../src/aez/index.js';
import * as crypto from '../src/crypto/index.js';
import * as noise from '../src/noise/index.js';
import * as pki from '../src/pki/index.js';
import * as sphinx from '../src/sphinx/index.js';
import * as wire from '../src/wire/index.js';

test('the entry re-exports every value of the six protocol libraries, the same objects', () => {
  const libraries = { sphinx, aez, crypto, noise, wire, pki };
  for (const [name, lib] of Object.entries(libraries)) {
    const names = Object.keys(lib);
    assert.ok(names.length > 0, `${name} exports nothing`);
    for (const key of names) assert.equal((entry as Record<string, unknown>)[key], (lib as Record<string, unknown>)[key], `${name}.${key}`);
  }
});

test('a few names from the entry work: a Sphinx instance, an AEZ SPRP round trip, a Noise protocol name', () => {
  const s = new entry.Sphinx(entry.defaultGeometry(), entry.portableBackend);
  assert.equal(s.geometry.packetLength, entry.defaultGeometry().packetLength);
  const key = new Uint8Array(48).fill(7);
  const iv = new Uint8Array(16).fill(9);
  const m = Uint8Array.from({ length: 40 }, (_, i) => i);
  assert.deepEqual(entry.sprpDecrypt(key, iv, entry.sprpEncrypt(key, iv, m)), m);
  assert.equal(entry.parseProtocolName('Noise_XX_25519_ChaChaPoly_BLAKE2b').pattern.name, 'XX');
  assert.equal(typeof entry.createHandshake, 'function');
  assert.equal(typeof entry.WireCodec, 'function');
  assert.equal(typeof entry.verifySignedDocument, 'function');
});

test('the package name resolves, through the "." export of package.json, to this entry', async () => {
  // A variable keeps TypeScript from resolving the name at build time, before dist/ exists.
  const name: string = 'backchannel';
  const pkg = (await import(name)) as Record<string, unknown>;
  assert.equal(pkg['Sphinx'], entry.Sphinx);
  assert.equal(pkg['createHandshake'], entry.createHandshake);
});
