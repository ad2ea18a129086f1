/**
 * The client's identity as it sits in the store's settings: its link private key (whose public
 * key is its mailbox id), its gateway, and the directory authorities it trusts. `client init`
 * writes them once; every later command reads them. Portable: no `node:` imports.
 *
 *     link_private_key   32 bytes: X25519 private key
 *     gateway            32 bytes: the gateway's Ed25519 identity key
 *     network            UTF-8 JSON {"authorities": [{"name", "identityKey" (hex), "url"}], "threshold"}
 */
import { BackchannelError, isBackchannelError } from '../errors.js';
import { authorities as parseAuthorities, object, required, threshold as parseThreshold } from '../config/_validate.js';
import type { CryptoBackend } from '../crypto/types.js';
import type { AuthorityInfo } from '../pki/types.js';
import { toHex } from '../util/bytes.js';
import { encodeAddress } from './address.js';
import type { ClientStore } from './store.js';

export const SETTING_LINK_PRIVATE_KEY = 'link_private_key';
export const SETTING_GATEWAY = 'gateway';
export const SETTING_NETWORK = 'network';

const KEY_LENGTH = 32;
/** The longest network setting read back: a guard against a corrupt store. */
const MAX_NETWORK_SETTING = 256 * 1024;

export interface ClientIdentity {
  /** X25519 private key of our links; its public key is our mailbox id. */
  readonly linkPrivateKey: Uint8Array;
  /** Our gateway's Ed25519 identity key. */
  readonly gateway: Uint8Array;
  readonly authorities: readonly AuthorityInfo[];
  /** Valid authority signatures a document needs. */
  readonly threshold: number;
}

function stateError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_STATE', `client state: ${message}`);
}

export const NOT_INITIALISED_MESSAGE = 'client state: not initialised; run `backchannel client init`';

/** True when the store holds a link key (init completed: every setting is written in one transaction). */
export function isInitialised(store: ClientStore): boolean {
  return store.getSetting(SETTING_LINK_PRIVATE_KEY) !== null;
}

/** The network setting's bytes for `authorities` and `threshold`. */
export function encodeNetworkSetting(authorities: readonly AuthorityInfo[], threshold: number): Uint8Array {
  const json = { authorities: authorities.map((a) => ({ name: a.name, identityKey: toHex(a.identityKey), url: a.url })), threshold };
  return new TextEncoder().encode(JSON.stringify(json));
}

/**
 * Parses the network setting with the config checks (names, keys, URLs, a threshold of at least a majority).
 * @throws {BackchannelError} ERR_CLIENT_STATE when it is not valid.
 */
export function decodeNetworkSetting(bytes: Uint8Array): { authorities: AuthorityInfo[]; threshold: number } {
  if (bytes.length > MAX_NETWORK_SETTING) throw stateError('the stored network setting is too long');
  try {
    const json: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    const o = object('network', json, ['authorities', 'threshold']);
    const authorities = parseAuthorities('network.authorities', required(o, 'network', 'authorities', 'an array of {name, identityKey, url}'));
    const threshold = parseThreshold('network.threshold', required(o, 'network', 'threshold', 'a number'), authorities.length);
    return { authorities, threshold };
  } catch (e) {
    if (isBackchannelError(e, 'ERR_CONFIG')) throw stateError(`the stored network setting is invalid (${e.message.replace(/^config: /, '')})`);
    throw stateError('the stored network setting is not valid JSON');
  }
}

/** Writes every setting of a new client in one transaction. */
export function saveClientIdentity(store: ClientStore, identity: ClientIdentity): void {
  if (identity.linkPrivateKey.length !== KEY_LENGTH || identity.gateway.length !== KEY_LENGTH) throw new RangeError('client: the link key and the gateway key must be 32 bytes each');
  const network = encodeNetworkSetting(identity.authorities, identity.threshold);
  decodeNetworkSetting(network); // refuse to store what could not be read back
  store.transaction(() => {
    store.setSetting(SETTING_GATEWAY, identity.gateway);
    store.setSetting(SETTING_NETWORK, network);
    store.setSetting(SETTING_LINK_PRIVATE_KEY, identity.linkPrivateKey);
  });
}

/**
 * The identity `client init` stored.
 * @throws {BackchannelError} ERR_CLIENT_STATE when the store holds none (not initialised) or a damaged one.
 */
export function readClientIdentity(store: ClientStore): ClientIdentity {
  const linkPrivateKey = store.getSetting(SETTING_LINK_PRIVATE_KEY);
  const gateway = store.getSetting(SETTING_GATEWAY);
  const network = store.getSetting(SETTING_NETWORK);
  if (linkPrivateKey === null || gateway === null || network === null) throw new BackchannelError('ERR_CLIENT_STATE', NOT_INITIALISED_MESSAGE);
  if (linkPrivateKey.length !== KEY_LENGTH) throw stateError(`the stored link key is not ${KEY_LENGTH} bytes`);
  if (gateway.length !== KEY_LENGTH) throw stateError(`the stored gateway key is not ${KEY_LENGTH} bytes`);
  const { authorities, threshold } = decodeNetworkSetting(network);
  return { linkPrivateKey, gateway, authorities, threshold };
}

/** Our address: the gateway and the mailbox id (the link public key). */
export function clientAddress(crypto: Pick<CryptoBackend, 'hmacSha256' | 'x25519Base'>, identity: Pick<ClientIdentity, 'linkPrivateKey' | 'gateway'>): string {
  return encodeAddress(crypto, { gateway: identity.gateway, mailbox: crypto.x25519Base(identity.linkPrivateKey) });
}
