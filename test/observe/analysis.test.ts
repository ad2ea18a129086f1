// The observer's attacks on synthetic traces whose answer is known: a network that leaks (a
// gateway that sends acknowledgements on top of its clients' packets, fetch answers that are
// slower while mail waits) must give p < 0.05, and one that does not leak must not. Seeded, so
// the outcome is fixed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ackCounting,
  answerTimes,
  bystanderTiming,
  classifyBins,
  clientLinkTests,
  controlTiming,
  fetchTiming,
  measureDataFrameSize,
  otherFrames,
  pairing,
} from '../../src/observe/analysis.js';
import type { Activity, ObservedLink, Role, Trace } from '../../src/observe/analysis.js';
import { seededRng } from '../../src/observe/stats.js';
import type { Rng } from '../../src/observe/stats.js';

const DATA = 3130;
const KEEPALIVE = 19;
const DURATION_MS = 240_000;

function poissonTimes(rng: Rng, ratePerS: number, fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  let t = fromMs;
  for (;;) {
    t += (-Math.log(1 - rng()) / ratePerS) * 1000;
    if (t >= toMs) return out;
    out.push(t);
  }
}

function inAny(t: number, spans: readonly Activity[]): boolean {
  return spans.some((a) => t >= a.startMs && t < a.endMs);
}

interface Leaks {
  /** Acknowledgements per second a gateway adds toward layer 1 while its clients are active. */
  readonly acksPerS: number;
  /** Extra mean answer time (ms) while the client is active. */
  readonly slowerAnswerMs: number;
  /** Share of fetches that do not happen while the client is active (a fetch clock falling behind). */
  readonly fetchesLostWhileActive?: number;
  /** Extra answer time (ms) for every client while anyone is active (a machine that all share). */
  readonly everyoneSlowerMs?: number;
}

/**
 * Two gateways, two clients on each, pairs across them (a1 ↔ b1, a2 ↔ b2); clients send on a
 * Poisson clock and fetch at a constant rate; the gateway answers each fetch after a random time.
 */
function synthetic(seed: number, leaks: Leaks): Trace {
  const rng = seededRng(seed);
  const roles = new Map<string, Role>([
    ['gateway-1', { role: 'gateway' }],
    ['gateway-2', { role: 'gateway' }],
    ['mix-1-1', { role: 'mix', layer: 1 }],
    ['mix-3-1', { role: 'mix', layer: 3 }],
    ['a1', { role: 'client', gateway: 'gateway-1' }],
    ['a2', { role: 'client', gateway: 'gateway-1' }],
    ['b1', { role: 'client', gateway: 'gateway-2' }],
    ['b2', { role: 'client', gateway: 'gateway-2' }],
  ]);
  const activities: Activity[] = [
    { startMs: 30_000, endMs: 60_000, clients: ['a1', 'b1'] },
    { startMs: 100_000, endMs: 130_000, clients: ['a2', 'b2'] },
    { startMs: 170_000, endMs: 200_000, clients: ['a1', 'b1'] },
  ];
  const links: ObservedLink[] = [];
  const toL1 = new Map<string, number[]>([
    ['gateway-1', []],
    ['gateway-2', []],
  ]);
  for (const [client, role] of roles) {
    if (role.role !== 'client') continue;
    const mine = activities.filter((a) => a.clients.includes(client));
    const sends = poissonTimes(rng, 25, 0, DURATION_MS);
    const fetches: number[] = [];
    // A constant-rate clock with its own phase, and the jitter of a real timer.
    const phase = rng() * (1000 / 30);
    for (let k = 0; phase + k * (1000 / 30) < DURATION_MS; k++) {
      const t = phase + k * (1000 / 30) + 0.5 * rng();
      if (inAny(t, mine) && rng() < (leaks.fetchesLostWhileActive ?? 0)) continue;
      fetches.push(t);
    }
    const up = [...sends, ...fetches].sort((a, b) => a - b);
    const down = fetches.map(
      (t) => t + 1 - 2 * Math.log(1 - rng()) + (inAny(t, mine) ? leaks.slowerAnswerMs * (1 + rng()) : 0) + (inAny(t, activities) ? (leaks.everyoneSlowerMs ?? 0) : 0),
    );
    const ka = poissonTimes(rng, 0.05, 0, DURATION_MS);
    const fwdSizes = [...up.map(() => DATA), ...ka.map(() => KEEPALIVE)];
    const fwdTimes = [...up, ...ka];
    const order = fwdTimes.map((_, k) => k).sort((p, q) => fwdTimes[p]! - fwdTimes[q]!);
    links.push({
      initiator: client,
      responder: role.gateway,
      label: `${role.gateway} link #${links.length}`,
      forward: { times: order.map((k) => fwdTimes[k]!), sizes: order.map((k) => fwdSizes[k]!) },
      backward: { times: down, sizes: down.map(() => DATA) },
    });
    toL1.get(role.gateway)!.push(...sends.map((t) => t + 0.3));
  }
  for (const [gateway, times] of toL1) {
    const mine = activities.filter((a) => a.clients.some((c) => (roles.get(c) as { gateway?: string }).gateway === gateway));
    // Acknowledgements of what the gateway stored, and packets from layer 3 (more while active).
    for (const t of poissonTimes(rng, leaks.acksPerS, 0, DURATION_MS)) if (inAny(t, mine)) times.push(t);
    times.sort((a, b) => a - b);
    const fromL3 = poissonTimes(rng, 40, 0, DURATION_MS);
    links.push({ initiator: gateway, responder: 'mix-1-1', label: `mix-1-1 link #${links.length}`, forward: { times, sizes: times.map(() => DATA) }, backward: { times: [], sizes: [] } });
    links.push({ initiator: 'mix-3-1', responder: gateway, label: `${gateway} link #${links.length}`, forward: { times: fromL3, sizes: fromL3.map(() => DATA) }, backward: { times: [], sizes: [] } });
  }
  const partners = new Map([
    ['a1', 'b1'],
    ['b1', 'a1'],
    ['a2', 'b2'],
    ['b2', 'a2'],
  ]);
  return { links, roles, activities, fromMs: 0, toMs: DURATION_MS, partners };
}

