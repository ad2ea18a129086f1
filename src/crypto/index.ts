/** The crypto backends. Node code takes `nodeBackend`; the browser build takes `portableBackend`. */
export type { CryptoBackend } from './types.js';
export { nodeBackend } from './node.js';
export { portableBackend } from './portable.js';
