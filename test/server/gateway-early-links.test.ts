/**
 * Links that reach a gateway before its first document (just started, or restarted): the gateway
 * cannot yet tell a layer-3 mix from a client, so it holds such a link undecided, admits nobody,
 * and decides once the document comes. A mix is then a mix (no client record, nothing counted
 * against the cap on clients, never refused); a client goes through admission with the handshake
 * payload it gave, and is admitted or closed with the refusal. Undecided links are bounded in
 * number and in time, and what they send before the decision is held within a bound.
 *
 * Real Noise links over TCP on 127.0.0.1; the gateway's mailbox is a real SQLite file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { isBackchannelError } from '../../src/errors.js';
import { CloseReason, LinkRefusedError, WORK_REQUIRED_BASE } from '../../src/link/link.js';
import type { Link, LinkCloseInfo } from '../../src/link/link.js';
import { connectTcp } from '../../src/link/tcp.js';
import type { AdmissionInit } from '../../src/server/admission.js';
import { createGateway } from '../../src/server/gateway.js';
import type { Gateway } from '../../src/server/gateway.js';
import { openMailboxStore } from '../../src/server/mailbox.js';
import type { MailboxStore } from '../../src/server/mailbox.js';
import { systemClock } from '../../src/ops/clock.js';
import { silentLogger } from '../../src/ops/log.js';
import { nodeMetrics, readSample } from '../../src/ops/metrics.js';
import type { NodeMetrics } from '../../src/ops/metrics.js';
import type { DocumentNode, NetworkParameters, SignedDocument } from '../../src/pki/types.js';
import { encodeForwardPayload } from '../../src/sphinx/payload.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { Sphinx } from '../../src/sphinx/sphinx.js';
import { encodeAdmission, solveWork } from '../../src/wire/admission.js';
import { WireCodec } from '../../src/wire/commands.js';

const c = nodeBackend;
const params: NetworkParameters = { epochPeriodMs: 3_600_000, hops: 5, userPayloadLength: 200, withSurb: false, layers: 3, mixMeanDelayMs: 1, sendRatePerS: 1, loopRatePerS: 1, fetchRatePerS: 1, gatewayRatePerClientPerS: 1 };
const g = geometryFromUserPayload(params.hops, params.userPayloadLength, params.withSurb);
const codec = new WireCodec({ packetLength: g.packetLength });
const WORK_BITS = 8;

function keypair(): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const privateKey = c.randomBytes(32);
  return { privateKey, publicKey: c.x25519Base(privateKey) };
}

/** Polls `check` every 10 ms until it holds (a state, never a time, is what is awaited); fails after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Harness {
  readonly gateway: Gateway;
  readonly mailbox: MailboxStore;
  readonly metrics: NodeMetrics;
  readonly gwId: Uint8Array;
  readonly gwLink: { privateKey: Uint8Array; publicKey: Uint8Array };
  readonly gwKey: { privateKey: Uint8Array; publicKey: Uint8Array };
  readonly mixLink: { privateKey: Uint8Array; publicKey: Uint8Array };
  readonly epoch: number;
  /** Publishes the document: the gateway and one layer-3 mix. */
  publish(): void;
  link(staticKey: Uint8Array, payload?: Uint8Array): Promise<Link>;
  sample(name: string, labels: Record<string, string>): Promise<number>;
  /** A packet whose last (here: only) hop is the gateway, for `recipient`'s mailbox. */
  finalPacket(recipient: Uint8Array, body: Uint8Array): Uint8Array;
  stop(): Promise<void>;
}

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.stop();
});

