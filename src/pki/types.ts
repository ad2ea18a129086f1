/**
 * The directory's data model: what a node says about itself (a descriptor), and what the
 * authorities publish each epoch (the consensus document). Encodings live in descriptor.ts and
 * document.ts; this file holds only the shapes.
 */

/** What a node does in the network. Authorities are not listed in documents as nodes. */
export type NodeRole = 'mix' | 'gateway';

/** An X25519 mix (Sphinx) public key for one epoch. */
export interface MixKey {
  readonly epoch: number;
  readonly publicKey: Uint8Array;
}

/** What a node uploads to the authorities, signed with its Ed25519 identity key. */
export interface Descriptor {
  /** The operator's label for the node: 1 to 64 characters of [A-Za-z0-9._-]. */
  readonly name: string;
  /** Ed25519 public key (32 bytes). Also the node's Sphinx node id (NextNodeHop names it). */
  readonly identityKey: Uint8Array;
  /** X25519 public key (32 bytes): the static key of its Noise XK links. */
  readonly linkKey: Uint8Array;
  readonly role: NodeRole;
  /** 1..layers for a mix; 0 for a gateway. */
  readonly layer: number;
  /** Where other nodes and clients connect: "host:port" (TCP). */
  readonly tcpAddress: string;
  /** WebSocket URL for browser clients ("ws://host:port/link"), gateways only; null when none. */
  readonly wsAddress: string | null;
  /** Mix keys for consecutive epochs, ascending, 1 to MAX_DESCRIPTOR_MIX_KEYS of them. */
  readonly mixKeys: readonly MixKey[];
  /**
   * Services the node offers besides its role, gateways only: 'rendezvous' (contacts by code,
   * docs/messaging.md). Absent or empty for none; encoded only when present (descriptor.ts).
   */
  readonly services?: readonly NodeService[];
}

/** A service a gateway may list (types.ts Descriptor.services). */
export type NodeService = 'rendezvous';

/** The most mix keys a descriptor carries (the current epoch and the ones published ahead). */
export const MAX_DESCRIPTOR_MIX_KEYS = 4;

/** The network's parameters, carried in every document so that clients need no other config. */
export interface NetworkParameters {
  /** Length of an epoch in milliseconds. Epoch n covers [n·period, (n+1)·period) since the Unix epoch. */
  readonly epochPeriodMs: number;
  /** Sphinx geometry: hops, user payload bytes, whether a SURB is carried. */
  readonly hops: number;
  readonly userPayloadLength: number;
  readonly withSurb: boolean;
  /** Number of mix layers. */
  readonly layers: number;
  /** Mean per-hop delay a client should draw (exponential), in milliseconds: 1/mu in Loopix. */
  readonly mixMeanDelayMs: number;
  /** Client Poisson rates, per second: real-or-drop sends (lambda_P), loop cover (lambda_L). */
  readonly sendRatePerS: number;
  readonly loopRatePerS: number;
  /** Constant rate at which clients fetch their mailbox, per second. */
  readonly fetchRatePerS: number;
  /**
   * A gateway's own packets into layer 1 (acknowledgements, or cover in their place), per second
   * and per linked client: a Poisson rate that does not depend on what its clients send or receive.
   */
  readonly gatewayRatePerClientPerS: number;
}

/**
 * A node as the document lists it: its descriptor's fields, with `mixKeys` narrowed to the keys
 * for the document's epoch and, when published, the next.
 */
export type DocumentNode = Descriptor;

/** One epoch's consensus: the same bytes at every honest authority. */
export interface ConsensusDocument {
  readonly epoch: number;
  readonly params: NetworkParameters;
  /** Sorted: gateways first, then mixes by layer; within each, by identity key bytes. */
  readonly nodes: readonly DocumentNode[];
}

/** An authority's Ed25519 signature over a document's canonical bytes. */
export interface DocumentSignature {
  readonly authority: Uint8Array;
  readonly signature: Uint8Array;
}

/** A document with the signatures collected for it. */
export interface SignedDocument {
  readonly document: ConsensusDocument;
  /** The canonical encoding of `document`: what is hashed and signed. */
  readonly bytes: Uint8Array;
  readonly signatures: readonly DocumentSignature[];
}

/** An authority as nodes, clients and its peers know it. */
export interface AuthorityInfo {
  readonly name: string;
  /** Ed25519 public key that signs votes and documents. */
  readonly identityKey: Uint8Array;
  /** Base URL of its HTTP API, e.g. "http://127.0.0.1:7001". */
  readonly url: string;
}
