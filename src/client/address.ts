/**
 * Client addresses: what a user gives a correspondent so that they can write. An address names
 * the recipient's gateway (its Ed25519 identity key, the Sphinx node id of the last hop) and the
 * mailbox there (the recipient's 32-byte link public key), with a 4-byte checksum against typos:
 *
 *     "bc1" ‖ base64url( gateway (32) ‖ mailbox (32) ‖ checksum (4) )      94 characters
 *
 * checksum = the first 4 bytes of HMAC-SHA256("backchannel address v1", gateway ‖ mailbox). The
 * prefix keeps an address from starting with "-" on a command line. Portable: no `node:` imports.
 */
import { BackchannelError } from '../errors.js';
import type { CryptoBackend } from '../crypto/types.js';
import { concatBytes, equalBytes } from '../util/bytes.js';

export const ADDRESS_PREFIX = 'bc1';
const KEY_LENGTH = 32;
const CHECKSUM_LENGTH = 4;
const RAW_LENGTH = 2 * KEY_LENGTH + CHECKSUM_LENGTH;
const CHECKSUM_KEY = new TextEncoder().encode('backchannel address v1');
const B64URL = /^[A-Za-z0-9_-]+$/;

export interface Address {
  /** The gateway's Ed25519 identity key. */
  readonly gateway: Uint8Array;
  /** The mailbox id at that gateway: the client's X25519 link public key. */
  readonly mailbox: Uint8Array;
}

function addressError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_ADDRESS', `address: ${message}`);
}

function checksum(crypto: Pick<CryptoBackend, 'hmacSha256'>, body: Uint8Array): Uint8Array {
  return crypto.hmacSha256(CHECKSUM_KEY, body).subarray(0, CHECKSUM_LENGTH);
}

function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The text form of an address. */
export function encodeAddress(crypto: Pick<CryptoBackend, 'hmacSha256'>, address: Address): string {
  if (address.gateway.length !== KEY_LENGTH || address.mailbox.length !== KEY_LENGTH) throw addressError('gateway and mailbox must be 32 bytes each');
  const body = concatBytes(address.gateway, address.mailbox);
  return ADDRESS_PREFIX + toBase64Url(concatBytes(body, checksum(crypto, body)));
}

/**
 * Parses an address. Surrounding white space is ignored.
 * @throws {BackchannelError} ERR_CLIENT_ADDRESS for a wrong prefix, length, alphabet or checksum
 *   (the message never echoes the input).
 */
export function decodeAddress(crypto: Pick<CryptoBackend, 'hmacSha256'>, text: string): Address {
  if (typeof text !== 'string') throw addressError('expected a string');
  const t = text.trim();
  if (!t.startsWith(ADDRESS_PREFIX)) throw addressError(`an address starts with "${ADDRESS_PREFIX}"`);
  const rest = t.slice(ADDRESS_PREFIX.length);
  if (!B64URL.test(rest)) throw addressError('an address holds only the letters A-Z, a-z, digits, "-" and "_" after its prefix');
  const textLength = Math.ceil((RAW_LENGTH * 4) / 3);
  if (rest.length !== textLength) throw addressError(`an address is ${ADDRESS_PREFIX.length + textLength} characters long`);
  const raw = fromBase64Url(rest);
  if (raw.length !== RAW_LENGTH || toBase64Url(raw) !== rest) throw addressError('not a valid address encoding');
  const body = raw.subarray(0, 2 * KEY_LENGTH);
  if (!equalBytes(checksum(crypto, body), raw.subarray(2 * KEY_LENGTH))) throw addressError('checksum mismatch (a mistyped or truncated address?)');
  return { gateway: raw.slice(0, KEY_LENGTH), mailbox: raw.slice(KEY_LENGTH, 2 * KEY_LENGTH) };
}
