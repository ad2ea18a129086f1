// The simulator end to end: the real mix, gateway and client code in virtual time. A single
// Poisson mix against theory; the Loopix trends (entropy with lambda and delay, epsilon with
// delay and corruption); the real client's reliability through a failed mix; reproducibility;
// labelled packets through the PacketFormat interface; scenario validation; the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBackchannelError } from '../../src/errors.js';
import { LabelledPackets, packetNumber } from '../../src/sim/labelled.js';
import type { LabelledCreation } from '../../src/sim/labelled.js';
import { parseScenario } from '../../src/sim/scenario.js';
import { runScenario } from '../../src/sim/simulation.js';
import type { RunResult } from '../../src/sim/simulation.js';
import { runAll, writeResults } from '../../src/sim/runner.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { cli } from '../helpers/cli.js';

const singleMix = (lambda: number, mu: number, duration: number) =>
  parseScenario({ kind: 'single-mix', seed: `t-${lambda}-${mu}`, timeUnitMs: 10_000, lambda, mu, warmup: 20 / mu, duration });

test('a single Poisson mix: mean sender entropy within 5% of log2(e·lambda/mu) for lambda/mu from 10 to 500', async () => {
  for (const ratio of [10, 30, 100, 300, 500]) {
    const r = await runScenario(singleMix(ratio, 1, Math.max(20, 6000 / ratio)), 0);
    const e = r.entropy!;
    assert.ok(e.count >= 5000, `outputs measured: ${e.count}`);
    const rel = Math.abs(e.mean - e.theory) / e.theory;
    assert.ok(rel < 0.05, `lambda/mu ${ratio}: measured ${e.mean.toFixed(3)} bits, theory ${e.theory.toFixed(3)}`);
    // Every packet went through the real mix and ended at the gateway as drop cover.
    assert.deepEqual(Object.keys(r.drops), ['drop_cover']);
  }
});

test('Loopix fig. 4 trend: entropy rises with lambda and with the mean delay', async () => {
  const e = async (lambda: number, mu: number): Promise<number> => (await runScenario(singleMix(lambda, mu, 40 / mu), 0)).entropy!.mean;
  const low = await e(100, 2);
  const high = await e(400, 2);
  const slow = await e(400, 0.5);
  assert.ok(high > low + 1.5, `lambda x4: ${low} -> ${high}`);
  assert.ok(slow > high + 1.5, `mean delay x4: ${high} -> ${slow}`);
});

const challenge = (over: Record<string, unknown>) =>
  parseScenario({
    seed: 'eps',
    warmup: 40,
    duration: 60,
    topology: { layers: 3, mixesPerLayer: 3, gateways: 3 },
    clients: { count: 60, model: 'population', sendRate: 2, loopRate: 0, fetchRate: 0, messageRate: 0.5 },
    challenge: true,
    entropySamples: 50,
    ...over,
  });

async function meanEpsilon(over: Record<string, unknown>, reps: number): Promise<{ eps: number; linked: number; runs: RunResult[] }> {
  const runs: RunResult[] = [];
  for (let r = 0; r < reps; r++) runs.push(await runScenario(challenge(over), r));
  const finite = runs.map((r) => r.epsilon!.mean).filter((x) => Number.isFinite(x));
  return { eps: finite.reduce((a, b) => a + b, 0) / Math.max(1, finite.length), linked: runs.reduce((a, r) => a + r.epsilon!.linked, 0), runs };
}

test('Loopix fig. 5 and 7 trends: epsilon falls as lambda/mu grows, is small at lambda/mu >= 2, rises with corrupt mixes', async () => {
  const fast = await meanEpsilon({ mu: 2 }, 2); // lambda/mu = 1
  const slow = await meanEpsilon({ mu: 0.4 }, 2); // lambda/mu = 5
  const two = await meanEpsilon({ mu: 1 }, 2); // lambda/mu = 2
  assert.ok(slow.eps < fast.eps, `epsilon at lambda/mu 5 (${slow.eps}) below lambda/mu 1 (${fast.eps})`);
  assert.ok(two.eps < 0.5, `epsilon at lambda/mu 2 is small: ${two.eps}`);
  for (const r of two.runs) assert.ok(r.epsilon!.messages > 0, 'challenge messages were in the final pools');
  const corrupt = await meanEpsilon({ mu: 1, corruptShare: 0.56 }, 2);
  assert.ok(corrupt.eps > two.eps || corrupt.linked > two.linked, `corruption: epsilon ${two.eps} -> ${corrupt.eps}, linked ${two.linked} -> ${corrupt.linked}`);
  // The same runs measured sender entropy of real packets through three honest layers.
  for (const r of two.runs) assert.ok(r.senderEntropy!.mean > 3, `sender entropy ${r.senderEntropy!.mean} bits`);
  // Among clients only (the weight on the gateways' own packets left out, the rest normalised).
  for (const r of two.runs) {
    assert.ok(r.clientSenderEntropy!.count > 0);
    assert.ok(r.clientSenderEntropy!.mean > 3, `client sender entropy ${r.clientSenderEntropy!.mean} bits`);
  }
});

