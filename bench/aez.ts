/**
 * AEZ benchmark: sprpEncrypt (tau 0, no additional data: the Sphinx payload SPRP) over a
 * 2606-byte payload, against the npm `aez` package doing the same operation in the same run.
 * Run directly with `node dist/bench/aez.js` to print the result as JSON.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { sprpEncrypt } from '../src/aez/index.js';

/** The payload length Katzenpost's default Sphinx geometry enciphers. */
const PAYLOAD_BYTES = 2606;

interface NpmAez {
  encrypt(key: Buffer, nonce: Buffer, ad: Buffer[], tau: number, plaintext: Buffer): Buffer;
}

/** Median over `batches` batches of the mean time per call, in microseconds, after a warm-up. */
async function timeUs(fn: () => void, perBatch: number, batches: number): Promise<number> {
  for (let i = 0; i < perBatch; i++) fn();
  const samples: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) fn();
    samples.push(Number(process.hrtime.bigint() - start) / perBatch / 1000);
    // Let the event loop breathe between batches.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1]!;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Times sprpEncrypt and the npm aez package on a 2606-byte payload; returns microseconds per call. */
export async function benchAez(): Promise<{ aez_us: number; npm_aez_us: number; speedup: number }> {
  const key = randomBytes(48);
  const iv = randomBytes(16);
  const payload = randomBytes(PAYLOAD_BYTES);
  const npmAez = createRequire(import.meta.url)('aez') as NpmAez;

  // Both must compute the same function, or the comparison means nothing.
  const ours = sprpEncrypt(key, iv, payload);
  const theirs = npmAez.encrypt(key, iv, [], 0, payload);
  if (!Buffer.from(ours).equals(theirs)) throw new Error('bench/aez: sprpEncrypt disagrees with the npm aez package');

  let sink = 0;
  const aezUs = await timeUs(() => {
    sink ^= sprpEncrypt(key, iv, payload)[0]!;
  }, 500, 9);
  const npmUs = await timeUs(() => {
    sink ^= npmAez.encrypt(key, iv, [], 0, payload)[0]!;
  }, 50, 9);
  if (sink === 256) throw new Error('unreachable'); // keeps the results observable
  return { aez_us: round2(aezUs), npm_aez_us: round2(npmUs), speedup: round2(npmUs / aezUs) };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchAez()));
}
