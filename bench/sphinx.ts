/**
 * `npm run bench -- sphinx`: the cost of Sphinx for the default geometry (5 hops, 2000-byte user
 * payload with a SURB) with the Node backend, against one X25519 measured in the same run (in
 * alternating batches). An unwrap costs two X25519 (the shared secret and the blinding) plus the
 * rest; unwrap_in_place is the unwrap workers' way, without a fresh packet per hop. A SURB is
 * made over the same 5-hop path.
 */
import { nodeBackend } from '../src/crypto/node.js';
import { defaultGeometry, Sphinx } from '../src/sphinx/index.js';
import type { PathHop } from '../src/sphinx/index.js';
import { measure, measurePair, round } from './_timing.js';
import { benchAez } from './aez.js';

export interface SphinxBench {
  hops: number;
  packet_bytes: number;
  payload_bytes: number;
  x25519_us: number;
  unwrap_us: number;
  unwrap_in_place_us: number;
  create_us: number;
  create_surb_us: number;
  /** A gateway's own cover packet (4 hops); it makes one per emission slot that no acknowledgement takes. */
  gateway_cover_us: number;
  aez_us: number;
  npm_aez_us: number;
  aez_speedup_over_npm: number;
  unwrap_over_x25519: number;
  create_over_x25519: number;
  create_surb_over_x25519: number;
  unwrap_in_place_over_x25519: number;
}

export function benchSphinx(): SphinxBench {
  const c = nodeBackend;
  const g = defaultGeometry();
  const sphinx = new Sphinx(g, c);
  const nodes = Array.from({ length: g.hops }, () => {
    const privateKey = c.randomBytes(32);
    return { id: c.randomBytes(32), privateKey, publicKey: c.x25519Base(privateKey) };
  });
  const path: PathHop[] = nodes.map((n, i) => ({
    id: n.id,
    publicKey: n.publicKey,
    commands: i < nodes.length - 1 ? [{ type: 'nodeDelay', delayMs: 50 }] : [{ type: 'recipient', id: c.randomBytes(32) }],
  }));
  const payload = c.randomBytes(g.forwardPayloadLength);
  const packet = sphinx.createPacket(path, payload);
  const first = nodes[0]!.privateKey;

  const scalar = c.randomBytes(32);
  const point = nodes[1]!.publicKey;
  // One X25519 and one unwrap in alternating batches: the ratio is what this benchmark is for.
  const [x25519, unwrap] = measurePair(
    () => c.x25519(scalar, point),
    () => sphinx.unwrap(first, packet),
  );
  // As an unwrap worker does it: the packet opened where it lies (restored before each call).
  const slot = packet.slice();
  const [, inPlace] = measurePair(
    () => c.x25519(scalar, point),
    () => {
      slot.set(packet);
      sphinx.unwrap(first, slot, slot);
    },
  );
  const create = measure(() => sphinx.createPacket(path, payload), { batchMs: 200 });
  const surbPath: PathHop[] = path.map((h, i) => (i < path.length - 1 ? h : { ...h, commands: [...h.commands, { type: 'surbReply', id: c.randomBytes(16) }] }));
  const createSurb = measure(() => sphinx.createSurb(surbPath), { batchMs: 200 });
  // A gateway's cover packet (src/server/node.ts): one mix per layer, then a gateway's drop mailbox.
  const coverPath: PathHop[] = path.slice(1).map((h, i, a) => (i < a.length - 1 ? h : { ...h, commands: [{ type: 'recipient', id: new Uint8Array(32) }] }));
  const zeros = new Uint8Array(g.forwardPayloadLength);
  const gatewayCover = measure(() => sphinx.createPacket(coverPath, zeros), { batchMs: 200 });

  const aez = benchAez();

  return {
    hops: g.hops,
    packet_bytes: g.packetLength,
    payload_bytes: g.payloadLength,
    x25519_us: round(x25519.us),
    unwrap_us: round(unwrap.us),
    unwrap_in_place_us: round(inPlace.us),
    create_us: round(create.us),
    create_surb_us: round(createSurb.us),
    gateway_cover_us: round(gatewayCover.us),
    aez_us: aez.aez_us,
    npm_aez_us: aez.npm_aez_us,
    aez_speedup_over_npm: aez.aez_speedup_over_npm,
    unwrap_over_x25519: round(unwrap.us / x25519.us),
    create_over_x25519: round(create.us / x25519.us),
    create_surb_over_x25519: round(createSurb.us / x25519.us),
    unwrap_in_place_over_x25519: round(inPlace.us / x25519.us),
  };
}
