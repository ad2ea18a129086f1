/**
 * Node descriptors: what a mix or gateway says about itself, signed with its Ed25519 identity key.
 * The layout is in docs/directory.md; the node fields are shared with the consensus document
 * (document.ts), so that a document can carry nothing that a descriptor could not.
 *
 * Portable: no `node:` imports.
 */
import { sha512_256 } from '@noble/hashes/sha2.js';
import { BackchannelError } from '../errors.js';
import { abytes, concatBytes, equalBytes } from '../util/bytes.js';
import type { Ed25519 } from './ed25519.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH } from './ed25519.js';
import { Reader, Writer } from './encoding.js';
import type { Descriptor, MixKey, NodeRole, NodeService } from './types.js';
import { MAX_DESCRIPTOR_MIX_KEYS } from './types.js';

/** First byte of a descriptor: the format and its version. */
export const DESCRIPTOR_FORMAT = 0x01;
/**
 * The format of a descriptor that lists services: the format-1 layout with a services byte after
 * the node fields. A node without services still writes format 1, byte for byte as before, so
 * older descriptors decode as they did. (Every format byte names one kind: docs/directory.md.)
 */
export const DESCRIPTOR_FORMAT_SERVICES = 0x06;

/** The services a node may list, by bit of the services byte (bit 0 first). */
export const NODE_SERVICES: readonly NodeService[] = ['rendezvous'];

/** Longest signed descriptor. The largest valid one is under 1 KiB; the rest is headroom for later fields. */
export const MAX_DESCRIPTOR_LENGTH = 4096;

/** Longest node name (types.ts). */
export const MAX_NODE_NAME_LENGTH = 64;
/** Longest TCP address or WebSocket URL, in bytes: a DNS name is at most 253 characters. */
export const MAX_ADDRESS_LENGTH = 255;

/** X25519 link and mix keys. */
export const NODE_KEY_LENGTH = 32;

/** Prepended to the body before signing, so that no other signed object can pass for a descriptor. */
const SIGNATURE_CONTEXT = new TextEncoder().encode('backchannel/descriptor/v1\0');

const ROLE_CODES: Record<NodeRole, number> = { gateway: 0, mix: 1 };
const ROLES_BY_CODE: readonly NodeRole[] = ['gateway', 'mix'];

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const PORT_RE = /^[1-9][0-9]{0,4}$/;
const IPV6_RE = /^\[[0-9A-Fa-f:.]{2,45}\]$/;
const HOSTNAME_RE = /^[A-Za-z0-9.-]{1,253}$/;
const WS_PATH_RE = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;

function invalid(what: string): BackchannelError {
  return new BackchannelError('ERR_PKI_ENCODING', `pki: ${what}`);
}

function saneHost(host: string): boolean {
  if (IPV6_RE.test(host)) return host.includes(':');
  if (!HOSTNAME_RE.test(host)) return false;
  // DNS labels (and IPv4 octets) are non-empty and never start or end with a hyphen.
  return host.split('.').every((label) => label.length > 0 && label.length <= 63 && !label.startsWith('-') && !label.endsWith('-'));
}

function sanePort(port: string): boolean {
  return PORT_RE.test(port) && Number(port) <= 65535;
}

/** True for "host:port" with a DNS name, IPv4 address or bracketed IPv6 address, port 1 to 65535. */
export function isValidTcpAddress(address: string): boolean {
  if (typeof address !== 'string' || address.length === 0 || address.length > MAX_ADDRESS_LENGTH) return false;
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return false;
  return saneHost(address.slice(0, colon)) && sanePort(address.slice(colon + 1));
}

/**
 * True for "ws://host[:port][/path]" or "wss://...", with no user, query or fragment. Checked with
 * plain patterns rather than a URL parser, so that Node and every browser give the same answer.
 */
export function isValidWsAddress(address: string): boolean {
  if (typeof address !== 'string' || address.length > MAX_ADDRESS_LENGTH) return false;
  const scheme = address.startsWith('ws://') ? 5 : address.startsWith('wss://') ? 6 : 0;
  if (scheme === 0) return false;
  const rest = address.slice(scheme);
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  if (slash >= 0 && !WS_PATH_RE.test(rest.slice(slash))) return false;
  if (saneHost(authority)) return true;
  const colon = authority.lastIndexOf(':');
  return colon > 0 && saneHost(authority.slice(0, colon)) && sanePort(authority.slice(colon + 1));
}

/**
 * Checks the fields that descriptors and documents share. `maxKeys` is the most mix keys allowed.
 * @throws {BackchannelError} ERR_PKI_ENCODING naming the first rule broken (never the value).
 */
