/**
 * The directory (PKI): descriptors, votes, consensus documents, their signatures, the HTTP client
 * and the document follower. Encodings and protocol: docs/directory.md.
 *
 * This entry includes the Node-only parts (nodeEd25519, DocumentFollower); a browser imports the
 * portable modules directly (every file here except ed25519-node.ts and follower.ts).
 */
export type * from './types.js';
export { MAX_DESCRIPTOR_MIX_KEYS } from './types.js';
export { Reader, Writer } from './encoding.js';
export type { PrefixWidth } from './encoding.js';
export type { Ed25519 } from './ed25519.js';
export { ED25519_PUBLIC_KEY_LENGTH, ED25519_SEED_LENGTH, ED25519_SIGNATURE_LENGTH, portableEd25519 } from './ed25519.js';
export { nodeEd25519 } from './ed25519-node.js';
export {
  DESCRIPTOR_FORMAT,
  MAX_ADDRESS_LENGTH,
  MAX_DESCRIPTOR_LENGTH,
  MAX_NODE_NAME_LENGTH,
  descriptorHash,
  encodeDescriptorBody,
  isValidTcpAddress,
  isValidWsAddress,
  mixKeyFor,
  signDescriptor,
  verifyDescriptor,
} from './descriptor.js';
export {
  DOCUMENT_FORMAT,
  DOCUMENT_HASH_LENGTH,
  DOCUMENT_MIX_KEYS,
  MAX_DOCUMENT_LENGTH,
  MAX_DOCUMENT_SIGNATURES,
  MAX_SIGNED_DOCUMENT_LENGTH,
  SIGNED_DOCUMENT_FORMAT,
  checkParams,
  compareNodes,
  decodeDocument,
  decodeSignedDocument,
  defaultThreshold,
  documentExpiresAt,
  documentHash,
  encodeDocument,
  encodeSignedDocument,
  epochAt,
  epochStart,
  signDocument,
  signDocumentHash,
  validSignatures,
  verifyDocumentSignature,
  verifySignedDocument,
} from './document.js';
export type { VerifyDocumentOptions } from './document.js';
export {
  MAX_VOTE_LENGTH,
  SIGNATURE_MESSAGE_FORMAT,
  SIGNATURE_MESSAGE_LENGTH,
  VOTE_FORMAT,
  decodeSignatureMessage,
  encodeSignatureMessage,
  signVote,
  verifyVote,
} from './vote.js';
export type { SignatureMessage, VerifyVoteOptions, Vote, VotedDescriptor } from './vote.js';
export { buildConsensus } from './consensus.js';
export type { ConsensusInput } from './consensus.js';
export { DEFAULT_TIMEOUT_MS, fetchDocument, httpRequest, uploadDescriptor } from './client.js';
export type { FetchDocumentOptions, HttpOptions, HttpResponse, Timers, UploadOutcome } from './client.js';
export { DocumentFollower, STALE_DOCUMENT_METRIC, pollIntervalMs } from './follower.js';
export type { DocumentFollowerComponents, DocumentFollowerInit } from './follower.js';
