/**
 * `npm run bench -- aez`: sprpEncrypt (tau 0, no additional data: the Sphinx payload SPRP) over
 * the default geometry's payload, against the npm `aez` package doing the same in the same run.
 */
import { createRequire } from 'node:module';
import { sprpEncrypt } from '../src/aez/index.js';
import { nodeBackend } from '../src/crypto/node.js';
import { defaultGeometry } from '../src/sphinx/index.js';
import { measure, round } from './_timing.js';

interface NpmAez {
  encrypt(key: Buffer, nonce: Buffer, ad: Buffer[], tau: number, plaintext: Buffer): Buffer;
}

export interface AezBench {
  payload_bytes: number;
  aez_us: number;
  npm_aez_us: number;
  aez_speedup_over_npm: number;
}

export function benchAez(): AezBench {
  const c = nodeBackend;
  const payloadBytes = defaultGeometry().payloadLength;
  const key = c.randomBytes(48);
  const iv = c.randomBytes(16);
  const payload = c.randomBytes(payloadBytes);
  const npm = createRequire(import.meta.url)('aez') as NpmAez;
  const [kb, ivb, pb] = [Buffer.from(key), Buffer.from(iv), Buffer.from(payload)];

  // Both must compute the same function, or the comparison means nothing.
  if (!Buffer.from(sprpEncrypt(key, iv, payload)).equals(npm.encrypt(kb, ivb, [], 0, pb))) {
    throw new Error('bench/aez: sprpEncrypt disagrees with the npm aez package');
  }
  const ours = measure(() => sprpEncrypt(key, iv, payload));
  const theirs = measure(() => npm.encrypt(kb, ivb, [], 0, pb));
  return {
    payload_bytes: payloadBytes,
    aez_us: round(ours.us),
    npm_aez_us: round(theirs.us),
    aez_speedup_over_npm: round(theirs.us / ours.us),
  };
}