export function checkNodeFields(node: Descriptor, maxKeys: number): void {
  if (typeof node !== 'object' || node === null) throw invalid('node is not an object');
  if (typeof node.name !== 'string' || !NAME_RE.test(node.name)) throw invalid('node name must be 1 to 64 of [A-Za-z0-9._-]');
  if (!(node.identityKey instanceof Uint8Array) || node.identityKey.length !== ED25519_PUBLIC_KEY_LENGTH) {
    throw invalid('node identity key must be 32 bytes');
  }
  if (!(node.linkKey instanceof Uint8Array) || node.linkKey.length !== NODE_KEY_LENGTH) throw invalid('node link key must be 32 bytes');
  if (node.role === 'gateway') {
    if (node.layer !== 0) throw invalid('a gateway must be in layer 0');
  } else if (node.role === 'mix') {
    if (!Number.isInteger(node.layer) || node.layer < 1 || node.layer > 0xff) throw invalid('a mix must be in a layer from 1 to 255');
    if (node.wsAddress !== null) throw invalid('only a gateway may have a WebSocket address');
  } else {
    throw invalid('node role must be mix or gateway');
  }
  if (!isValidTcpAddress(node.tcpAddress)) throw invalid('node TCP address must be a sane host:port');
  if (node.wsAddress !== null && !isValidWsAddress(node.wsAddress)) throw invalid('node WebSocket address must be a ws:// or wss:// URL');
  const keys = node.mixKeys;
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > maxKeys) throw invalid(`node must carry 1 to ${maxKeys} mix keys`);
  const first = (keys[0] as MixKey).epoch;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as MixKey;
    if (!Number.isSafeInteger(k.epoch) || k.epoch < 0 || k.epoch !== first + i) throw invalid('mix keys must be for consecutive ascending epochs');
    if (!(k.publicKey instanceof Uint8Array) || k.publicKey.length !== NODE_KEY_LENGTH) throw invalid('mix keys must be 32 bytes');
  }
  if (node.services !== undefined) {
    if (!Array.isArray(node.services) || node.services.some((x) => !NODE_SERVICES.includes(x)) || new Set(node.services).size !== node.services.length) {
      throw invalid('node services must be distinct known services');
    }
    if (node.services.length > 0 && node.role !== 'gateway') throw invalid('only a gateway may list services');
  }
}

/** True when the node lists at least one service (and so needs the services byte). */
export function hasServices(node: Pick<Descriptor, 'services'>): boolean {
  return node.services !== undefined && node.services.length > 0;
}

/** The services byte of a node: bit i for NODE_SERVICES[i]. */
export function servicesByte(node: Pick<Descriptor, 'services'>): number {
  let b = 0;
  for (const s of node.services ?? []) b |= 1 << NODE_SERVICES.indexOf(s);
  return b;
}

/** The services of a services byte, in NODE_SERVICES order; undefined for none. */
export function servicesFromByte(b: number): NodeService[] | undefined {
  if (b >> NODE_SERVICES.length !== 0) throw invalid('unknown node service');
  const out = NODE_SERVICES.filter((_, i) => (b & (1 << i)) !== 0);
  return out.length === 0 ? undefined : out;
}

/** Writes the shared node fields (after checking them); with `services`, the services byte after them. */
export function writeNodeFields(w: Writer, node: Descriptor, maxKeys: number, services = false): void {
  checkNodeFields(node, maxKeys);
  w.string(node.name, 1);
  w.raw(node.identityKey);
  w.raw(node.linkKey);
  w.u8(ROLE_CODES[node.role]);
  w.u8(node.layer);
  w.string(node.tcpAddress, 1);
  w.string(node.wsAddress ?? '', 1); // length 0 stands for null: an empty URL is never valid
  w.u8(node.mixKeys.length);
  for (const k of node.mixKeys) w.u64(k.epoch).raw(k.publicKey);
  if (services) w.u8(servicesByte(node));
}

