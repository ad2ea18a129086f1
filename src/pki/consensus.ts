/**
 * Consensus: from the votes an authority holds for epoch E, the document for E. Pure and
 * deterministic: the same set of votes gives the same document, whatever order the votes (or the
 * descriptors inside them) come in, so that every honest authority holding the same votes signs
 * the same bytes.
 *
 * The rule (docs/directory.md): for each node, the descriptor with the most votes (ties broken by
 * the lowest descriptor hash) is listed when at least `threshold` of all configured authorities
 * voted for those exact bytes, the node is accepted (authorized), and the descriptor has a mix key
 * for E. The document carries its keys for E and, when present, E + 1.
 *
 * Portable: no `node:` imports.
 */
import { BackchannelError } from '../errors.js';
import { aint, toHex } from '../util/bytes.js';
import { descriptorHash, mixKeyFor } from './descriptor.js';
import { checkParams, compareBytes, compareNodes } from './document.js';
import type { ConsensusDocument, Descriptor, DocumentNode, MixKey, NetworkParameters } from './types.js';
import type { Vote } from './vote.js';

/** What consensus is computed from. */
export interface ConsensusInput {
  /** The epoch the document is for; every vote must be for it. */
  readonly epoch: number;
  readonly params: NetworkParameters;
  /** Verified votes, at most one per authority. */
  readonly votes: readonly Vote[];
  /** Votes a descriptor needs to be listed, and votes needed at all: a majority of ALL configured authorities. */
  readonly threshold: number;
  /** Which descriptors may be listed (e.g. authorized nodes with the role and layer configured). Default: all. */
  readonly accept?: (descriptor: Descriptor) => boolean;
}

interface Candidate {
  readonly descriptor: Descriptor;
  readonly hash: Uint8Array;
  votes: number;
}

/**
 * Builds the document for `input.epoch`.
 * @throws {BackchannelError} ERR_PKI_THRESHOLD when fewer than `threshold` votes are given;
 *   ERR_PKI_EPOCH when a vote is for another epoch; ERR_PKI_ENCODING for bad parameters.
 * @throws {RangeError} when two votes come from one authority.
 * @example const doc = buildConsensus({ epoch, params, votes, threshold: 2 }); const bytes = encodeDocument(doc);
 */
export function buildConsensus(input: ConsensusInput): ConsensusDocument {
  const { epoch, params, votes, threshold } = input;
  aint('epoch', epoch, 0, Number.MAX_SAFE_INTEGER - 1);
  aint('threshold', threshold, 1, 0xff);
  checkParams(params);
  const voters = new Set<string>();
  for (const v of votes) {
    if (v.epoch !== epoch) throw new BackchannelError('ERR_PKI_EPOCH', `pki: a vote for epoch ${v.epoch} in the consensus for epoch ${epoch}`);
    const id = toHex(v.authority);
    if (voters.has(id)) throw new RangeError('"votes" two votes from one authority');
    voters.add(id);
  }
  if (voters.size < threshold) {
    throw new BackchannelError('ERR_PKI_THRESHOLD', `pki: ${voters.size} votes for epoch ${epoch}, consensus needs ${threshold}`);
  }

  // node identity -> descriptor hash -> candidate
  const byNode = new Map<string, Map<string, Candidate>>();
  for (const v of votes) {
    const seenInVote = new Set<string>();
    for (const { bytes, descriptor } of v.descriptors) {
      const node = toHex(descriptor.identityKey);
      if (seenInVote.has(node)) continue; // verifyVote forbids this; one vote counts once per node regardless
      seenInVote.add(node);
      const hash = descriptorHash(bytes);
      const key = toHex(hash);
      let candidates = byNode.get(node);
      if (candidates === undefined) byNode.set(node, (candidates = new Map()));
      const c = candidates.get(key);
      if (c === undefined) candidates.set(key, { descriptor, hash, votes: 1 });
      else c.votes++;
    }
  }

  const nodes: DocumentNode[] = [];
  for (const candidates of byNode.values()) {
    let best: Candidate | undefined;
    for (const c of candidates.values()) {
      if (best === undefined || c.votes > best.votes || (c.votes === best.votes && compareBytes(c.hash, best.hash) < 0)) best = c;
    }
    if (best === undefined || best.votes < threshold) continue;
    const d = best.descriptor;
    if (input.accept !== undefined && !input.accept(d)) continue;
    if (d.role === 'mix' && d.layer > params.layers) continue;
    const current = mixKeyFor(d, epoch);
    if (current === undefined) continue;
    const next = mixKeyFor(d, epoch + 1);
    const mixKeys: MixKey[] = [current];
    if (next !== undefined) mixKeys.push(next);
    nodes.push({
      name: d.name,
      identityKey: d.identityKey,
      linkKey: d.linkKey,
      role: d.role,
      layer: d.layer,
      tcpAddress: d.tcpAddress,
      wsAddress: d.wsAddress,
      mixKeys,
      ...(d.services !== undefined && d.services.length > 0 ? { services: d.services } : {}),
    });
  }
  nodes.sort(compareNodes);
  return { epoch, params, nodes };
}
