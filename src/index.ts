/**
 * The package entry (`import { Sphinx, createHandshake } from 'backchannel'`): the protocol
 * libraries, each also published on its own subpath. Sphinx packets, AEZ, the crypto backends,
 * Noise, wire commands and the directory (PKI).
 *
 * This entry is for Node: it includes the native backends (sodium-native, node:crypto) and the
 * PKI document follower (prom-client). A browser imports the portable subpaths instead
 * (`backchannel/sphinx`, `/aez`, `/wire`, `/crypto/portable`, `/noise/portable`).
 *
 * The libraries share no export name; should two ever do, `export *` stops compiling (TS2308)
 * rather than dropping one.
 * @module
 */
export * from './sphinx/index.js';
export * from './aez/index.js';
export * from './crypto/index.js';
export * from './noise/index.js';
export * from './wire/index.js';
export * from './pki/index.js';