/** Reads and checks the shared node fields; with `services`, the services byte after them. */
export function readNodeFields(r: Reader, maxKeys: number, services = false): Descriptor {
  const name = r.string(1, MAX_NODE_NAME_LENGTH, 'node name');
  const identityKey = r.raw(ED25519_PUBLIC_KEY_LENGTH, 'identity key');
  const linkKey = r.raw(NODE_KEY_LENGTH, 'link key');
  const role = ROLES_BY_CODE[r.u8('role')];
  if (role === undefined) throw invalid('unknown node role');
  const layer = r.u8('layer');
  const tcpAddress = r.string(1, MAX_ADDRESS_LENGTH, 'TCP address');
  const ws = r.string(1, MAX_ADDRESS_LENGTH, 'WebSocket address');
  const count = r.u8('mix key count');
  if (count < 1 || count > maxKeys) throw invalid(`node must carry 1 to ${maxKeys} mix keys`);
  const mixKeys: MixKey[] = [];
  for (let i = 0; i < count; i++) mixKeys.push({ epoch: r.u64('mix key epoch'), publicKey: r.raw(NODE_KEY_LENGTH, 'mix key') });
  const listed = services ? servicesFromByte(r.u8('services')) : undefined;
  const node: Descriptor = { name, identityKey, linkKey, role, layer, tcpAddress, wsAddress: ws === '' ? null : ws, mixKeys, ...(listed === undefined ? {} : { services: listed }) };
  checkNodeFields(node, maxKeys);
  return node;
}

/** The canonical body of a descriptor: what is signed. */
export function encodeDescriptorBody(desc: Descriptor): Uint8Array {
  const services = hasServices(desc);
  const w = new Writer().u8(services ? DESCRIPTOR_FORMAT_SERVICES : DESCRIPTOR_FORMAT);
  writeNodeFields(w, desc, MAX_DESCRIPTOR_MIX_KEYS, services);
  return w.finish();
}

/**
 * Encodes and signs a descriptor: body ‖ Ed25519 signature by `identitySeed`, whose public key must
 * be `desc.identityKey`.
 * @throws {BackchannelError} ERR_PKI_ENCODING when a field breaks a rule; ERR_PKI_SIGNATURE when the
 *   seed is not the descriptor's identity key.
 * @throws {TypeError|RangeError} when the seed is not 32 bytes.
 * @example const bytes = signDescriptor(desc, seed, nodeEd25519);
 */
export function signDescriptor(desc: Descriptor, identitySeed: Uint8Array, ed: Ed25519): Uint8Array {
  abytes('identitySeed', identitySeed, 32);
  const body = encodeDescriptorBody(desc);
  const pub = ed.publicKeyFromSeed(identitySeed);
  if (!(desc.identityKey instanceof Uint8Array) || !equalBytes(pub, desc.identityKey)) throw new BackchannelError('ERR_PKI_SIGNATURE', 'pki: the seed does not belong to the descriptor identity key');
  const out = concatBytes(body, ed.sign(identitySeed, concatBytes(SIGNATURE_CONTEXT, body)));
  if (out.length > MAX_DESCRIPTOR_LENGTH) throw invalid('descriptor too long');
  return out;
}

/**
 * Decodes a signed descriptor and checks its rules and its signature by its own identity key.
 * @throws {BackchannelError} ERR_PKI_ENCODING for a malformed descriptor, ERR_PKI_SIGNATURE for a bad signature.
 * @throws {TypeError} when `bytes` is not a Uint8Array.
 */
export function verifyDescriptor(bytes: Uint8Array, ed: Ed25519): Descriptor {
  abytes('bytes', bytes);
  if (bytes.length > MAX_DESCRIPTOR_LENGTH) throw invalid('descriptor too long');
  if (bytes.length < 1 + ED25519_SIGNATURE_LENGTH) throw invalid('descriptor too short');
  const body = bytes.subarray(0, bytes.length - ED25519_SIGNATURE_LENGTH);
  const signature = bytes.subarray(bytes.length - ED25519_SIGNATURE_LENGTH);
  const r = new Reader(body);
  const format = r.u8('descriptor format');
  if (format !== DESCRIPTOR_FORMAT && format !== DESCRIPTOR_FORMAT_SERVICES) throw invalid('unknown descriptor format');
  const desc = readNodeFields(r, MAX_DESCRIPTOR_MIX_KEYS, format === DESCRIPTOR_FORMAT_SERVICES);
  if (format === DESCRIPTOR_FORMAT_SERVICES && !hasServices(desc)) throw invalid('a services descriptor lists no service');
  r.end('descriptor');
  if (!ed.verify(desc.identityKey, concatBytes(SIGNATURE_CONTEXT, body), signature)) {
    throw new BackchannelError('ERR_PKI_SIGNATURE', `pki: bad signature on the descriptor of node ${desc.name}`);
  }
  return desc;
}

/** SHA-512/256 of a signed descriptor's bytes: how consensus names and orders descriptors. */
export function descriptorHash(bytes: Uint8Array): Uint8Array {
  abytes('bytes', bytes);
  return sha512_256(bytes);
}

/** The descriptor's mix key for `epoch`, or undefined. */
export function mixKeyFor(desc: Pick<Descriptor, 'mixKeys'>, epoch: number): MixKey | undefined {
  return desc.mixKeys.find((k) => k.epoch === epoch);
}
