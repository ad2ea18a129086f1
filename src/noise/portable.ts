/** The Noise API of ./index.ts over @noble/* only: no `node:` imports, for the browser build. */
import { portableNoiseCrypto } from './crypto-portable.js';
import type { Handshake, HandshakeOptions } from './state.js';
import { createHandshakeWith } from './state.js';

export type { Handshake, HandshakeOptions } from './state.js';
export { CipherState, MAX_MESSAGE_LENGTH, createHandshakeWith } from './state.js';
export type { NoiseAead, NoiseCrypto, NoiseHash } from './crypto.js';
export { parseProtocolName, parsePattern, PATTERN_NAMES } from './patterns.js';
export type { CipherName, HashName, HandshakePattern, ProtocolName, Token } from './patterns.js';
export { portableNoiseCrypto } from './crypto-portable.js';

/** Starts a handshake with @noble primitives. Keys are raw: `s` and `e` private, `rs` public. */
export function createHandshake(opts: HandshakeOptions): Handshake {
  return createHandshakeWith(portableNoiseCrypto, opts);
}
