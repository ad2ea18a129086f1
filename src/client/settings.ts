/**
 * The client's identity as it sits in the store's settings: its link private key (whose public
 * key is its mailbox id), its gateway, and the directory authorities it trusts. `client init`
 * writes them once; every later command reads them. Portable: no `node:` imports.
 *
 *     link_private_key   32 bytes: X25519 private key
 *     gateway            32 bytes: the gateway's Ed25519 identity key
 *     network            UTF-8 JSON {"authorities": [{"name", "identityKey" (hex), "url"}], "threshold"}
 *     gateway_contact    UTF-8 JSON {"name", "linkKey" (hex), "tcpAddress", "wsAddress" (or null), "params"}:
 *                        how `client run` reaches its gateway, and the network's parameters (the
 *                        wire length), before it has a document; the directory then comes from
 *                        the gateway (docs/client.md)
 */
import { BackchannelError, isBackchannelError } from '../errors.js';
import { authorities as parseAuthorities, hostPort, name as parseName, object, publicKey, required, string, threshold as parseThreshold } from '../config/_validate.js';
import { paramsToJson, parseParams } from '../config/params.js';
import type { CryptoBackend } from '../crypto/types.js';
import type { AuthorityInfo, DocumentNode, NetworkParameters } from '../pki/types.js';
import { toHex } from '../util/bytes.js';
import { encodeAddress } from './address.js';
import type { ClientStore } from './store.js';

export const SETTING_LINK_PRIVATE_KEY = 'link_private_key';
export const SETTING_GATEWAY = 'gateway';
export const SETTING_NETWORK = 'network';
export const SETTING_GATEWAY_CONTACT = 'gateway_contact';

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
  /** How to reach the gateway before there is a document; null for a client made before it was recorded. */
  readonly contact: GatewayContact | null;
}

/** Our gateway as `client init` found it, and the network's parameters. */
export interface GatewayContact {
  readonly name: string;
  readonly linkKey: Uint8Array;
  readonly tcpAddress: string;
  readonly wsAddress: string | null;
  readonly params: NetworkParameters;
}

/** The contact's bytes in the store. */
export function encodeGatewayContact(c: GatewayContact): Uint8Array {
  const json = { name: c.name, linkKey: toHex(c.linkKey), tcpAddress: c.tcpAddress, wsAddress: c.wsAddress, params: paramsToJson(c.params) };
  return new TextEncoder().encode(JSON.stringify(json));
}

/**
 * Parses the gateway contact setting with the config checks.
 * @throws {BackchannelError} ERR_CLIENT_STATE when it is not valid.
 */
export function decodeGatewayContact(bytes: Uint8Array): GatewayContact {
  if (bytes.length > MAX_NETWORK_SETTING) throw stateError('the stored gateway contact is too long');
  try {
    const json: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    const o = object('gateway', json, ['name', 'linkKey', 'tcpAddress', 'wsAddress', 'params']);
    const ws = required(o, 'gateway', 'wsAddress', 'a URL or null');
    return {
      name: parseName('gateway.name', required(o, 'gateway', 'name', 'a name')),
      linkKey: publicKey('gateway.linkKey', required(o, 'gateway', 'linkKey', 'a key in hex')),
      tcpAddress: hostPort('gateway.tcpAddress', required(o, 'gateway', 'tcpAddress', 'host:port')),
      wsAddress: ws === null ? null : string('gateway.wsAddress', ws),
      params: parseParams('gateway.params', required(o, 'gateway', 'params', 'the network parameters')),
    };
  } catch (e) {
    if (isBackchannelError(e, 'ERR_CONFIG')) throw stateError(`the stored gateway contact is invalid (${e.message.replace(/^config: /, '')})`);
    throw stateError('the stored gateway contact is not valid JSON');
  }
}

/**
 * Records our gateway's entry in `doc` and the document's parameters as the contact for the next
 * start, when they differ from what is stored (the gateway moved, the parameters changed).
 * Returns true when it wrote. Nothing is written when the document does not list our gateway.
 */
export function refreshGatewayContact(store: ClientStore, identity: Pick<ClientIdentity, 'gateway'>, doc: { readonly params: NetworkParameters; readonly nodes: readonly DocumentNode[] }): boolean {
  const n = doc.nodes.find((x) => x.role === 'gateway' && toHex(x.identityKey) === toHex(identity.gateway));
  if (n === undefined) return false;
  const fresh = encodeGatewayContact({ name: n.name, linkKey: n.linkKey, tcpAddress: n.tcpAddress, wsAddress: n.wsAddress, params: doc.params });
  const stored = store.getSetting(SETTING_GATEWAY_CONTACT);
  if (stored !== null && toHex(stored) === toHex(fresh)) return false;
  decodeGatewayContact(fresh);
  store.setSetting(SETTING_GATEWAY_CONTACT, fresh);
  return true;
}

/** The document entry the engine links to before it has a document: our gateway as recorded. */
export function contactNode(identity: Pick<ClientIdentity, 'gateway'>, c: GatewayContact): DocumentNode {
  return { name: c.name, identityKey: identity.gateway, linkKey: c.linkKey, role: 'gateway', layer: 0, tcpAddress: c.tcpAddress, wsAddress: c.wsAddress, mixKeys: [] };
}

function stateError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_STATE', `client state: ${message}`);
}

export const NOT_INITIALISED_MESSAGE = 'client state: not initialised; run `npx backchannel client init`';

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
  const contact = identity.contact === null ? null : encodeGatewayContact(identity.contact);
  if (contact !== null) decodeGatewayContact(contact);
  store.transaction(() => {
    store.setSetting(SETTING_GATEWAY, identity.gateway);
    store.setSetting(SETTING_NETWORK, network);
    if (contact !== null) store.setSetting(SETTING_GATEWAY_CONTACT, contact);
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
  const contact = store.getSetting(SETTING_GATEWAY_CONTACT);
  return { linkPrivateKey, gateway, authorities, threshold, contact: contact === null ? null : decodeGatewayContact(contact) };
}

/** Our address: the gateway and the mailbox id (the link public key). */
export function clientAddress(crypto: Pick<CryptoBackend, 'hmacSha256' | 'x25519Base'>, identity: Pick<ClientIdentity, 'linkPrivateKey' | 'gateway'>): string {
  return encodeAddress(crypto, { gateway: identity.gateway, mailbox: crypto.x25519Base(identity.linkPrivateKey) });
}
