/**
 * `npm run bench -- chaos [--minutes N] [--seed S] [--concurrent K] [--faults none|kill,pause,partition,loss] [--json]`: the chaos run
 * across hosts (src/local/chaos.ts) for N minutes of faults (default 10), every server in its own
 * network namespace. Needs Linux and root. Prints the counts and the seed; exits non-zero when an
 * acknowledged message was lost, a message was shown twice, or a server did not come back.
 */
import { randomInt } from 'node:crypto';
import { chaosReport, runChaos } from '../src/local/chaos.js';
import { probeHosts } from '../src/local/netns.js';

function option(argv: readonly string[], name: string): string | undefined {
  const k = argv.indexOf(name);
  return k >= 0 ? argv[k + 1] : undefined;
}

function parseNumber(argv: readonly string[], name: string, min: number, max: number, fallback: number, integer: boolean): number {
  const v = option(argv, name);
  if (v === undefined) return fallback;
  const x = Number(v);
  if (!Number.isFinite(x) || x < min || x > max || (integer && !Number.isInteger(x))) throw new RangeError(`chaos: ${name} expects a number from ${min} to ${max}${integer ? ' (whole)' : ''}`);
  return x;
}

export async function benchChaos(argv: readonly string[] = []): Promise<Record<string, number>> {
  const minutes = parseNumber(argv, '--minutes', 0.1, 600, 10, false);
  const seed = parseNumber(argv, '--seed', 0, 2 ** 32 - 1, randomInt(2 ** 31), true);
  const concurrent = parseNumber(argv, '--concurrent', 1, 5, 1, true);
  const only = option(argv, '--faults');
  const known = ['kill', 'pause', 'partition', 'loss'] as const;
  const kinds = only === undefined ? undefined : only === 'none' ? [] : only.split(',').map((k) => {
    const f = known.find((x) => x === k);
    if (f === undefined) throw new RangeError(`chaos: --faults expects none or a list of ${known.join(', ')}`);
    return f;
  });
  const why = probeHosts();
  if (why !== null) throw new Error(`chaos: cannot make network namespaces here: ${why}`);
  process.stderr.write(`chaos: seed ${seed} (replay with --seed ${seed})\n`);
  const r = await runChaos({ durationMs: Math.round(minutes * 60_000), seed, maxConcurrentFaults: concurrent, ...(kinds === undefined ? {} : { kinds }), log: (l) => process.stderr.write(`${l}\n`) });
  if (!argv.includes('--json')) process.stdout.write(`${chaosReport(r)}\n`);
  const ok = r.lost === 0 && r.duplicated === 0 && r.unknown === 0 && r.notBack.length === 0;
  if (!ok) process.exitCode = 1;
  return {
    seed: r.seed,
    minutes,
    kills: r.faultCounts.kill,
    pauses: r.faultCounts.pause,
    partitions: r.faultCounts.partition,
    lossSpells: r.faultCounts.loss,
    packetsDroppedByLoss: r.packetsDroppedByLoss,
    sent: r.sent,
    refused: r.refused,
    acknowledged: r.acknowledged,
    failed: r.failed,
    pending: r.pending,
    received: r.received,
    receivedUnacknowledged: r.receivedUnacknowledged,
    lost: r.lost,
    duplicated: r.duplicated,
    unknown: r.unknown,
    unexpectedExits: r.unexpectedExits.length,
    notBack: r.notBack.length,
    ackP50Ms: r.ackP50Ms,
    ackMaxMs: r.ackMaxMs,
    shownP50Ms: r.shownP50Ms,
    shownMaxMs: r.shownMaxMs,
  };
}
