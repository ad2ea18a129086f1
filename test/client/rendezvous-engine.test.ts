// The engine's rendezvous requests (contacts by code) in virtual time, over a link that records
// what leaves: requests ride in send slots, so the departures stay a Poisson process at the send
// plus loop rate however many requests an invite makes; unanswered requests resolve null at their
// timeout; with no gateway offering the service they resolve null at once; stop settles the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeBackend } from '../../src/crypto/node.js';
import { Client } from '../../src/client/client.js';
import type { GatewayLink } from '../../src/client/client.js';
import { SqliteClientStore } from '../../src/client/sqlite-store.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import { silentLogger } from '../../src/ops/log.js';
import { epochAt, epochStart } from '../../src/pki/document.js';
import type { NetworkParameters, SignedDocument } from '../../src/pki/types.js';
import { WireCodec } from '../../src/wire/commands.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { encodeRendezvousRequest } from '../../src/messaging/rendezvous.js';
import { seededBackend } from '../helpers/seeded.js';
import { ManualClock, bytes32, params as baseParams, testNetwork } from '../pki/fixtures.js';

class RecordingLink implements GatewayLink {
  readonly departures: number[] = [];
  #closed: ((v: null) => void) | null = null;
  readonly clock: ManualClock;
  readonly codec: WireCodec;
  constructor(clock: ManualClock, codec: WireCodec) {
    this.clock = clock;
    this.codec = codec;
  }
  trySend(message: Uint8Array): boolean {
    if (this.codec.decode(message).kind === 'send_packet') this.departures.push(this.clock.now());
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

async function harness(seed: string, withService: boolean) {
  const p: NetworkParameters = { ...baseParams };
  const t0 = epochStart(epochAt(1_800_000_000_000, p.epochPeriodMs), p.epochPeriodMs) + 1000;
  const epoch = epochAt(t0, p.epochPeriodMs);
  const nodes = testNetwork(seed).map((n) => n.descriptor([epoch - 1, epoch, epoch + 1], n.role === 'gateway' && withService ? { services: ['rendezvous'] } : {}).desc);
  const doc: SignedDocument = { document: { epoch, params: p, nodes }, bytes: new Uint8Array(0), signatures: [] };
  const clock = new ManualClock(t0);
  const dir = mkdtempSync(join(tmpdir(), 'bc-rdv-engine-'));
  const store = SqliteClientStore.open(join(dir, 'client.db'));
  const codec = new WireCodec({ packetLength: geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb).packetLength });
  const link = new RecordingLink(clock, codec);
  const gateway = nodes.find((n) => n.role === 'gateway')!;
  const client = new Client(
    { linkPrivateKey: bytes32(`client ${seed}`), gateway: gateway.identityKey },
    { clock, crypto: seededBackend(nodeBackend, bytes32(`rdv ${seed}`)), aead: nodeNoiseCrypto.aead('ChaChaPoly'), store, log: silentLogger, connect: () => Promise.resolve(link) },
  );
  client.setDocument(doc);
  client.start();
  await clock.advanceTo(t0);
  return {
    client,
    clock,
    link,
    async done() {
      await client.stop();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const request = (channel: number): Uint8Array =>
  encodeRendezvousRequest({ op: 'read', channel, side: 1, token: new Uint8Array(16), lifetimeS: 3600, posting: new Uint8Array(0) });

function ksExponential(xs: number[], rate: number): number {
  const s = [...xs].sort((a, b) => a - b);
  let d = 0;
  s.forEach((x, i) => {
    const f = 1 - Math.exp(-rate * x);
    d = Math.max(d, (i + 1) / s.length - f, f - i / s.length);
  });
  return d;
}

test('rendezvous requests ride in send slots: the departures stay a Poisson process, and unanswered ones time out', async () => {
  const h = await harness('rdv-ks', true);
  try {
    const rate = baseParams.sendRatePerS + baseParams.loopRatePerS;
    const start = h.clock.now();
    const results: (Uint8Array | null)[] = [];
    // An invite-like loop: a request, and when it settles (here: times out after 1 s), the next.
    let asked = 0;
    const ask = (): void => {
      if (h.clock.now() - start > 38_000) return;
      asked++;
      void h.client.rendezvous(1 + (asked % 50), request(asked), 1_000).then((a) => {
        results.push(a);
        ask();
      });
    };
    for (let i = 0; i < 4; i++) ask();
    await h.clock.advanceTo(start + 40_000);
    const times = h.link.departures.filter((t) => t > start);
    const xs = times.slice(1).map((t, i) => (t - times[i]!) / 1000);
    const st = h.client.status();
    assert.ok(asked > 100, `${asked} requests`);
    assert.ok(st.packetsSent.real >= asked - 4, `${st.packetsSent.real} real packets for ${asked} requests`);
    // Every departure is a tick of the send or loop clock: requests took slots, added none.
    assert.equal(times.length, st.packetsSent.real + st.packetsSent.drop + st.packetsSent.loop);
    const d = ksExponential(xs, rate);
    assert.ok(d < 1.628 / Math.sqrt(xs.length), `KS D=${d.toFixed(4)} for ${xs.length} gaps`);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(Math.abs(mean * rate - 1) < 0.1, `mean gap ${mean.toFixed(4)} s`);
    assert.ok(results.length >= asked - 4 && results.every((r) => r === null), 'nobody answers: every request times out');
  } finally {
    await h.done();
  }
});

test('without a gateway that offers the service a request resolves null at once, and stop settles those waiting', async () => {
  const h = await harness('rdv-none', false);
  try {
    const a = h.client.rendezvous(7, request(7), 60_000);
    await h.clock.advanceTo(h.clock.now() + 1_000);
    assert.equal(await a, null);
    assert.equal(h.client.status().packetsSent.real, 0);
  } finally {
    await h.done();
  }
  const h2 = await harness('rdv-stop', true);
  const waiting = h2.client.rendezvous(7, request(7), 60_000);
  await h2.clock.advanceTo(h2.clock.now() + 1_000);
  await h2.done();
  assert.equal(await waiting, null);
});