function roleOfTest(trace: Trace, name: string | null): string | undefined {
  return name === null ? undefined : trace.roles.get(name)?.role;
}

const LEAKY: Leaks = { acksPerS: 15, slowerAnswerMs: 6 };
const TIGHT: Leaks = { acksPerS: 0, slowerAnswerMs: 0 };

describe('observer analysis on synthetic traces', () => {
  test('the data-frame size is the commonest size; bins next to an activity are left out', () => {
    const trace = synthetic(1, TIGHT);
    assert.equal(measureDataFrameSize(trace.links), DATA);
    const kinds = classifyBins([{ startMs: 10_000, endMs: 12_000, clients: [] }], 0, 20, 3_000);
    assert.deepEqual(kinds.slice(6, 16), ['idle', 'edge', 'edge', 'edge', 'active', 'active', 'edge', 'edge', 'edge', 'idle']);
  });

  test('answer times are measured from the last client frame before each answer', () => {
    const link: ObservedLink = {
      initiator: 'c',
      responder: 'g',
      label: 'g link #0',
      forward: { times: [10, 20, 25, 40], sizes: [DATA, DATA, KEEPALIVE, DATA] },
      backward: { times: [5, 23, 26, 41], sizes: [DATA, DATA, DATA, KEEPALIVE] },
    };
    assert.deepEqual(answerTimes(link, DATA), [
      { t: 23, latencyMs: 3 },
      { t: 26, latencyMs: 6 },
    ]);
  });

  test('ack counting: a gateway that adds acknowledgements while its clients are active is caught, one that does not is not', () => {
    for (const r of ackCounting(synthetic(2, LEAKY))) {
      assert.ok(r.surplus.mannWhitney!.p < 0.05, `${r.gateway}: p = ${r.surplus.mannWhitney!.p}`);
      assert.ok(r.surplus.activeMean > r.surplus.idleMean);
    }
    for (const r of ackCounting(synthetic(2, TIGHT))) {
      assert.ok(r.surplus.mannWhitney!.p >= 0.05, `${r.gateway}: p = ${r.surplus.mannWhitney!.p}`);
      assert.ok(r.fromLayer3.mannWhitney!.p >= 0.05, `${r.gateway} from layer 3: p = ${r.fromLayer3.mannWhitney!.p}`);
    }
  });

  test('ack counting: a fetch clock that falls behind while active is not taken for acknowledgements', () => {
    for (const r of ackCounting(synthetic(8, { ...TIGHT, fetchesLostWhileActive: 0.2 }))) {
      assert.ok(r.surplus.mannWhitney!.p >= 0.05, `${r.gateway}: p = ${r.surplus.mannWhitney!.p}`);
    }
  });

  test('fetch timing: slower answers while mail waits are caught, and the slow share rises; equal answers are not', () => {
    for (const r of fetchTiming(synthetic(3, LEAKY))) {
      assert.ok(r.latency.ks!.p < 0.05, `${r.client}: p = ${r.latency.ks!.p}`);
      assert.ok(r.slowShareActive > r.slowShareIdle);
    }
    for (const r of fetchTiming(synthetic(3, TIGHT))) assert.ok(r.latency.ks!.p >= 0.05, `${r.client}: p = ${r.latency.ks!.p}`);
  });

  test("fetch timing relative to the other clients: a client's own slower answers are caught, down to a 1 ms shift", () => {
    for (const slower of [6, 1]) {
      for (const r of fetchTiming(synthetic(3, { ...TIGHT, slowerAnswerMs: slower }))) {
        assert.ok(r.relative.mannWhitney!.p < 0.05, `${r.client}, ${slower} ms: p = ${r.relative.mannWhitney!.p}`);
        assert.ok(r.relative.activeMean > r.relative.idleMean);
      }
    }
    for (const r of fetchTiming(synthetic(3, TIGHT))) assert.ok(r.relative.mannWhitney!.p >= 0.05, `${r.client}: p = ${r.relative.mannWhitney!.p}`);
  });

  test('a slow-down that every client shares is not taken for any one client, and the bystander test shows it', () => {
    const shared = synthetic(10, { ...TIGHT, everyoneSlowerMs: 2 });
    for (const r of fetchTiming(shared)) {
      assert.ok(r.latency.ks!.p < 0.05, `${r.client} raw: p = ${r.latency.ks!.p}`);
      assert.ok(r.relative.mannWhitney!.p >= 0.05, `${r.client} relative: p = ${r.relative.mannWhitney!.p}`);
    }
    const b = bystanderTiming(shared);
    assert.ok(b.mannWhitney!.p < 0.05, `bystander: p = ${b.mannWhitney!.p}`);
    assert.ok(b.activeMean > b.idleMean);
    assert.ok(bystanderTiming(synthetic(10, TIGHT)).mannWhitney!.p >= 0.05);
  });

  test('a control stretch (no mail, a busier machine) is compared with quiet seconds, and kept out of the bystander test', () => {
    const plain = synthetic(10, TIGHT);
    assert.equal(controlTiming(plain), null, 'no control stretch, no comparison');
    const control = { startMs: 210_000, endMs: 235_000 };
    // Every answer in the control stretch comes 2 ms later: the machine, with no mail anywhere.
    const slowed: Trace = {
      ...plain,
      controls: [control],
      links: plain.links.map((l) =>
        roleOfTest(plain, l.initiator) === 'client' ? { ...l, backward: { ...l.backward, times: l.backward.times.map((t) => (t >= control.startMs && t < control.endMs ? t + 2 : t)) } } : l,
      ),
    };
    const c = controlTiming(slowed)!;
    assert.ok(c.mannWhitney!.p < 0.05, `control: p = ${c.mannWhitney!.p}`);
    assert.ok(c.activeMean > c.idleMean);
    assert.equal(c.activeN, 25, 'every second of the control, and none of its guard seconds');
    assert.ok(controlTiming({ ...plain, controls: [control] })!.mannWhitney!.p >= 0.05, 'without the slow-down, nothing');
    // The slow control seconds are not "quiet" seconds for the bystander test.
    assert.ok(bystanderTiming(slowed).mannWhitney!.p >= 0.05, `bystander: p = ${bystanderTiming(slowed).mannWhitney!.p}`);
    assert.equal(bystanderTiming(slowed).idleN, bystanderTiming(plain).idleN - (25 + 2 * 5));
  });

  test("a client's own link: Poisson sending with cover shows nothing idle against active", () => {
    for (const r of clientLinkTests(synthetic(4, LEAKY))) {
      assert.ok(r.sentPerS.mannWhitney!.p >= 0.05, `${r.client} sent: p = ${r.sentPerS.mannWhitney!.p}`);
      assert.ok(r.interDeparture.ks!.p >= 0.05, `${r.client} gaps: p = ${r.interDeparture.ks!.p}`);
    }
  });

  test('a sending rate that rises with activity is caught on the client link', () => {
    const trace = synthetic(5, TIGHT);
    const a1 = trace.links.find((l) => l.initiator === 'a1')!;
    const extra = poissonTimes(seededRng(9), 20, 0, DURATION_MS).filter((t) => inAny(t, trace.activities.filter((a) => a.clients.includes('a1'))));
    const times = [...a1.forward.times, ...extra].sort((p, q) => p - q);
    const leaky: Trace = { ...trace, links: trace.links.map((l) => (l === a1 ? { ...l, forward: { times, sizes: times.map(() => DATA) } } : l)) };
    const r = clientLinkTests(leaky).find((x) => x.client === 'a1')!;
    assert.ok(r.sentPerS.mannWhitney!.p < 0.05, `p = ${r.sentPerS.mannWhitney!.p}`);
    assert.ok(r.interDeparture.ks!.p < 0.05, `p = ${r.interDeparture.ks!.p}`);
    // Relative to the other clients the same seconds, too.
    assert.ok(r.relativeSentPerS.mannWhitney!.p < 0.05, `relative rate: p = ${r.relativeSentPerS.mannWhitney!.p}`);
    assert.ok(r.relativeGap.mannWhitney!.p < 0.05, `relative gaps: p = ${r.relativeGap.mannWhitney!.p}`);
    for (const o of clientLinkTests(trace)) assert.ok(o.relativeGap.mannWhitney!.p >= 0.05, `${o.client} without the leak: p = ${o.relativeGap.mannWhitney!.p}`);
  });

  test("a machine that stalls every client's frames in one client's active seconds: the raw gaps flag it, the relative test does not", () => {
    const trace = synthetic(5, TIGHT);
    const active = trace.activities.filter((a) => a.clients.includes('a1'));
    // Every client loses a third of its frames while a1 is active: a loaded machine, not a1.
    const rng = seededRng(11);
    const stalled: Trace = {
      ...trace,
      links: trace.links.map((l) => {
        if (l.initiator === null || !['a1', 'a2', 'b1', 'b2'].includes(l.initiator)) return l;
        const keep = l.forward.times.map((t) => !inAny(t, active) || rng() >= 1 / 3);
        return { ...l, forward: { times: l.forward.times.filter((_, k) => keep[k]), sizes: l.forward.sizes.filter((_, k) => keep[k]) } };
      }),
    };
    const r = clientLinkTests(stalled).find((x) => x.client === 'a1')!;
    assert.ok(r.interDeparture.ks!.p < 0.05, `raw gaps: p = ${r.interDeparture.ks!.p}`);
    assert.ok(r.relativeGap.mannWhitney!.p >= 0.05, `relative gaps: p = ${r.relativeGap.mannWhitney!.p}`);
    assert.ok(r.relativeSentPerS.mannWhitney!.p >= 0.05, `relative rate: p = ${r.relativeSentPerS.mannWhitney!.p}`);
  });

  test('pairing: slow answers that rise together rank the true partner first; without them, no better than chance', () => {
    const leaky = pairing(synthetic(6, LEAKY));
    assert.equal(leaky.scored, 4);
    assert.equal(leaky.correct, 4);
    assert.ok(leaky.p < 0.05, `p = ${leaky.p}`);
    assert.equal(leaky.pairRankSum, 3);
    assert.ok(Math.abs(leaky.pairRankP - 1 / 15) < 1e-12, `rank p = ${leaky.pairRankP}`);
    const tight = pairing(synthetic(6, TIGHT));
    assert.ok(tight.p >= 0.05, `p = ${tight.p} with ${tight.correct} right`);
    assert.equal(tight.pairs.length, 6);
    assert.ok(tight.pairRankP > 1 / 15, `rank p = ${tight.pairRankP}`);
    for (const r of tight.results) assert.equal(r.ranking.length, 3);
  });

  test('frames of other sizes are counted per link and period', () => {
    const others = otherFrames(synthetic(7, TIGHT));
    const clientLinks = others.filter((o) => o.initiator?.length === 2);
    assert.equal(clientLinks.length, 4);
    const total = clientLinks.reduce((s, o) => s + o.total, 0);
    assert.ok(total > 0);
    for (const o of clientLinks) for (const key of Object.keys({ ...o.idle, ...o.active })) assert.equal(key, `fwd ${KEEPALIVE}`);
  });
});
