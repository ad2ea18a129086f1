/** The directory authority server. Protocol and HTTP API: docs/directory.md. */
export { startAuthority } from './authority.js';
export type { AuthorityComponents, AuthorityInit, RunningAuthority } from './authority.js';