async function harness(admission: AdmissionInit | undefined, undecided?: { maxLinks?: number; timeoutMs?: number; maxFramesPerLink?: number }): Promise<Harness> {
  const epoch = Math.floor(Date.now() / params.epochPeriodMs);
  const gwLink = keypair();
  const gwKey = keypair();
  const mixLink = keypair();
  const gwId = c.randomBytes(32);
  const dir = mkdtempSync(join(tmpdir(), 'bc-gw-early-'));
  const mailbox = openMailboxStore(join(dir, 'mailbox.sqlite'));
  const metrics = nodeMetrics();
  let feed: ((d: SignedDocument) => void) | null = null;
  const gateway = createGateway(
    {
      name: 'gw',
      role: 'gateway',
      layer: 0,
      identityKey: gwId,
      linkKey: gwLink,
      listen: { host: '127.0.0.1', port: 0 },
      limits: { maxDelayMs: 1_000, maxQueuedPackets: 64, replayCacheEntries: 1_000, workers: 1 },
      params,
      clientRate: { perSecond: 100, burst: 100 },
      ...(admission === undefined ? {} : { admission }),
      ...(undecided === undefined ? {} : { undecided }),
    },
    {
      clock: systemClock,
      log: silentLogger,
      metrics,
      documents: {
        current: () => null,
        subscribe: (fn) => {
          feed = fn;
          return () => undefined;
        },
      },
      keys: { privateKey: (e) => (e === epoch ? gwKey.privateKey : null) },
      format: new Sphinx(g, c),
      mailbox,
    },
  );
  await gateway.start();
  const links: Link[] = [];
  const node = (name: string, role: 'mix' | 'gateway', layer: number, id: Uint8Array, linkKey: Uint8Array, key: Uint8Array): DocumentNode => ({
    name,
    identityKey: id,
    linkKey,
    role,
    layer,
    tcpAddress: '127.0.0.1:1',
    wsAddress: null,
    mixKeys: [{ epoch, publicKey: key }],
  });
  const sphinx = new Sphinx(g, c);
  const h: Harness = {
    gateway,
    mailbox,
    metrics,
    gwId,
    gwLink,
    gwKey,
    mixLink,
    epoch,
    publish() {
      feed!({
        document: { epoch, params, nodes: [node('gw', 'gateway', 0, gwId, gwLink.publicKey, gwKey.publicKey), node('mix-3', 'mix', 3, c.randomBytes(32), mixLink.publicKey, keypair().publicKey)] },
        bytes: new Uint8Array(0),
        signatures: [],
      });
    },
    async link(staticKey, payload) {
      const l = await connectTcp({
        host: '127.0.0.1',
        port: gateway.node.port,
        staticKey,
        remoteStatic: gwLink.publicKey,
        maxMessageLength: codec.commandLength,
        ...(payload === undefined ? {} : { handshakePayload: payload }),
      });
      links.push(l);
      return l;
    },
    async sample(name, labels) {
      return readSample(await metrics.registry.metrics(), name, labels) ?? 0;
    },
    finalPacket(recipient, body) {
      return sphinx.createPacket([{ id: gwId, publicKey: gwKey.publicKey, commands: [{ type: 'recipient', id: recipient }] }], encodeForwardPayload(g, body, null));
    },
    async stop() {
      for (const l of links) await l.close().catch(() => undefined);
      await gateway.stop();
      mailbox.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  harnesses.push(h);
  return h;
}

const refusedWith = (e: unknown): string => (e instanceof LinkRefusedError ? e.code : String(e));

describe('a gateway linked before its first document', { timeout: 60_000 }, () => {
  it('open, with room for one more client: an early mix takes no record and no room, its early packet is delivered, an early client is admitted', async () => {
    // The recipient's record counts as a client: the cap leaves room for exactly one more.
    const h = await harness({ mode: 'open', maxClients: 2 });
    const recipient = keypair().publicKey;
    h.mailbox.register(recipient);
    const mix = await h.link(h.mixLink.privateKey);
    const client = keypair();
    const clientLink = await h.link(client.privateKey);
    // Sent before the document: held, not dropped, not taken for a client's packet.
    const body = c.randomBytes(40);
    await mix.send(codec.encode({ kind: 'send_packet', packet: h.finalPacket(recipient, body) }));
    await until('both links held undecided', async () => (await h.sample('backchannel_undecided_links', {})) === 2);
    assert.equal(h.mailbox.isRegistered(h.mixLink.publicKey), false);
    assert.equal(h.mailbox.isRegistered(client.publicKey), false, 'no record before the decision');
    assert.equal(await h.sample('backchannel_admission_total', { outcome: 'admitted' }), 0);
    assert.equal(h.mailbox.peek(recipient), null, 'nothing delivered before the document');
    assert.equal(await h.sample('backchannel_links_by_kind', { kind: 'undecided' }), 2);
    assert.equal(await h.sample('backchannel_links_by_kind', { kind: 'client' }), 0);

    h.publish();
    await until('the mix packet delivered', () => h.mailbox.peek(recipient) !== null);
    assert.deepEqual(h.mailbox.peek(recipient)!.payload.subarray(0, body.length), body);
    await until('the early client registered', () => h.mailbox.isRegistered(client.publicKey));
    assert.equal(h.mailbox.isRegistered(h.mixLink.publicKey), false, 'the mix took no client record');
    assert.equal(mix.isOpen, true);
    assert.equal(clientLink.isOpen, true);
    assert.equal(await h.sample('backchannel_undecided_links_total', { outcome: 'mix' }), 1);
    assert.equal(await h.sample('backchannel_undecided_links_total', { outcome: 'admitted' }), 1);
    assert.equal(await h.sample('backchannel_undecided_links', {}), 0);
    assert.equal(await h.sample('backchannel_admission_total', { outcome: 'admitted' }), 1, 'the client, not the mix');
    assert.equal(await h.sample('backchannel_packets_dropped_total', { reason: 'not_final' }), 0);
    assert.equal(await h.sample('backchannel_links_by_kind', { kind: 'previous' }), 1);
    assert.equal(await h.sample('backchannel_links_by_kind', { kind: 'client' }), 1);
    assert.equal(await h.sample('backchannel_links_by_kind', { kind: 'undecided' }), 0);

    // The cap (the test's recipient and the client) is full now: a third key is refused, at the handshake.
    const third = await h.link(keypair().privateKey).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isBackchannelError(third, 'ERR_ADMISSION_FULL'), refusedWith(third));
  });

  it('proof of work: an early mix is never refused; an early client without work is closed with the bits asked, one with work is admitted', async () => {
    const h = await harness({ mode: 'proof-of-work', workBits: WORK_BITS, maxClients: 10 });
    const mix = await h.link(h.mixLink.privateKey);
    const lazy = keypair();
    const lazyLink = await h.link(lazy.privateKey);
    // Sent before the document by a client that will be refused: held, then dropped with its link.
    await lazyLink.send(codec.encode({ kind: 'send_packet', packet: h.finalPacket(keypair().publicKey, c.randomBytes(10)) }));
    const honest = keypair();
    const nonce = (await solveWork(h.gwId, honest.publicKey, WORK_BITS))!;
    const honestLink = await h.link(honest.privateKey, encodeAdmission({ kind: 'work', nonce }));
    await until('three links held', async () => (await h.sample('backchannel_undecided_links', {})) === 3);
    assert.equal(await h.sample('backchannel_admission_total', { outcome: 'work' }), 0, 'nobody refused before the document');

    h.publish();
    const closed: LinkCloseInfo = await lazyLink.closed;
    assert.equal(closed.reason, WORK_REQUIRED_BASE + WORK_BITS, 'told the bits it lacks');
    await until('the honest client registered', () => h.mailbox.isRegistered(honest.publicKey));
    assert.equal(honestLink.isOpen, true);
    assert.equal(mix.isOpen, true, 'the mix was not refused');
    assert.equal(h.mailbox.isRegistered(h.mixLink.publicKey), false);
    assert.equal(h.mailbox.isRegistered(lazy.publicKey), false);
    assert.equal(await h.sample('backchannel_admission_total', { outcome: 'work' }), 1, 'the lazy client only');
    assert.equal(await h.sample('backchannel_admission_total', { outcome: 'admitted' }), 1);
    assert.equal(await h.sample('backchannel_undecided_links_total', { outcome: 'refused' }), 1);
    // Its packet, held or on its way as the link was refused, is dropped and counted.
    await until('its packet dropped', async () => (await h.sample('backchannel_packets_dropped_total', { reason: 'undecided' })) === 1);

    // The mix's packets after the decision are deliveries.
    const recipient = keypair().publicKey;
    h.mailbox.register(recipient);
    await mix.send(codec.encode({ kind: 'send_packet', packet: h.finalPacket(recipient, c.randomBytes(10)) }));
    await until('delivered', () => h.mailbox.peek(recipient) !== null);

    // With the document, a client without work is refused at the handshake as before.
    const again = await h.link(lazy.privateKey).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isBackchannelError(again, 'ERR_ADMISSION_WORK'), refusedWith(again));
  });

  it('holds at most maxLinks undecided, and at most maxFramesPerLink packets of each, dropping and counting the rest', async () => {
    const h = await harness({ mode: 'open' }, { maxLinks: 2, maxFramesPerLink: 2 });
    const a = await h.link(keypair().privateKey);
    await h.link(keypair().privateKey);
    const third = await h.link(keypair().privateKey).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isBackchannelError(third, 'ERR_LINK_REJECTED'), refusedWith(third));
    assert.equal(await h.sample('backchannel_undecided_links_total', { outcome: 'overflow' }), 1);
    // Three packets: two held, the third dropped and counted; a fetch is never taken from an undecided link.
    const recipient = keypair().publicKey;
    for (let i = 0; i < 3; i++) await a.send(codec.encode({ kind: 'send_packet', packet: h.finalPacket(recipient, c.randomBytes(10)) }));
    await a.send(codec.encode({ kind: 'retrieve_message', sequence: 0 }));
    await until('the extra frames dropped', async () => (await h.sample('backchannel_packets_dropped_total', { reason: 'undecided' })) === 2);
    // Its peer leaves: the two packets it held go with it, counted.
    await a.close();
    await until('the link counted as closed', async () => (await h.sample('backchannel_undecided_links_total', { outcome: 'closed' })) === 1);
    assert.equal(await h.sample('backchannel_packets_dropped_total', { reason: 'undecided' }), 4);
    assert.equal(await h.sample('backchannel_undecided_links', {}), 1);
    assert.equal(h.mailbox.clients(), 0);
  });

  it('closes a link held past timeoutMs (reason timeout), counted', async () => {
    const h = await harness({ mode: 'open' }, { timeoutMs: 200 });
    const a = await h.link(keypair().privateKey);
    const info = await a.closed;
    assert.equal(info.reason, CloseReason.timeout);
    await until('counted', async () => (await h.sample('backchannel_undecided_links_total', { outcome: 'timeout' })) === 1);
    assert.equal(await h.sample('backchannel_undecided_links', {}), 0);
    assert.equal(h.mailbox.clients(), 0);
  });
});
