/**
 * A mix node: accepts links only from the previous layer (layer 1: from gateways), unwraps each
 * packet, drops replays, holds it for the delay its routing command names, and forwards it to
 * the next layer (the last layer: to gateways). The stages are in src/server/node.ts.
 */
import { PacketNode } from './node.js';
import type { PacketNodeComponents, PacketNodeInit } from './node.js';

/**
 * Builds a mix node; `start()` it.
 * @throws {RangeError} when the role is not mix or the layer is outside [1, layers].
 */
export function createMixNode(init: PacketNodeInit, components: PacketNodeComponents): PacketNode {
  if (init.role !== 'mix' || init.layer < 1 || init.layer > init.params.layers) {
    throw new RangeError(`mix: layer must be in [1, ${init.params.layers}]`);
  }
  return new PacketNode(init, components, null);
}
