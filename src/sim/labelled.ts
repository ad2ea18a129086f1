/**
 * Labelled packets: the simulator's stand-in for Sphinx, behind the same PacketFormat interface
 * (src/sphinx/format.ts), so that the real client, gateway and mix code build, open and forward
 * them without knowing. A labelled packet has Sphinx's length and carries its route in clear, and
 * a label: a packet number that lets the simulator follow it, which an observer of the real
 * network could not. No cryptography: a hop does not check that the packet was made for its key.
 *
 *     magic "LBL1" (4) | packet number u32 (4) | next hop index (1) | hop count (1) | flags (1) | 0 (1)
 *     | per hop: node id (32) | delay ms u32 (4) | ... | recipient (32) | SURB id (16)
 *     | zero padding to the Sphinx header length | payload (tag of zeros, forward payload)
 *
 * A SURB is that header (without a number) followed by its first hop's id, padded to Sphinx's
 * SURB length; a reply made from it gets a fresh number.
 */
import { BackchannelError } from '../errors.js';
import type { PacketFormat, PacketFormatFactory } from '../sphinx/format.js';
import type { Geometry } from '../sphinx/geometry.js';
import type { PathHop, Surb, UnwrapResult } from '../sphinx/sphinx.js';
import { NODE_ID_LENGTH, PAYLOAD_TAG_LENGTH, RECIPIENT_ID_LENGTH, REPLAY_TAG_LENGTH, SPRP_KEY_MATERIAL_LENGTH, SURB_ID_LENGTH } from '../sphinx/constants.js';
import { isZero } from '../util/bytes.js';

const MAGIC = [0x4c, 0x42, 0x4c, 0x31]; // "LBL1"
const OFF_NUMBER = 4;
const OFF_HOP = 8;
const OFF_COUNT = 9;
const OFF_FLAGS = 10;
const OFF_HOPS = 12;
const HOP_LENGTH = NODE_ID_LENGTH + 4;
const FLAG_SURB_ID = 1;
/** Where the packet number sits in a wire `send_packet` command (version, type, then the packet). */
export const LABEL_OFFSET_IN_SEND_PACKET = 2 + OFF_NUMBER;

/** What the simulator learns when a packet is made. */
export interface LabelledCreation {
  readonly packet: number;
  /** Who made it (the simulator's owner number of the client or node). */
  readonly owner: number;
  /** The last hop's recipient (mailbox id). */
  readonly recipient: Uint8Array;
  /** True for a reply made from a SURB. */
  readonly viaSurb: boolean;
}

function labelError(code: 'ERR_SPHINX_VERSION' | 'ERR_SPHINX_LENGTH' | 'ERR_SPHINX_PATH' | 'ERR_SPHINX_COMMAND' | 'ERR_SPHINX_TAG', message: string): BackchannelError {
  return new BackchannelError(code, `labelled: ${message}`);
}

/** The packet number of a labelled packet, or -1 for anything else. */
export function packetNumber(packet: Uint8Array, offset = 0): number {
  if (packet.length < offset + OFF_HOPS) return -1;
  for (let i = 0; i < 4; i++) if (packet[offset + i] !== MAGIC[i]) return -1;
  return ((packet[offset + OFF_NUMBER]! << 24) | (packet[offset + OFF_NUMBER + 1]! << 16) | (packet[offset + OFF_NUMBER + 2]! << 8) | packet[offset + OFF_NUMBER + 3]!) >>> 0;
}

/** Numbers the packets of one simulation and tells it about each. */
export class LabelledPackets {
  #next = 1;
  readonly #onCreate: (c: LabelledCreation) => void;
  /** @internal Where new packets are written (zeroed, of the geometry's packet length); fresh arrays by default. */
  readonly allocate: ((packetLength: number) => Uint8Array) | null;

  /**
   * `allocate`, when given, returns the memory for each packet made (zeroed, the length asked
   * for, nobody else's): the simulation has packets made inside the wire commands that carry
   * them, carved from slabs, so that sending one copies and allocates nothing.
   */
  constructor(onCreate: (c: LabelledCreation) => void, allocate?: (packetLength: number) => Uint8Array) {
    this.#onCreate = onCreate;
    this.allocate = allocate ?? null;
  }

