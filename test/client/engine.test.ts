// The client engine in virtual time, over a stand-in gateway link that records what leaves:
// the traffic discipline (Kolmogorov-Smirnov test of inter-departure times against the
// configured exponential, idle and under a burst), retransmission until failure with
// randomised timeouts, and a mailbox entry handed out twice delivered once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeBackend } from '../../src/crypto/node.js';
import { Client, MAX_ATTEMPTS, MIN_RTO_MS } from '../../src/client/client.js';
import type { GatewayLink, LinkClockControl } from '../../src/client/client.js';
import { COVER_RESERVE, LinkClocks } from '../../src/client/link-clocks.js';
import type { TickKind, TickSource } from '../../src/client/link-clocks.js';
import { uniform01 } from '../../src/client/poisson.js';
import type { ClientEvent } from '../../src/client/api.js';
import { BODY_LENGTH } from '../../src/messaging/content.js';
import { decodeAddress, encodeAddress } from '../../src/client/address.js';
import { seal } from '../../src/client/envelope.js';
import { encodeMessage, fragmentFrames } from '../../src/client/frames.js';
import { SqliteClientStore } from '../../src/client/sqlite-store.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import { jsonLogger, silentLogger } from '../../src/ops/log.js';
import { epochAt, epochStart } from '../../src/pki/document.js';
import type { NetworkParameters, SignedDocument } from '../../src/pki/types.js';
import { WireCodec } from '../../src/wire/commands.js';
import { equalBytes, toHex } from '../../src/util/bytes.js';
import { senderPace } from '../../src/pki/intake.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { seededBackend } from '../helpers/seeded.js';
import { ManualClock, bytes32, params as baseParams, testNetwork } from '../pki/fixtures.js';

