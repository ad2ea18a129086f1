/**
 * The messaging layer's sessions: identities, bundles, deniable X3DH set-up with ML-KEM-768, and
 * the Double Ratchet with header encryption and a post-quantum ratchet. Portable: no `node:`
 * imports; the crypto backend and the clock are passed in. See docs/messaging.md.
 */
export * from './constants.js';
export { hkdf, kdfChain, kdfRoot, kdfX3dh } from './kdf.js';
export { type KemKeyPair, kemDecapsulate, kemEncapsulate, kemGenerate, kemKeyPairFromSeed } from './kem.js';
export {
  BUNDLE_LENGTH,
  type Bundle,
  type Identity,
  MAX_PREKEYS,
  type PrekeyStore,
  createBundle,
  createPrekeyStore,
  decodeBundle,
  decodeIdentity,
  decodePrekeyStore,
  encodeBundle,
  encodeIdentity,
  encodePrekeyStore,
  generateIdentity,
  wipeIdentity,
} from './identity.js';
export { type MessagingComponents, Session } from './ratchet.js';
export { type Accepted, acceptSession, initiateSession } from './x3dh.js';
export { CARD_LENGTH, type Card, type MailAddress, cardFromText, cardToText, decodeCard, encodeCard } from './card.js';
export * from './content.js';
export { compareBytes, safetyNumber } from './safety.js';
export * from './store.js';
export * from './messenger.js';
