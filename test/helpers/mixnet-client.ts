/**
 * A bare test client for the network tests: links to a gateway as a client (its Noise static key
 * names its mailbox), builds Sphinx packets through the consensus topology, sends them, and drains
 * its mailbox. The real client (traffic discipline, retransmission, state) is another component;
 * this one only exercises the servers.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeBackend } from '../../src/crypto/node.js';
import { connectTcp } from '../../src/link/tcp.js';
import type { Link } from '../../src/link/link.js';
import { encodeForwardPayload } from '../../src/sphinx/payload.js';
import { chooseMixes, pathHops, randomIntFrom } from '../../src/pki/route.js';
import type { DocumentNode, SignedDocument } from '../../src/pki/types.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import type { Geometry } from '../../src/sphinx/geometry.js';
import { SURB_ID_LENGTH } from '../../src/sphinx/constants.js';
import { Sphinx } from '../../src/sphinx/sphinx.js';
import { WireCodec } from '../../src/wire/commands.js';
import { DROP_REASONS, readSample } from '../../src/ops/metrics.js';
import { equalBytes } from '../../src/util/bytes.js';
import type { WireCommand } from '../../src/wire/commands.js';

const rand = randomIntFrom(nodeBackend.randomBytes);

export interface Fetched {
  readonly seq: number;
  readonly surbId: Uint8Array | null;
  readonly payload: Uint8Array;
}

export class TestClient {
  readonly staticKey = nodeBackend.randomBytes(32);
  readonly publicKey = nodeBackend.x25519Base(this.staticKey);
  readonly geometry: Geometry;
  readonly sphinx: Sphinx;
  readonly codec: WireCodec;
  readonly gateway: DocumentNode;
  #link: Link | null = null;
  #nextSeq = 0;

  constructor(doc: SignedDocument, gateway: DocumentNode) {
    const p = doc.document.params;
    this.geometry = geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb);
    this.sphinx = new Sphinx(this.geometry, nodeBackend);
    this.codec = new WireCodec({ packetLength: this.geometry.packetLength });
    this.gateway = gateway;
  }

  async connect(): Promise<void> {
    const [host, port] = this.gateway.tcpAddress.split(':');
    this.#link = await connectTcp({
      host: host!,
      port: Number(port),
      staticKey: this.staticKey,
      remoteStatic: this.gateway.linkKey,
      maxMessageLength: this.codec.commandLength,
    });
  }

  get link(): Link {
    if (!this.#link) throw new Error('test client: not connected');
    return this.#link;
  }

  /**
   * A packet from this client's gateway through one mix per layer to `to` (a gateway) for
   * `recipient`, carrying `body`; with `ackTo`, a SURB back to that client for the gateway's ack.
   */
  buildPacket(
    doc: SignedDocument,
    to: DocumentNode,
    recipient: Uint8Array,
    body: Uint8Array,
    opts: { ackTo?: TestClient; delayMs?: number; mixes?: DocumentNode[] } = {},
  ): { packet: Uint8Array; surbId: Uint8Array | null; surbKeys: Uint8Array | null } {
    const epoch = doc.document.epoch;
    const delay = opts.delayMs ?? 0;
    // Each gateway as this document lists it: its mix keys are those of the document's epoch, not
    // of the document this client was made with.
    const self = sameNode(doc, this.gateway);
    let surb: Uint8Array | null = null;
    let surbId: Uint8Array | null = null;
    let surbKeys: Uint8Array | null = null;
    if (opts.ackTo) {
      surbId = nodeBackend.randomBytes(SURB_ID_LENGTH);
      const back = [...chooseMixes(doc.document, rand), sameNode(doc, opts.ackTo.gateway)];
      const s = this.sphinx.createSurb(pathHops(back, epoch, back.slice(1).map(() => delay), { recipient: opts.ackTo.publicKey, surbId }));
      surb = s.surb;
      surbKeys = s.surbKeys;
    }
    const nodes = [self, ...(opts.mixes ?? chooseMixes(doc.document, rand)), sameNode(doc, to)];
    const path = pathHops(nodes, epoch, nodes.slice(1).map((_, i) => (i === 0 ? 0 : delay)), { recipient });
    const packet = this.sphinx.createPacket(path, encodeForwardPayload(this.geometry, body, surb));
    return { packet, surbId, surbKeys };
  }

  /** Sends one packet, waiting for room on the link. */
  async send(packet: Uint8Array): Promise<void> {
    await this.link.send(this.codec.encode({ kind: 'send_packet', packet }));
  }

  /** One fetch: asks for the next entry (acknowledging those before it) and returns the answer. */
  async fetchOne(): Promise<Fetched | null> {
    await this.link.send(this.codec.encode({ kind: 'retrieve_message', sequence: this.#nextSeq }));
    for (;;) {
      const m = await this.link.recv();
      if (m === null) throw new Error('test client: link closed');
      const cmd: WireCommand = this.codec.decode(m);
      if (cmd.kind !== 'message') continue;
      if (cmd.empty) return null;
      this.#nextSeq = cmd.sequence + 1;
      return { seq: cmd.sequence, surbId: cmd.surbId, payload: cmd.payload };
    }
  }

  /** Fetches until `want` entries came or `timeoutMs` passed without a new one. */
  async drain(want: number, timeoutMs: number): Promise<Fetched[]> {
    const out: Fetched[] = [];
    let lastNew = Date.now();
    while (out.length < want && Date.now() - lastNew < timeoutMs) {
      const f = await this.fetchOne();
      if (f === null) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      out.push(f);
      lastNew = Date.now();
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#link?.close();
  }
}

/**
 * `node` as `doc` lists it (matched by identity key).
 * @throws Error when the document does not list it.
 */
export function sameNode(doc: SignedDocument, node: DocumentNode): DocumentNode {
  const n = doc.document.nodes.find((x) => equalBytes(x.identityKey, node.identityKey));
  if (n === undefined) throw new Error(`test client: the document for epoch ${doc.document.epoch} does not list ${node.name}`);
  return n;
}

/** Every drop counter of every node, as `name: reason=n ...` lines: for the message of a failed assertion. */
export async function dropSummary(servers: readonly { readonly name: string; readonly role: string; readonly opsUrl: string }[]): Promise<string> {
  const lines: string[] = [];
  for (const s of servers) {
    if (s.role === 'authority') continue;
    const text = await scrape(s.opsUrl).catch(() => null);
    if (text === null) {
      lines.push(`${s.name}: no answer`);
      continue;
    }
    const counts = DROP_REASONS.map((r) => [r, readSample(text, 'backchannel_packets_dropped_total', { reason: r }) ?? 0] as const).filter(([, n]) => n > 0);
    lines.push(`${s.name}: in=${readSample(text, 'backchannel_packets_in_total') ?? 0} out=${readSample(text, 'backchannel_packets_out_total') ?? 0} ${counts.map(([r, n]) => `${r}=${n}`).join(' ')}`);
  }
  return lines.join('\n');
}

/** Fetches a server's metrics text from its ops URL. */
export async function scrape(opsUrl: string): Promise<string> {
  const res = await fetch(`${opsUrl}/metrics`);
  return res.text();
}

/** Lets test clients send faster than the default per-client rate (that limit is tested apart). */
export function raiseClientRate(dir: string, gateways = ['gateway-1', 'gateway-2']): void {
  for (const gw of gateways) {
    const p = join(dir, gw, 'config.json');
    const c = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
    c['clientRate'] = { perSecond: 5000, burst: 5000 };
    // ... and receive as fast: the per-mailbox intake limit is tested apart too.
    c['mailbox'] = { ...((c['mailbox'] as Record<string, unknown> | undefined) ?? {}), intake: { perSecond: 100_000, burst: 100_000 }, fetchRate: { perSecond: 100_000, burst: 100_000 } };
    writeFileSync(p, JSON.stringify(c, null, 2));
  }
}
