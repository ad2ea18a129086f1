/**
 * `npm run bench -- admission`: what the gateway's proof of work costs. Measures the solver's rate
 * (SHA-256 evaluations a second on one core, src/wire/_work-sha256.ts) over `BENCH_ADMISSION_SECONDS`
 * (5 by default), and the verifier's (one SHA-256 of the whole message, src/wire/admission.ts), and
 * solves `BENCH_ADMISSION_SOLVES` (8 by default) real proofs at 16 bits to check the rate against
 * whole solves. From the rate: the expected seconds of work per identity at the default cost
 * (ADMISSION_WORK_BITS, 2^bits evaluations expected), a phone's (PHONE_SLOWDOWN × slower), and
 * the CPU-seconds an attacker spends per 1,000 identities with this solver.
 */
import { nodeBackend } from '../src/crypto/node.js';
import { ADMISSION_WORK_BITS, solveWork, workBits } from '../src/wire/admission.js';
import { round } from './_timing.js';

/** A phone's JavaScript runs about 5× slower than one core of the development machine (the brief's estimate, not measured here). */
const PHONE_SLOWDOWN = 5;

export async function benchAdmission(): Promise<Record<string, number>> {
  const seconds = Number(process.env['BENCH_ADMISSION_SECONDS'] ?? 5);
  const solves = Number(process.env['BENCH_ADMISSION_SOLVES'] ?? 8);
  const gateway = nodeBackend.randomBytes(32);
  const client = nodeBackend.randomBytes(32);
  // The solver's rate: an impossible target, stopped after `seconds`.
  let tried = 0;
  const t0 = performance.now();
  await solveWork(gateway, client, 40, { chunk: 16384, onProgress: (n) => (tried = n), cancelled: () => performance.now() - t0 > seconds * 1000 });
  const rate = tried / ((performance.now() - t0) / 1000);
  // Whole solves at 16 bits (65,536 expected each).
  const t1 = performance.now();
  for (let i = 0; i < solves; i++) await solveWork(gateway, nodeBackend.randomBytes(32), 16);
  const solveMs = (performance.now() - t1) / Math.max(1, solves);
  // The verifier.
  const nonce = new Uint8Array(16);
  let verified = 0;
  const t2 = performance.now();
  while (performance.now() - t2 < 1000) {
    for (let i = 0; i < 1000; i++) workBits(gateway, client, nonce);
    verified += 1000;
  }
  const verifyRate = verified / ((performance.now() - t2) / 1000);
  const perIdentityS = 2 ** ADMISSION_WORK_BITS / rate;
  return {
    work_bits_default: ADMISSION_WORK_BITS,
    solver_evaluations_per_s: Math.round(rate),
    solve_16_bits_ms_mean: round(solveMs, 1),
    seconds_per_identity_default: round(perIdentityS, 2),
    seconds_per_identity_phone_estimate: round(perIdentityS * PHONE_SLOWDOWN, 1),
    cpu_seconds_per_1000_identities: Math.round(1000 * perIdentityS),
    verifications_per_s: Math.round(verifyRate),
  };
}