test('real clients through a failed mix: every message delivered, the dead link counted, latency and cover measured', async () => {
  const s = parseScenario({
    seed: 'fail',
    warmup: 5,
    // Messages are written for 35 s; the drain outlasts a fragment's every attempt (MAX_ATTEMPTS,
    // about 4 to 8 minutes of retransmission), so each one ends delivered or reported failed.
    duration: 535,
    drain: 500,
    mu: 10,
    topology: { layers: 2, mixesPerLayer: 2, gateways: 2 },
    clients: { count: 6, model: 'engine', sendRate: 5, loopRate: 1, fetchRate: 5, messageRate: 0.1, messageBytes: 300 },
    failures: [{ node: 'mix2.0', at: 15 }],
    entropySamples: 20,
  });
  const r = await runScenario(s, 0);
  assert.ok(r.messages.written >= 10, `messages written: ${r.messages.written}`);
  // Half of layer 2 is dead: a packet through it (or an acknowledgement) is lost, and the client
  // sends it again until it arrives or its attempts run out; nothing is lost without a report. A
  // packet and its acknowledgement both pass, each attempt, with probability 1/4 or more: a
  // message fails (12 attempts lost) with probability 0.75^12 < 4%.
  assert.equal(r.messages.delivered + r.messages.failed, r.messages.written);
  assert.ok(r.messages.failed <= Math.ceil(r.messages.written / 10), `failed ${r.messages.failed} of ${r.messages.written}`);
  assert.ok((r.drops['link_down'] ?? 0) > 0, 'packets towards the dead mix were dropped as link_down');
  assert.ok(r.coverShare > 0.5 && r.coverShare < 1, `cover share ${r.coverShare}`);
  assert.ok(r.overhead > 2, `overhead ${r.overhead}`);
  assert.ok(r.latency.count > 0 && r.latency.p50 > 0 && r.latency.p99 >= r.latency.p50);
  assert.ok(r.messageLatency.count > 0 && r.messageLatency.p50 >= r.latency.p50);
  assert.ok(r.packets.fetch > 0);
});

test('a run is reproducible: the same seed gives the same packets and events', async () => {
  const s = challenge({ mu: 1, warmup: 10, duration: 20, clients: { count: 20, model: 'population', sendRate: 2, loopRate: 0.5, fetchRate: 1, messageRate: 0.5 } });
  const a = await runScenario(s, 3);
  const b = await runScenario(s, 3);
  const c = await runScenario(s, 4);
  assert.equal(a.events, b.events);
  assert.deepEqual(a.packets, b.packets);
  assert.deepEqual(a.epsilon, b.epsilon);
  assert.notEqual(a.events, c.events);
});

test('labelled packets: route in clear, numbered, opened hop by hop through the PacketFormat interface', () => {
  const made: LabelledCreation[] = [];
  const packets = new LabelledPackets((c) => made.push(c));
  const g = geometryFromUserPayload(5, 100, true);
  const f = packets.factory(7)(g);
  const id = (b: number): Uint8Array => new Uint8Array(32).fill(b);
  const recipient = id(9);
  const path = [
    { id: id(1), publicKey: id(0), commands: [] },
    { id: id(2), publicKey: id(0), commands: [{ type: 'nodeDelay' as const, delayMs: 1234 }] },
    { id: id(3), publicKey: id(0), commands: [{ type: 'recipient' as const, id: recipient }] },
  ];
  const payload = new Uint8Array(g.forwardPayloadLength).fill(5);
  const p = f.createPacket(path, payload);
  assert.equal(p.length, g.packetLength);
  assert.equal(packetNumber(p), 1);
  assert.deepEqual(made, [{ packet: 1, owner: 7, recipient, viaSurb: false }]);
  const key = new Uint8Array(32);
  const h1 = f.unwrap(key, p);
  assert.equal(h1.kind, 'forward');
  if (h1.kind !== 'forward') return;
  assert.deepEqual(h1.nextHop, id(2));
  assert.equal(h1.delayMs, 0);
  const h2 = f.unwrap(key, h1.packet);
  assert.ok(h2.kind === 'forward' && h2.delayMs === 1234 && h2.nextHop.every((b) => b === 3));
  assert.notDeepEqual(h1.replayTag, h2.replayTag);
  const h3 = f.unwrap(key, h2.kind === 'forward' ? h2.packet : p);
  assert.ok(h3.kind === 'final');
  if (h3.kind !== 'final') return;
  assert.deepEqual(h3.payload, payload);
  assert.equal(h3.surbId, null);
  // A SURB and its reply.
  const surbId = new Uint8Array(16).fill(4);
  const surb = f.createSurb([path[1]!, { ...path[2]!, commands: [{ type: 'recipient', id: recipient }, { type: 'surbReply', id: surbId }] }]);
  const reply = f.createPacketFromSurb(surb.surb, payload);
  assert.deepEqual(reply.firstHop, id(2));
  assert.equal(made.at(-1)?.viaSurb, true);
  const r1 = f.unwrap(key, reply.packet);
  const r2 = r1.kind === 'forward' ? f.unwrap(key, r1.packet) : r1;
  assert.ok(r2.kind === 'final' && r2.surbId !== null);
  if (r2.kind !== 'final') return;
  assert.deepEqual(f.decryptSurbPayload(r2.payload, surb.surbKeys), payload);
  // Anything else is a typed error, never a crash.
  for (const bad of [new Uint8Array(g.packetLength), p.subarray(1), new Uint8Array(0)]) {
    assert.throws(() => f.unwrap(key, bad), (e: unknown) => isBackchannelError(e));
  }
});

