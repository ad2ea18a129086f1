/**
 * `npm run bench -- crypto`: the X25519 candidates for the Node backend, measured side by side
 * (the reason the backend uses sodium-native), and the other primitives at Sphinx's sizes.
 */
import { createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { nodeBackend } from '../src/crypto/node.js';
import { portableBackend } from '../src/crypto/portable.js';
import { measure, round } from './_timing.js';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');

export function benchCrypto(): Record<string, number> {
  const c = nodeBackend;
  const scalar = c.randomBytes(32);
  const point = c.x25519Base(c.randomBytes(32));
  const priv = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(scalar), x: b64(c.x25519Base(scalar)) }, format: 'jwk' });
  const sodium = measure(() => c.x25519(scalar, point));
  // KeyObjects: the private key is imported once (a mix key is long-lived); the point changes per packet.
  const keyObject = measure(() => {
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(point) }, format: 'jwk' });
    diffieHellman({ privateKey: priv, publicKey: pub });
  });
  const noble = measure(() => portableBackend.x25519(scalar, point), { batchMs: 200, batches: 3 });
  const key = c.randomBytes(32);
  const iv = c.randomBytes(16);
  const header = c.randomBytes(444);
  return {
    x25519_sodium_native_us: round(sodium.us),
    x25519_node_keyobject_jwk_us: round(keyObject.us),
    x25519_noble_us: round(noble.us),
    hmac_sha256_444B_us: round(measure(() => c.hmacSha256(key, header)).us),
    hkdf_expand_160B_us: round(measure(() => c.hkdfSha256Expand(key, iv, 160)).us),
    aes256ctr_492B_us: round(measure(() => c.aes256Ctr(key, iv, header)).us),
    chacha20_32B_us: round(measure(() => c.chacha20Keystream(key, 32)).us),
    sha512_256_32B_us: round(measure(() => c.sha512_256(key)).us),
  };
}
