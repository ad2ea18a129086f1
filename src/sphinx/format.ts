/**
 * What a packet format offers the nodes and the client: Sphinx (src/sphinx/sphinx.ts) in the
 * network, and labelled packets (src/sim/labelled.ts) in the simulator, which carry their route
 * in clear so that millions of hops cost no cryptography. Code that builds or opens packets takes
 * a PacketFormat (through a PacketFormatFactory) and never knows which one it holds.
 * Portable: no `node:` imports.
 */
import type { Geometry } from './geometry.js';
import type { PreparedHeader } from './header-keys.js';
import type { PathHop, Surb, UnwrapResult } from './sphinx.js';

export interface PacketFormat {
  readonly geometry: Geometry;
  /**
   * A packet that travels `path` and delivers `payload` (forwardPayloadLength bytes); with
   * `prepared`, its header's keys made ahead of time (Sphinx uses them; a format without keys
   * ignores them). The entry is wiped.
   */
  createPacket(path: readonly PathHop[], payload: Uint8Array, prepared?: PreparedHeader): Uint8Array;
  /**
   * One hop's view of a packet, opened with the hop's mix private key. A format may open the
   * packet in place and return it as the forward packet (labelled packets do; Sphinx does when
   * `into` is the packet): the caller hands over a packet it owns. With `into` (packetLength
   * bytes), the forward packet or the final payload (at the header's length in) is written there.
   */
  unwrap(privateKey: Uint8Array, packet: Uint8Array, into?: Uint8Array): UnwrapResult;
  /** A single-use reply block for `path`, and the keys that read the reply; `prepared` as in createPacket. */
  createSurb(path: readonly PathHop[], prepared?: PreparedHeader): Surb;
  /** The reply packet a SURB makes for `payload`, and the id of its first hop. */
  createPacketFromSurb(surb: Uint8Array, payload: Uint8Array): { packet: Uint8Array; firstHop: Uint8Array };
  /** The payload of a reply, read with the keys its SURB's creator kept. */
  decryptSurbPayload(payload: Uint8Array, surbKeys: Uint8Array): Uint8Array;
}

/** Makes the packet format for a geometry (the network's, which a new consensus may change). */
export type PacketFormatFactory = (geometry: Geometry) => PacketFormat;
