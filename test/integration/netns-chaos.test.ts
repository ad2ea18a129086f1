/**
 * The short chaos run across hosts (src/local/chaos.ts): every server of a local network in its
 * own network namespace with its own address, two client processes exchanging numbered messages,
 * and 30 s of seeded random faults (SIGKILL and restart, SIGSTOP/SIGCONT, partitions of a host,
 * packet loss on a host's link where the kernel can make it). Asserted: every acknowledged
 * message is shown to its receiver exactly once, nothing is shown twice or unsent, and every
 * server process is back and healthy at the end. The long run is `npm run bench -- chaos`.
 *
 * Where namespaces cannot be made (not Linux, not root, no iproute2, a kernel that refuses) the
 * test skips and says why, except in CI (CI=true) as root on Linux: there the machine is meant to
 * run it, so a refusal is a failure, not a silent skip. The seed is CHAOS_SEED when set, else
 * random; it is printed either way so that a failing run can be replayed
 * (`CHAOS_SEED=S node scripts/run-tests.js netns-chaos`, or the bench with --seed S).
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { chaosReport, chaosSchedule, runChaos, seededRandom } from '../../src/local/chaos.js';
import { probeHosts } from '../../src/local/netns.js';

const FAULT_MS = 30_000;
// Names and addresses of its own, apart from the bench's (bcn, 10.213.0.0/24), so both can run at once.
const PREFIX = 'bcnt';
const SUBNET = '10.213.1';
const seedFromEnv = process.env['CHAOS_SEED'];
const SEED = seedFromEnv !== undefined && /^\d+$/.test(seedFromEnv) ? Number(seedFromEnv) : randomInt(2 ** 31);

const refusal = probeHosts();
const mustRun = process.env['CI'] === 'true' && process.platform === 'linux' && process.getuid?.() === 0;
const skip = refusal !== null && !mustRun ? `network namespaces cannot be made here: ${refusal}` : false;

describe('chaos across hosts (network namespaces)', { timeout: 400_000 }, () => {
  it('the schedule is a function of the seed', () => {
    const servers = ['a', 'b', 'c', 'd'];
    const one = chaosSchedule(7, servers, 60_000, ['kill', 'pause', 'partition', 'loss'], 2);
    assert.deepEqual(chaosSchedule(7, servers, 60_000, ['kill', 'pause', 'partition', 'loss'], 2), one);
    assert.notDeepEqual(chaosSchedule(8, servers, 60_000, ['kill', 'pause', 'partition', 'loss'], 2), one);
    assert.ok(one.length > 5);
    for (const f of one) {
      assert.ok(f.atMs < 60_000);
      // Never more than two at once, never two on one server.
      const overlapping = one.filter((g) => g.atMs <= f.atMs && g.atMs + g.forMs > f.atMs);
      assert.ok(overlapping.length <= 2);
      assert.equal(new Set(overlapping.map((g) => g.server)).size, overlapping.length);
    }
    const r = seededRandom(1);
    assert.ok([r(), r(), r()].every((x) => x >= 0 && x < 1));
  });

  it('kills, pauses, partitions and loss lose no acknowledged message and show none twice', { skip }, async () => {
    if (refusal !== null) assert.fail(`CI=true as root on Linux, yet network namespaces cannot be made: ${refusal}`);
    process.stdout.write(`# chaos seed ${SEED} (replay: CHAOS_SEED=${SEED})\n`);
    const r = await runChaos({ durationMs: FAULT_MS, seed: SEED, prefix: PREFIX, subnet: SUBNET, settleMs: 20_000, drainMs: 30_000, log: (l) => process.stdout.write(`# ${l}\n`) });
    process.stdout.write(`${chaosReport(r).replace(/^/gm, '# ')}\n`);
    const why = `seed ${SEED}`;
    assert.ok(r.faults.length > 0, `faults were made (${why})`);
    assert.ok(r.acknowledged > 0, `some messages were acknowledged (${why})`);
    assert.equal(r.lost, 0, `every acknowledged message is received (${why})`);
    assert.equal(r.duplicated, 0, `no message is shown twice (${why})`);
    assert.equal(r.unknown, 0, `nothing unsent is shown (${why})`);
    assert.deepEqual(r.notBack, [], `every server is back at the end (${why})`);
  });
});