test('scenario validation: typed errors that name the field, and the closest known one', () => {
  const bad = (json: unknown, re: RegExp): void => {
    assert.throws(
      () => parseScenario(json),
      (e: unknown) => isBackchannelError(e, 'ERR_SIM_SCENARIO') && re.test(e.message),
    );
  };
  bad({ clients: { cont: 5 } }, /scenario\.clients has an unknown field "cont" \(did you mean "count"\?\)/);
  bad({ mu: 0 }, /scenario\.mu must be a number in \(0/);
  bad({ kind: 'ring' }, /scenario\.kind must be one of/);
  bad({ sweep: { parameter: 'nope', values: [1] } }, /scenario\.sweep\.parameter/);
  bad({ series: { parameter: 'mix.mu', values: [1] } }, /needs a scenario\.sweep/);
  bad({ failures: [{ node: '../x', at: 1 }] }, /failures\[0\]\.node/);
  bad([], /scenario must be an object/);
  assert.equal(parseScenario({}).clients.model, 'engine');
});

test('a sweep writes JSON, CSV and an SVG plot', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bc-sim-'));
  try {
    const s = parseScenario({
      name: 'tiny',
      kind: 'single-mix',
      timeUnitMs: 10_000,
      warmup: 10,
      duration: 20,
      repetitions: 2,
      sweep: { parameter: 'lambda', values: [10, 40] },
      plot: { y: 'entropy.mean', theory: true },
    });
    const r = await runAll(s);
    assert.equal(r.points.length, 2);
    assert.ok(r.points[1]!.y.mean > r.points[0]!.y.mean);
    const files = writeResults(r, dir);
    assert.deepEqual(files.map((f) => f.slice(dir.length + 1)).sort(), ['plot.svg', 'results.csv', 'results.json']);
    const csv = readFileSync(join(dir, 'results.csv'), 'utf8').split('\r\n');
    assert.equal(csv.length, 1 + 4 + 1); // header, 2 points x 2 repetitions, final CRLF
    assert.match(csv[0]!, /^lambda,series,repetition,/);
    assert.match(readFileSync(join(dir, 'plot.svg'), 'utf8'), /^<svg[^>]*xmlns/);
    assert.equal(JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')).points.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: sim single-mix --json prints entropy_bits; a bad scenario is a one-line error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bc-sim-cli-'));
  try {
    const ok = await cli(['sim', 'single-mix', '--lambda', '50', '--mu', '1', '--outputs', '4000', '--json', '--quiet', '--out', dir]);
    assert.equal(ok.code, 0, ok.stderr);
    const j = JSON.parse(ok.stdout) as { entropy_bits: number; theory_bits: number };
    assert.ok(Math.abs(j.entropy_bits - Math.log2(Math.E * 50)) / j.theory_bits < 0.05, ok.stdout);

    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ topology: { layer: 3 } }));
    const bad = await cli(['sim', file]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^backchannel: scenario: scenario\.topology has an unknown field "layer" \(did you mean "layers"\?\)\n$/);
    const missing = await cli(['sim', join(dir, 'nothing.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no scenario file/);
    const usage = await cli(['sim', 'single-mix', '--lambda', '5']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--mu is required/);
    const help = await cli(['sim', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /loopix-fig5/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
