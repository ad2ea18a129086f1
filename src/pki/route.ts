/**
 * Routes through the stratified topology of a consensus document, as Sphinx paths: the sender's
 * gateway, one mix per layer, the recipient's gateway. Portable: no `node:` imports.
 */
import { BackchannelError } from '../errors.js';
import { mixKeyFor } from './descriptor.js';
import type { ConsensusDocument, DocumentNode } from './types.js';
import type { PathHop } from '../sphinx/sphinx.js';
import type { RoutingCommand } from '../sphinx/commands.js';

/** A uniform integer in [0, n): the caller's CSPRNG (or a seeded one in tests). */
export type RandomInt = (n: number) => number;

/** A RandomInt over a source of random bytes, without modulo bias. */
export function randomIntFrom(randomBytes: (n: number) => Uint8Array): RandomInt {
  return (n) => {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError('"n" expected an integer in [1, 2^32]');
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const b = randomBytes(4);
      const v = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      if (v < limit) return v % n;
    }
  };
}

function routeError(message: string): BackchannelError {
  return new BackchannelError('ERR_SPHINX_PATH', `route: ${message}`);
}

/** The node's mix key for `epoch`. @throws {BackchannelError} ERR_SPHINX_PATH when it has none. */
export function mixPublicKey(node: DocumentNode, epoch: number): Uint8Array {
  const k = mixKeyFor(node, epoch);
  if (k === undefined) throw routeError(`node ${node.name} has no mix key for epoch ${epoch}`);
  return k.publicKey;
}

/** The mixes of `layer` in a document. */
export function layer(doc: ConsensusDocument, n: number): DocumentNode[] {
  return doc.nodes.filter((x) => x.role === 'mix' && x.layer === n);
}

export function gateways(doc: ConsensusDocument): DocumentNode[] {
  return doc.nodes.filter((x) => x.role === 'gateway');
}

/**
 * The mixes of every layer (index 0 is layer 1), by document: a sender chooses a path for every
 * packet, and a document does not change once made, so its layers are sorted out once.
 */
const layersByDocument = new WeakMap<ConsensusDocument, readonly (readonly DocumentNode[])[]>();

function layersOf(doc: ConsensusDocument): readonly (readonly DocumentNode[])[] {
  let layers = layersByDocument.get(doc);
  if (layers === undefined) {
    layers = Array.from({ length: doc.params.layers }, (_, i) => layer(doc, i + 1));
    layersByDocument.set(doc, layers);
  }
  return layers;
}

/** One random mix per layer, in layer order. @throws {BackchannelError} ERR_SPHINX_PATH for an empty layer. */
export function chooseMixes(doc: ConsensusDocument, rand: RandomInt): DocumentNode[] {
  const out: DocumentNode[] = [];
  const layers = layersOf(doc);
  for (let l = 1; l <= doc.params.layers; l++) {
    const nodes = layers[l - 1]!;
    if (nodes.length === 0) throw routeError(`layer ${l} is empty`);
    out.push(nodes[rand(nodes.length)]!);
  }
  return out;
}

export interface Destination {
  /** The 32-byte mailbox id at the last hop. */
  readonly recipient: Uint8Array;
  /** Set for a SURB: the 16-byte id the reply will carry. */
  readonly surbId?: Uint8Array;
}

/**
 * Sphinx path hops for `nodes` (the last one ends the route at `dest`), each hop but the last
 * holding the packet `delaysMs[i]` milliseconds.
 * @throws {BackchannelError} ERR_SPHINX_PATH when a node lacks a key for `epoch` or the delays do not fit.
 */
export function pathHops(nodes: readonly DocumentNode[], epoch: number, delaysMs: readonly number[], dest: Destination): PathHop[] {
  if (nodes.length === 0) throw routeError('empty route');
  if (delaysMs.length !== nodes.length - 1) throw routeError('one delay per hop but the last is needed');
  return nodes.map((node, i) => {
    const commands: RoutingCommand[] = [];
    if (i < nodes.length - 1) {
      const d = delaysMs[i]!;
      if (d > 0) commands.push({ type: 'nodeDelay', delayMs: d });
    } else {
      commands.push({ type: 'recipient', id: dest.recipient });
      if (dest.surbId !== undefined) commands.push({ type: 'surbReply', id: dest.surbId });
    }
    return { id: node.identityKey, publicKey: mixPublicKey(node, epoch), commands };
  });
}
