/** Sphinx, byte-compatible with Katzenpost's X25519 NIKE Sphinx. Portable: no `node:` imports. */
export { Sphinx } from './sphinx.js';
export type { PathHop, Surb, UnwrapResult } from './sphinx.js';
export { decodeCommands, encodeCommand, encodeCommands } from './commands.js';
export type { RoutingCommand } from './commands.js';
export { defaultGeometry, geometryFromForwardPayload, geometryFromUserPayload, DEFAULT_HOPS, DEFAULT_USER_PAYLOAD_LENGTH } from './geometry.js';
export type { Geometry } from './geometry.js';
export * as constants from './constants.js';
