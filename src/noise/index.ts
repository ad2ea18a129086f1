/**
 * The Noise Protocol Framework (revision 34): every fundamental and deferred handshake pattern,
 * psk modifiers, X25519 with ChaChaPoly or AESGCM and SHA256, SHA512, BLAKE2s or BLAKE2b.
 *
 *   const hs = createHandshake({ protocolName: 'Noise_XK_25519_ChaChaPoly_BLAKE2b', initiator: true, s, rs });
 *   const m1 = hs.writeMessage(); ... hs.readMessage(m2); ... const [send, recv] = hs.split();
 *
 * This entry uses native primitives (sodium-native, node:crypto); `./portable.js` is the same API
 * over @noble for the browser.
 */
import { nodeNoiseCrypto } from './crypto-node.js';
import type { Handshake, HandshakeOptions } from './state.js';
import { createHandshakeWith } from './state.js';

export type { Handshake, HandshakeOptions } from './state.js';
export { CipherState, MAX_MESSAGE_LENGTH, createHandshakeWith } from './state.js';
export type { NoiseAead, NoiseCrypto, NoiseHash } from './crypto.js';
export { parseProtocolName, parsePattern, PATTERN_NAMES } from './patterns.js';
export type { CipherName, HashName, HandshakePattern, ProtocolName, Token } from './patterns.js';
export { nodeNoiseCrypto } from './crypto-node.js';
export { portableNoiseCrypto } from './crypto-portable.js';

/** Starts a handshake with native primitives. Keys are raw: `s` and `e` private, `rs` public. */
export function createHandshake(opts: HandshakeOptions): Handshake {
  return createHandshakeWith(nodeNoiseCrypto, opts);
}