/** A gateway link that never answers and records the time of every packet put on it. */
class RecordingLink implements GatewayLink {
  readonly departures: number[] = [];
  fetches = 0;
  #closed: ((v: null) => void) | null = null;
  readonly clock: ManualClock;
  readonly codec: WireCodec;
  constructor(clock: ManualClock, codec: WireCodec) {
    this.clock = clock;
    this.codec = codec;
  }
  trySend(message: Uint8Array): boolean {
    const cmd = this.codec.decode(message);
    if (cmd.kind === 'send_packet') this.departures.push(this.clock.now());
    else if (cmd.kind === 'retrieve_message') this.fetches++;
    return true;
  }
  send(message: Uint8Array): Promise<void> {
    this.trySend(message);
    return Promise.resolve();
  }
  recv(): Promise<Uint8Array | null> {
    return new Promise((r) => (this.#closed = r));
  }
  close(): Promise<void> {
    this.#closed?.(null);
    return Promise.resolve();
  }
}

/**
 * A recording link that runs the clocks itself (as node-link-worker.ts does, here on the same
 * virtual clock): its LinkClocks sends what the engine prepared. While `stalled`, the tick
 * reports wait, as they would for an engine thread that is blocked.
 */
class ClockedLink extends RecordingLink {
  readonly clocks: LinkClockControl;
  readonly sources: Record<TickSource, number> = { prepared: 0, reserve: 0, missed: 0 };
  reserveRenewals = 0;
  stalled = false;
  readonly #held: Array<() => void> = [];
  constructor(clock: ManualClock, codec: WireCodec) {
    super(clock, codec);
    const draws = seededBackend(nodeBackend, bytes32('clocked link'));
    const inner: LinkClocks = new LinkClocks({
      clock,
      u01: uniform01(draws.randomBytes),
      send: (frame) => this.trySend(frame),
      fetch: () => this.trySend(codec.encode({ kind: 'retrieve_message', sequence: 0 })),
      onTick: (kind: TickKind, source: TickSource) => {
        this.sources[source]++;
        const report = (): void => this.clocks.onTick?.(kind, source, clock.now(), inner.restarts);
        if (this.stalled) this.#held.push(report);
        else report();
      },
    });
    this.clocks = {
      setRates: (r) => inner.setRates(r),
      prepare: (kind, frame) => inner.prepare(kind, frame),
      reserve: (frames, replace) => {
        if (replace) this.reserveRenewals++;
        inner.reserve(frames, replace);
      },
      replaceFetch: (frame) => inner.replaceFetch(frame),
      onTick: null,
    };
    this.stop = () => inner.stop();
  }
  stop: () => void;
  resume(): void {
    this.stalled = false;
    for (const r of this.#held.splice(0)) r();
  }
  override close(): Promise<void> {
    this.stop();
    return super.close();
  }
}

/** A recording link that also hands the client what the test pushes, as a gateway's answers. */
class AnsweringLink extends RecordingLink {
  readonly #inbox: Uint8Array[] = [];
  #waiting: ((m: Uint8Array | null) => void) | null = null;
  push(message: Uint8Array): void {
    const w = this.#waiting;
    this.#waiting = null;
    if (w !== null) w(message);
    else this.#inbox.push(message);
  }
  override recv(): Promise<Uint8Array | null> {
    const m = this.#inbox.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((r) => (this.#waiting = r));
  }
  override close(): Promise<void> {
    this.#waiting?.(null);
    return Promise.resolve();
  }
}

interface Harness {
  client: Client;
  link: RecordingLink;
  clock: ManualClock;
  events: ClientEvent[];
  eventTimes: { type: string; at: number }[];
  dbPath: string;
  peer: string;
  done(): Promise<void>;
}

async function harness(seed: string, overrides: Partial<NetworkParameters>, makeLink?: (clock: ManualClock, codec: WireCodec) => RecordingLink): Promise<Harness> {
  const p: NetworkParameters = { ...baseParams, ...overrides };
  const t0 = epochStart(epochAt(1_800_000_000_000, p.epochPeriodMs), p.epochPeriodMs) + 1000;
  const epoch = epochAt(t0, p.epochPeriodMs);
  const nodes = testNetwork(seed).map((n) => n.descriptor([epoch - 1, epoch, epoch + 1]).desc);
  const doc: SignedDocument = { document: { epoch, params: p, nodes }, bytes: new Uint8Array(0), signatures: [] };
  const clock = new ManualClock(t0);
  const crypto = seededBackend(nodeBackend, bytes32(`engine ${seed}`));
  const dir = mkdtempSync(join(tmpdir(), 'bc-engine-'));
  const store = SqliteClientStore.open(join(dir, 'client.db'));
  const g = geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb);
  const codec = new WireCodec({ packetLength: g.packetLength });
  const link = makeLink ? makeLink(clock, codec) : new RecordingLink(clock, codec);
  const gateway = nodes.find((n) => n.role === 'gateway')!;
  const client = new Client(
    { linkPrivateKey: bytes32(`client ${seed}`), gateway: gateway.identityKey },
    { clock, crypto, aead: nodeNoiseCrypto.aead('ChaChaPoly'), store, log: (process.env.DBG ? jsonLogger({ level: "debug" }) : silentLogger), connect: () => Promise.resolve(link) },
  );
  const events: ClientEvent[] = [];
  const eventTimes: { type: string; at: number }[] = [];
  client.subscribe((e) => {
    events.push(e);
    eventTimes.push({ type: e.type, at: clock.now() });
  });
  client.setDocument(doc);
  client.start();
  await clock.advanceTo(t0); // the link connects
  const other = nodes.filter((n) => n.role === 'gateway')[1]!;
  const peer = encodeAddress(nodeBackend, { gateway: other.identityKey, mailbox: nodeBackend.x25519Base(bytes32(`peer ${seed}`)) });
  return {
    client,
    link,
    clock,
    events,
    eventTimes,
    dbPath: join(dir, 'client.db'),
    peer,
    async done() {
      await client.stop();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The one-sample Kolmogorov-Smirnov statistic of `xs` against Exp(rate). */
function ksExponential(xs: number[], rate: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  let d = 0;
  s.forEach((x, i) => {
    const f = 1 - Math.exp(-rate * x);
    d = Math.max(d, (i + 1) / n - f, f - i / n);
  });
  return d;
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => (t - times[i]!) / 1000);
}

/** The KS critical value at significance 0.01 for n samples (asymptotic). */
const ksCritical = (n: number): number => 1.628 / Math.sqrt(n);

/**
 * A fetch rate whose intake limits take a burst of 60 fragments to one address at once
 * (src/pki/intake.ts: 150), so that the burst tests see the send clock, not the sender's pacing.
 */
const BURST_FETCH_RATE = 30;

test('departures are a Poisson process at send + loop rate, whether the user is idle or sends a burst', async () => {
  const rate = baseParams.sendRatePerS + baseParams.loopRatePerS;
  for (const mode of ['idle', 'burst'] as const) {
    const h = await harness(`ks-${mode}`, { fetchRatePerS: BURST_FETCH_RATE });
    try {
      const start = h.clock.now();
      if (mode === 'burst') {
        // 60 fragments' worth of messages at once: far more than the send clock can carry at once.
        for (let i = 0; i < 30; i++) h.client.send({ to: h.peer, body: new Uint8Array(3000).fill(i) });
      }
      await h.clock.advanceTo(start + 40_000);
      const times = h.link.departures.filter((t) => t > start);
      const xs = gaps(times);
      const d = ksExponential(xs, rate);
      const st = h.client.status();
      assert.ok(xs.length > 800, `${mode}: ${xs.length} gaps`);
      assert.ok(d < ksCritical(xs.length), `${mode}: KS D=${d.toFixed(4)} above ${ksCritical(xs.length).toFixed(4)} for ${xs.length} gaps`);
      // The mean gap is 1/rate within 10%.
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      assert.ok(Math.abs(mean * rate - 1) < 0.1, `${mode}: mean gap ${mean.toFixed(4)} s`);
      if (mode === 'idle') assert.equal(st.packetsSent.real, 0);
      else assert.ok(st.packetsSent.real >= 60, `burst: ${st.packetsSent.real} real packets`); // each 3000-byte message is 2 fragments
      assert.ok(st.packetsSent.drop > 0 && st.packetsSent.loop > 0);
      // The same process with real packets in it: the burst did not add departures.
      assert.equal(times.length, st.packetsSent.real + st.packetsSent.drop + st.packetsSent.loop);
      // Fetches run at their own constant rate.
      assert.ok(Math.abs(h.link.fetches - 40 * BURST_FETCH_RATE) <= 2, `${h.link.fetches} fetches`);
      assert.deepEqual(st.clockRestarts, { send: 0, loop: 0, fetch: 0 }, 'no event dropped in normal running');
    } finally {
      await h.done();
    }
  }
});

test('with a link that runs the clocks: departures are the same Poisson process in a burst, and an engine that stalls is covered by the reserve', async () => {
  const rate = baseParams.sendRatePerS + baseParams.loopRatePerS;
  // A burst only: idle is the same path with drop cover where the fragments are.
  {
    const mode = 'burst';
    let link: ClockedLink | null = null;
    const h = await harness(`clocked-${mode}`, { fetchRatePerS: BURST_FETCH_RATE }, (clock, codec) => (link = new ClockedLink(clock, codec)));
    try {
      const start = h.clock.now();
      for (let i = 0; i < 30; i++) h.client.send({ to: h.peer, body: new Uint8Array(3000).fill(i) });
      await h.clock.advanceTo(start + 20_000);
      // The engine's thread stalls for a second: the link's ticks go on, from the prepared frames and then the reserve.
      link!.stalled = true;
      const stallAt = h.clock.now();
      await h.clock.advanceTo(stallAt + 1000);
      const inStall = h.link.departures.filter((t) => t > stallAt).length;
      const reserveUsed = link!.sources.reserve;
      link!.resume();
      await h.clock.advanceTo(stallAt + 21_000);
      const times = h.link.departures.filter((t) => t > start);
      const xs = gaps(times);
      const d = ksExponential(xs, rate);
      assert.ok(xs.length > 800, `${mode}: ${xs.length} gaps`);
      assert.ok(d < ksCritical(xs.length), `${mode}: KS D=${d.toFixed(4)} above ${ksCritical(xs.length).toFixed(4)} for ${xs.length} gaps`);
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      assert.ok(Math.abs(mean * rate - 1) < 0.1, `${mode}: mean gap ${mean.toFixed(4)} s`);
      // The stall: every tick in it sent a frame (25 expected; the reserve holds 32 and the queues 7).
      assert.equal(link!.sources.missed, 0);
      assert.ok(inStall >= 10, `${inStall} departures in the stalled second`);
      assert.ok(reserveUsed >= 1 && reserveUsed <= COVER_RESERVE, `${reserveUsed} reserve frames used`);
      const st = h.client.status();
      assert.deepEqual(st.linkTicks, { reserve: link!.sources.reserve, missed: 0 });
      assert.deepEqual(st.clockRestarts, { send: 0, loop: 0, fetch: 0 });
      assert.ok(st.packetsSent.real >= 60, `burst: ${st.packetsSent.real} real packets`);
      // Packets are counted when prepared (reserve ones when used): at most the queues' frames have not left yet.
      const counted = st.packetsSent.real + st.packetsSent.drop + st.packetsSent.loop;
      const departed = h.link.departures.length;
      assert.ok(counted - departed >= 0 && counted - departed <= 7, `${counted} counted, ${departed} departed`);
      // Fetches run at the link's constant rate; the reserve was made once for this epoch.
      assert.ok(Math.abs(h.link.fetches - 41 * BURST_FETCH_RATE) <= 3, `${h.link.fetches} fetches`);
      assert.equal(link!.reserveRenewals, 1);
    } finally {
      await h.done();
    }
  }
});

test('real fragments are paced within the intake limits; the slots left go as drop cover, and a short message does not wait behind a large one', async () => {
  // At this fetch rate an extra mailbox takes 10/s (200 at once) and a main one 15/s (150), of
  // which its owner's loops take 5/s: a sender keeps to 0.9 of the least room, with half the
  // smaller burst at once.
  const pace = senderPace({ fetchRatePerS: BURST_FETCH_RATE, sendRatePerS: baseParams.sendRatePerS, loopRatePerS: baseParams.loopRatePerS });
  assert.deepEqual(pace, { perSecond: 9, burst: 75 });
  const h = await harness('pace', { fetchRatePerS: BURST_FETCH_RATE });
  try {
    const start = h.clock.now();
    const big = h.client.send({ to: h.peer, body: new Uint8Array(900_000).fill(7) }).id;
    // Nothing acknowledges here, so fragments are sent again too: every attempt takes from the pace.
    const attempts = (id?: Uint8Array): number[] =>
      h.eventTimes
        .filter((_e, i) => {
          const ev = h.events[i]!;
          return ev.type === 'attempt' && (id === undefined || (equalBytes(ev.id, id) && ev.attempt === 1));
        })
        .map((e) => e.at);
    await h.clock.advanceTo(start + 20_000);
    // 20 s in: the burst went in about 7 s (20/s out, 9/s in), then one fragment each 111 ms.
    const { gateway } = decodeAddress(nodeBackend, h.peer);
    const other = encodeAddress(nodeBackend, { gateway, mailbox: nodeBackend.x25519Base(bytes32('pace: another contact')) });
    const dropsBefore = h.client.status().packetsSent.drop;
    const small = h.client.send({ to: other, body: new Uint8Array(3000).fill(8) }).id;
    const smallAt = h.clock.now();
    await h.clock.advanceTo(start + 30_000);
    const sent = attempts();
    // Never more than the burst plus what the bucket refilled since the start (one more for the token taken at the boundary).
    for (const [k, at] of sent.entries()) assert.ok(k + 1 <= pace.burst + (pace.perSecond * (at - start)) / 1000 + 1, `fragment ${k + 1} at ${at - start} ms`);
    // ...and close to it: the send clock (20/s) has slots to spare, so the pace is what binds.
    const most = pace.burst + pace.perSecond * 30;
    assert.ok(sent.length >= 0.9 * most && sent.length <= most + 1, `${sent.length} fragments in 30 s (at most ${most})`);
    // The short message's two fragments (indexes 0 and 1) go before the large one's later ones.
    const smallSent = attempts(small);
    assert.equal(smallSent.length, 2);
    assert.ok(smallSent[1]! - smallAt < 2_000, `the short message's fragments left after ${smallSent[1]! - smallAt} ms`);
    const total = h.events.find((e) => e.type === 'attempt' && equalBytes(e.id, big));
    assert.ok(total?.type === 'attempt' && attempts(big).length < total.total - 50, 'the large message is far from done');
    // The send clock's slots the pace leaves go as drop cover: departures are the same process.
    const st = h.client.status();
    // (About 200 send ticks in those 10 s, 90 of them real: P(at most 50 drops) is about 1e-5.)
    assert.ok(st.packetsSent.drop - dropsBefore > 50, `${st.packetsSent.drop - dropsBefore} drop cover packets in the paced 10 s`);
    assert.equal(h.link.departures.filter((t) => t > start).length, st.packetsSent.real + st.packetsSent.drop + st.packetsSent.loop);
  } finally {
    await h.done();
  }
});

test('the pace is shared round-robin by message: a large message to another contact does not stop one under way', async () => {
  const h = await harness('round-robin', { fetchRatePerS: BURST_FETCH_RATE });
  try {
    const start = h.clock.now();
    const first = h.client.send({ to: h.peer, body: new Uint8Array(900_000).fill(7) }).id;
    await h.clock.advanceTo(start + 20_000);
    // 20 s in, the first is about 160 fragments along; a second as large starts, to another contact.
    const { gateway } = decodeAddress(nodeBackend, h.peer);
    const other = encodeAddress(nodeBackend, { gateway, mailbox: nodeBackend.x25519Base(bytes32('round-robin: another contact')) });
    const second = h.client.send({ to: other, body: new Uint8Array(900_000).fill(8) }).id;
    const from = h.clock.now();
    await h.clock.advanceTo(from + 20_000);
    // Every attempt in those 20 s (retransmissions too, nothing acknowledges here), by message:
    // they alternate, where lowest index first gave the second all of them until it caught up.
    const sent = h.events.filter((e, i) => e.type === 'attempt' && h.eventTimes[i]!.at > from).map((e) => (e.type === 'attempt' && equalBytes(e.id, first) ? 1 : 2));
    const ofFirst = sent.filter((m) => m === 1).length;
    assert.ok(sent.length >= 80, `${sent.length} fragments in 20 s`);
    assert.ok(Math.abs(2 * ofFirst - sent.length) <= 2, `${ofFirst} of ${sent.length} were the first message's`);
    for (let i = 1; i < sent.length; i++) assert.notEqual(sent[i], sent[i - 1], `fragments ${i - 1} and ${i} are of the same message`);
    assert.ok(equalBytes(h.client.outgoing(second)!.id, second));
    assert.equal(h.client.status().pendingMessages, 2);
  } finally {
    await h.done();
  }
});

test('an unacknowledged fragment is retransmitted after randomised timeouts, then its message fails', async () => {
  // A slow send clock keeps the virtual run cheap; no loops.
  const h = await harness('retry', { sendRatePerS: 5, loopRatePerS: 0.001, fetchRatePerS: 10, epochPeriodMs: 3_600_000 });
  try {
    const a = h.client.send({ to: h.peer, body: new TextEncoder().encode('one') });
    const b = h.client.send({ to: h.peer, body: new TextEncoder().encode('two') });
    const start = h.clock.now();
    // Every attempt's timeout is at most 2 minutes, so 12 attempts end well within 30 minutes.
    await h.clock.advanceTo(start + 30 * 60_000);
    const failed = h.events.filter((e) => e.type === 'failed');
    assert.equal(failed.length, 2);
    for (const id of [a.id, b.id]) {
      const m = h.client.outgoing(id);
      assert.equal(m?.status, 'failed');
    }
    assert.equal(h.client.status().packetsSent.real, 2 * MAX_ATTEMPTS);
    assert.equal(h.client.status().pendingMessages, 0);
    assert.ok(!h.events.some((e) => e.type === 'delivered'));
    // Each departure is reported, numbered 1 to MAX_ATTEMPTS, before the failure.
    for (const id of [a.id, b.id]) {
      const attempts = h.events.filter((e) => e.type === 'attempt' && toHex(e.id) === toHex(id));
      assert.deepEqual(
        attempts.map((e) => (e.type === 'attempt' ? [e.index, e.attempt, e.total] : [])),
        Array.from({ length: MAX_ATTEMPTS }, (_, i) => [0, i + 1, 1]),
      );
      const failedAt = h.events.findIndex((e) => e.type === 'failed' && toHex(e.id) === toHex(id));
      assert.ok(h.events.lastIndexOf(attempts.at(-1)!) < failedAt);
    }
    // The attempts, from the acknowledgement SURBs the client keeps: the gaps between attempts
    // grow (backoff), and the two fragments, first sent a tick apart, retry on different
    // schedules (timeouts are drawn, not fixed).
    const db = new Database(h.dbPath, { readonly: true });
    const schedule = (id: Uint8Array): number[] =>
      (db.prepare('SELECT sent_at FROM surbs WHERE purpose = ? AND message_id = ? ORDER BY attempt').all('ack', id) as { sent_at: number }[]).map((r) => r.sent_at);
    const [sa, sb] = [schedule(a.id), schedule(b.id)];
    db.close();
    assert.equal(sa.length, MAX_ATTEMPTS);
    assert.equal(sb.length, MAX_ATTEMPTS);
    const ga = sa.slice(1).map((t, i) => t - sa[i]!);
    const gb = sb.slice(1).map((t, i) => t - sb[i]!);
    assert.ok(ga.every((g) => g >= MIN_RTO_MS) && gb.every((g) => g >= MIN_RTO_MS));
    const mean = (xs: number[]): number => xs.reduce((x, y) => x + y, 0) / xs.length;
    for (const g of [ga, gb]) assert.ok(mean(g.slice(-3)) > 3 * mean(g.slice(0, 2)), `gaps ${g.join(',')} grow`);
    const differing = ga.filter((g, i) => Math.abs(g - gb[i]!) > 1000).length;
    assert.ok(differing >= ga.length / 2, `gaps ${ga.join(',')} vs ${gb.join(',')}`);
  } finally {
    await h.done();
  }
});

test('after the host sleeps for an hour the client sends a bounded burst, not the packets it missed', async () => {
  const h = await harness('stall', {});
  try {
    await h.clock.advanceTo(h.clock.now() + 10_000);
    const before = h.link.departures.length;
    const fetchesBefore = h.link.fetches;
    // Time jumps (a suspended laptop): every timer is an hour overdue when it next runs.
    h.clock.t += 3_600_000;
    const woke = h.clock.now();
    await h.clock.advanceTo(woke);
    const burst = h.link.departures.filter((t) => t === woke).length;
    // At most 8 per clock (send and loop) at once, where an hour holds 90 000 departures and 108 000 fetches.
    assert.ok(burst <= 16, `${burst} packets at once`);
    assert.ok(h.link.fetches - fetchesBefore <= 8, `${h.link.fetches - fetchesBefore} fetches at once`);
    assert.ok(h.link.departures.length - before === burst);
    const st = h.client.status();
    assert.ok(st.clockRestarts.send >= 1 && st.clockRestarts.fetch >= 1, JSON.stringify(st.clockRestarts));
    // Then the clocks carry on at their rates.
    await h.clock.advanceTo(woke + 20_000);
    const after = h.link.departures.filter((t) => t > woke).length;
    const rate = baseParams.sendRatePerS + baseParams.loopRatePerS;
    assert.ok(Math.abs(after - 20 * rate) <= 4 * Math.sqrt(20 * rate), `${after} departures in the 20 s after`);
  } finally {
    await h.done();
  }
});

test('a mailbox entry handed out twice (a gateway that lost a deletion in a crash) is delivered once', async () => {
  let link: AnsweringLink | null = null;
  const h = await harness('dedupe', {}, (clock, codec) => (link = new AnsweringLink(clock, codec)));
  try {
    const p: NetworkParameters = { ...baseParams };
    const g = geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb);
    const mailbox = nodeBackend.x25519Base(bytes32('client dedupe'));
    const body = new TextEncoder().encode('sent once, fetched twice');
    const [frame] = fragmentFrames(g, new Uint8Array(16).fill(7), encodeMessage(g, body, []));
    assert.ok(frame !== undefined);
    const sealed = seal(nodeBackend, nodeNoiseCrypto.aead('ChaChaPoly'), mailbox, frame);
    const answer = (sequence: number): Uint8Array =>
      link!.codec.encode({ kind: 'message', sequence, queueHint: 0, empty: false, surbId: null, payload: sealed });
    const messages = (): number => h.events.filter((e) => e.type === 'message').length;
    link!.push(answer(1));
    await h.clock.advanceTo(h.clock.now() + 100);
    assert.equal(messages(), 1, 'the entry is delivered');
    // The same entry again under its own number (an answer the restarted gateway gave from an
    // older fetch), then under a new number (the sender retransmitted because its acknowledgement
    // was lost): the first is below the next number the client fetches from, the second a
    // fragment it already holds.
    link!.push(answer(1));
    link!.push(answer(2));
    await h.clock.advanceTo(h.clock.now() + 100);
    assert.equal(messages(), 1, 'delivered once only');
  } finally {
    await h.done();
  }
});

test('a messenger body (BODY_LENGTH) is one fragment when sent plain (no send time), two with it', async () => {
  const h = await harness('plain', { sendRatePerS: 5, loopRatePerS: 0.001, fetchRatePerS: 10, epochPeriodMs: 3_600_000 });
  try {
    const body = new Uint8Array(BODY_LENGTH).fill(7);
    assert.equal(h.client.send({ to: h.peer, body, plain: true }).fragments, 1);
    assert.equal(h.client.send({ to: h.peer, body }).fragments, 2);
    // A file name still goes with a plain send (it needs the longer layout).
    assert.equal(h.client.send({ to: h.peer, body: new Uint8Array(10), plain: true, fileName: 'a.txt' }).fragments, 1);
  } finally {
    await h.done();
  }
});