  /** Packets made so far. */
  get created(): number {
    return this.#next - 1;
  }

  /** The packet format for packets made by `owner`. */
  factory(owner: number): PacketFormatFactory {
    return (geometry) => new LabelledFormat(geometry, this, owner);
  }

  /** @internal */
  number(owner: number, recipient: Uint8Array, viaSurb: boolean): number {
    const n = this.#next++;
    if (n > 0xffffffff) throw new BackchannelError('ERR_SIM_STATE', 'sim: more than 2^32 packets');
    this.#onCreate({ packet: n, owner, recipient, viaSurb });
    return n;
  }
}

class LabelledFormat implements PacketFormat {
  readonly geometry: Geometry;
  readonly #packets: LabelledPackets;
  readonly #owner: number;

  constructor(geometry: Geometry, packets: LabelledPackets, owner: number) {
    const need = OFF_HOPS + geometry.hops * HOP_LENGTH + RECIPIENT_ID_LENGTH + SURB_ID_LENGTH;
    if (need > geometry.headerLength) throw new BackchannelError('ERR_SPHINX_GEOMETRY', 'labelled: the header is too short for this many hops');
    this.geometry = geometry;
    this.#packets = packets;
    this.#owner = owner;
  }

  /** Writes the route of `path` into `out` (a header of headerLength bytes); returns the recipient. */
  #header(path: readonly PathHop[], out: Uint8Array): Uint8Array {
    const g = this.geometry;
    if (path.length === 0 || path.length > g.hops) throw labelError('ERR_SPHINX_PATH', `a path has 1 to ${g.hops} hops`);
    out.set(MAGIC, 0);
    out[OFF_COUNT] = path.length;
    let recipient: Uint8Array | null = null;
    for (let i = 0; i < path.length; i++) {
      const hop = path[i]!;
      const off = OFF_HOPS + i * HOP_LENGTH;
      out.set(hop.id, off);
      for (const c of hop.commands) {
        if (c.type === 'nodeDelay') {
          if (i === path.length - 1) throw labelError('ERR_SPHINX_PATH', 'the last hop has no delay');
          writeU32(out, off + NODE_ID_LENGTH, c.delayMs);
        } else if (c.type === 'recipient' || c.type === 'surbReply') {
          if (i !== path.length - 1) throw labelError('ERR_SPHINX_PATH', `only the last hop carries ${c.type}`);
          const at = OFF_HOPS + g.hops * HOP_LENGTH;
          if (c.type === 'recipient') {
            out.set(c.id, at);
            recipient = c.id;
          } else {
            out.set(c.id, at + RECIPIENT_ID_LENGTH);
            out[OFF_FLAGS] = out[OFF_FLAGS]! | FLAG_SURB_ID;
          }
        }
      }
    }
    if (recipient === null) throw labelError('ERR_SPHINX_PATH', 'the last hop must carry a recipient');
    return recipient;
  }

  createPacket(path: readonly PathHop[], payload: Uint8Array): Uint8Array {
    const g = this.geometry;
    if (payload.length !== g.forwardPayloadLength) throw labelError('ERR_SPHINX_LENGTH', `payload must be ${g.forwardPayloadLength} bytes`);
    const packet = this.#packets.allocate?.(g.packetLength) ?? new Uint8Array(g.packetLength);
    if (packet.length !== g.packetLength) throw labelError('ERR_SPHINX_LENGTH', 'the allocator gave a packet of the wrong length');
    const recipient = this.#header(path, packet.subarray(0, g.headerLength));
    packet.set(payload, g.headerLength + PAYLOAD_TAG_LENGTH);
    setNumber(packet, this.#packets.number(this.#owner, recipient, false));
    return packet;
  }

  unwrap(_privateKey: Uint8Array, arriving: Uint8Array, into?: Uint8Array): UnwrapResult {
    const g = this.geometry;
    if (arriving.length !== g.packetLength) throw labelError('ERR_SPHINX_LENGTH', 'wrong packet length');
    if (into !== undefined && into.length !== g.packetLength) throw new RangeError(`"into" expected ${g.packetLength} bytes`);
    // Opened in place, in `into` when the caller gives one.
    let packet = arriving;
    if (into !== undefined && into !== arriving) {
      into.set(arriving);
      packet = into;
    }
    if (packetNumber(packet) < 0) throw labelError('ERR_SPHINX_VERSION', 'not a labelled packet');
    const hop = packet[OFF_HOP]!;
    const count = packet[OFF_COUNT]!;
    if (count < 1 || count > g.hops || hop >= count) throw labelError('ERR_SPHINX_COMMAND', 'bad hop index');
    // Unique per packet and hop: the number, the hop index.
    const replayTag = new Uint8Array(REPLAY_TAG_LENGTH);
    for (let i = 0; i < 4; i++) replayTag[i] = packet[OFF_NUMBER + i]!;
    replayTag[4] = hop;
    if (hop + 1 < count) {
      const off = OFF_HOPS + (hop + 1) * HOP_LENGTH;
      const here = OFF_HOPS + hop * HOP_LENGTH + NODE_ID_LENGTH;
      const delayMs = ((packet[here]! << 24) | (packet[here + 1]! << 16) | (packet[here + 2]! << 8) | packet[here + 3]!) >>> 0;
      // Forwarded in place, as the node's own (its received command, which it then sends on as
      // it is): a hop costs no copy, and the next hop's id is a view too.
      packet[OFF_HOP] = hop + 1;
      return { kind: 'forward', nextHop: packet.subarray(off, off + NODE_ID_LENGTH), delayMs, packet, replayTag };
    }
    const at = OFF_HOPS + g.hops * HOP_LENGTH;
    const recipient = packet.slice(at, at + RECIPIENT_ID_LENGTH);
    const hasSurbId = (packet[OFF_FLAGS]! & FLAG_SURB_ID) !== 0;
    const surbId = hasSurbId ? packet.slice(at + RECIPIENT_ID_LENGTH, at + RECIPIENT_ID_LENGTH + SURB_ID_LENGTH) : null;
    const payload = hasSurbId ? packet.slice(g.headerLength) : packet.slice(g.headerLength + PAYLOAD_TAG_LENGTH);
    return { kind: 'final', recipient, surbId, payload, replayTag };
  }

  createSurb(path: readonly PathHop[]): Surb {
    const g = this.geometry;
    const surb = new Uint8Array(g.surbLength);
    this.#header(path, surb.subarray(0, g.headerLength));
    surb.set(path[0]!.id, g.headerLength);
    return { surb, surbKeys: new Uint8Array(SPRP_KEY_MATERIAL_LENGTH * (path.length + 1)) };
  }

  createPacketFromSurb(surb: Uint8Array, payload: Uint8Array): { packet: Uint8Array; firstHop: Uint8Array } {
    const g = this.geometry;
    if (surb.length !== g.surbLength || packetNumber(surb) !== 0) throw labelError('ERR_SPHINX_LENGTH', 'not a labelled SURB');
    if (payload.length !== g.forwardPayloadLength) throw labelError('ERR_SPHINX_LENGTH', `payload must be ${g.forwardPayloadLength} bytes`);
    const packet = new Uint8Array(g.packetLength);
    packet.set(surb.subarray(0, g.headerLength));
    packet.set(payload, g.headerLength + PAYLOAD_TAG_LENGTH);
    const at = OFF_HOPS + g.hops * HOP_LENGTH;
    setNumber(packet, this.#packets.number(this.#owner, packet.slice(at, at + RECIPIENT_ID_LENGTH), true));
    return { packet, firstHop: surb.slice(g.headerLength, g.headerLength + NODE_ID_LENGTH) };
  }

  decryptSurbPayload(payload: Uint8Array, _surbKeys: Uint8Array): Uint8Array {
    const g = this.geometry;
    if (payload.length !== g.payloadLength) throw labelError('ERR_SPHINX_LENGTH', 'wrong SURB payload length');
    if (!isZero(payload.subarray(0, PAYLOAD_TAG_LENGTH))) throw labelError('ERR_SPHINX_TAG', 'SURB payload tag is not zero');
    return payload.slice(PAYLOAD_TAG_LENGTH);
  }
}

function setNumber(packet: Uint8Array, n: number): void {
  writeU32(packet, OFF_NUMBER, n);
}

/** Big-endian, as DataView.setUint32 (which this replaces: no view object per packet). */
function writeU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}
