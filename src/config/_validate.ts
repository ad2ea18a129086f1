/**
 * Strict readers for JSON configuration: each takes the field's path (`mix.limits.maxDelayMs`)
 * and its value, and returns the typed value or throws ERR_CONFIG with a message that names the
 * path and what was expected. Values are echoed only where they cannot be a key, an address or a
 * URL (DESIGN.md: errors carry no keys and no addresses). Portable: no `node:` imports, so that a
 * browser client can read a network file with the same checks.
 */
import { BackchannelError } from '../errors.js';
import type { AuthorityInfo } from '../pki/types.js';
import { equalBytes, fromHex } from '../util/bytes.js';

/** A JSON object as JSON.parse returns it. */
export type JsonObject = Record<string, unknown>;

/** Throws ERR_CONFIG: `config: <path> must be <expected>, got <got>`. */
export function fail(path: string, expected: string, got?: string): never {
  throw new BackchannelError('ERR_CONFIG', `config: ${path} must be ${expected}${got === undefined ? '' : `, got ${got}`}`);
}

/** Longest string echoed back in a message; longer ones are cut. */
const ECHO_LENGTH = 24;

/**
 * A short description of a value for an error message. Strings are quoted only when `echo` is
 * set, so that keys, addresses and URLs never reach a message.
 */
export function describe(value: unknown, echo = true): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') {
    if (!echo) return `a string of ${value.length} characters`;
    return value.length <= ECHO_LENGTH ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, ECHO_LENGTH))}...`;
  }
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The closest of `candidates` to `word` within two edits (case-insensitive), for "did you mean". */
function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64 || b.length > 64) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Checks that `value` is a plain JSON object whose fields are all in `allowed` (a typo is an
 * error, not a silently ignored field); `elsewhere` explains a field that another role has.
 */
export function object(path: string, value: unknown, allowed: readonly string[], elsewhere: Readonly<Record<string, string>> = {}): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'an object', describe(value, false));
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const shown = describe(key);
    const note = Object.hasOwn(elsewhere, key) ? elsewhere[key] : undefined;
    if (note !== undefined) throw new BackchannelError('ERR_CONFIG', `config: ${path}.${key} is not a field here (${note})`);
    const hint = closest(key, allowed);
    throw new BackchannelError('ERR_CONFIG', `config: ${path} has an unknown field ${shown}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`);
  }
  return value as JsonObject;
}

/** The field's value, or undefined when absent. Own properties only: `__proto__` is just a name. */
export function field(obj: JsonObject, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** Throws unless the field is present. */
export function required(obj: JsonObject, path: string, key: string, expected: string): unknown {
  const v = field(obj, key);
  if (v === undefined) throw new BackchannelError('ERR_CONFIG', `config: ${path}.${key} is required (${expected})`);
  return v;
}

export function integer(path: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) fail(path, `an integer in [${min}, ${max}]`, describe(value));
  return value;
}

/** A finite number in (min, max] when `exclusiveMin`, else [min, max]. */
export function number(path: string, value: unknown, min: number, max: number, exclusiveMin = false): number {
  const ok = typeof value === 'number' && Number.isFinite(value) && (exclusiveMin ? value > min : value >= min) && value <= max;
  if (!ok) fail(path, `a number in ${exclusiveMin ? '(' : '['}${min}, ${max}]`, describe(value));
  return value as number;
}

export function boolean(path: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(path, 'true or false', describe(value));
  return value;
}

export function oneOf<T extends string>(path: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    fail(path, `one of ${choices.map((c) => `"${c}"`).join(', ')}`, describe(value));
  }
  return value as T;
}

/** A string of 1 to `max` characters; never echoed (it may be a path). */
export function string(path: string, value: unknown, max = 4096): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) fail(path, `a string of 1 to ${max} characters`, describe(value, false));
  return value;
}

/** Names of nodes and authorities: Descriptor.name's rule. */
export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function name(path: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) fail(path, 'a name of 1 to 64 characters of A-Z a-z 0-9 . _ -', describe(value));
  return value;
}

/** Ed25519 and X25519 public keys. */
export const PUBLIC_KEY_LENGTH = 32;

/** A 32-byte public key as 64 hex digits. The value is never echoed. */
export function publicKey(path: string, value: unknown): Uint8Array {
  const expected = `${2 * PUBLIC_KEY_LENGTH} hex digits (a ${PUBLIC_KEY_LENGTH}-byte public key)`;
  if (typeof value !== 'string') fail(path, expected, describe(value, false));
  if (value.length !== 2 * PUBLIC_KEY_LENGTH) fail(path, expected, `${value.length} characters`);
  try {
    return fromHex(value);
  } catch {
    return fail(path, expected, 'a character that is not a hex digit');
  }
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

export function isIPv4(host: string): boolean {
  return IPV4.test(host);
}

/** True for an IPv6 literal without brackets ("::1", "fe80::1"). Uses the WHATWG URL parser. */
export function isIPv6(host: string): boolean {
  if (!host.includes(':') || !/^[0-9A-Fa-f:.]+$/.test(host)) return false;
  try {
    new URL(`http://[${host}]/`);
    return true;
  } catch {
    return false;
  }
}

/** An IPv4 or IPv6 literal (no brackets) or a DNS name. */
export function isHost(host: string): boolean {
  return isIPv4(host) || isIPv6(host) || HOSTNAME.test(host);
}

/** "host:port" for a host, with brackets around IPv6 literals. */
export function joinHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The host (brackets of an IPv6 literal removed) and port of a validated "host:port"; joinHostPort's inverse. */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

export function host(path: string, value: unknown): string {
  if (typeof value !== 'string' || !isHost(value)) fail(path, 'an IP address or a host name', describe(value, false));
  return value;
}

export function port(path: string, value: unknown, min = 0): number {
  return integer(path, value, min, 65535);
}

/** `{ host, port }`; port 0 lets the system choose. */
export function listenAddress(path: string, value: unknown): { host: string; port: number } {
  const o = object(path, value, ['host', 'port']);
  return {
    host: host(`${path}.host`, required(o, path, 'host', 'an IP address or a host name')),
    port: port(`${path}.port`, required(o, path, 'port', 'an integer in [0, 65535]')),
  };
}

/** "host:port" (IPv6 in brackets), port 1 to 65535: what a descriptor carries. */
export function hostPort(path: string, value: unknown): string {
  const expected = '"host:port" (an IPv6 address in brackets) with a port in [1, 65535]';
  if (typeof value !== 'string') fail(path, expected, describe(value, false));
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const h = m?.[1] ?? m?.[2];
  const p = Number(m?.[3]);
  const hostOk = h !== undefined && (m?.[1] !== undefined ? isIPv6(h) : isIPv4(h) || HOSTNAME.test(h));
  if (!hostOk || !(p >= 1 && p <= 65535)) fail(path, expected, describe(value, false));
  return value;
}

/** A URL with one of `protocols`, no user name, password, query or fragment. Returned without a trailing slash. */
function url(path: string, value: unknown, protocols: readonly string[], expected: string): string {
  if (typeof value !== 'string' || value.length > 2048) fail(path, expected, describe(value, false));
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return fail(path, expected, 'a string that is not a URL');
  }
  if (!protocols.includes(u.protocol)) fail(path, expected, 'another scheme');
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || value.includes('?') || value.includes('#')) {
    fail(path, `${expected}, with no user name, password, query or fragment`);
  }
  return value.replace(/\/+$/, '');
}

export function httpUrl(path: string, value: unknown): string {
  return url(path, value, ['http:', 'https:'], 'an http:// or https:// URL');
}

export function wsUrl(path: string, value: unknown): string {
  return url(path, value, ['ws:', 'wss:'], 'a ws:// or wss:// URL');
}

export function array(path: string, value: unknown, min: number, max: number): unknown[] {
  if (!Array.isArray(value) || value.length < min || value.length > max) fail(path, `an array of ${min} to ${max} entries`, describe(value, false));
  return value;
}

/** The most authorities a network lists (DESIGN.md: typically 3 to 9). */
export const MAX_AUTHORITIES = 64;

/** `[{ name, identityKey, url }]`: names, keys and URLs unique. */
export function authorities(path: string, value: unknown): AuthorityInfo[] {
  const out: AuthorityInfo[] = [];
  array(path, value, 1, MAX_AUTHORITIES).forEach((entry, i) => {
    const p = `${path}[${i}]`;
    const o = object(p, entry, ['name', 'identityKey', 'url']);
    const a: AuthorityInfo = {
      name: name(`${p}.name`, required(o, p, 'name', 'a name')),
      identityKey: publicKey(`${p}.identityKey`, required(o, p, 'identityKey', 'an Ed25519 public key in hex')),
      url: httpUrl(`${p}.url`, required(o, p, 'url', 'an http(s) URL')),
    };
    for (const [j, b] of out.entries()) {
      const dup = b.name === a.name ? 'name' : equalBytes(b.identityKey, a.identityKey) ? 'identityKey' : b.url === a.url ? 'url' : undefined;
      if (dup !== undefined) throw new BackchannelError('ERR_CONFIG', `config: ${p}.${dup} repeats the ${dup} of ${path}[${j}]`);
    }
    out.push(a);
  });
  return out;
}

/** A strict majority of `n`: the default threshold. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The number of signatures a document needs, in [majority, n]: below a majority, two disjoint
 * sets of authorities could each sign a different document for the same epoch.
 */
export function threshold(path: string, value: unknown, authorityCount: number): number {
  const min = majority(authorityCount);
  if (value === undefined) return min;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > authorityCount) {
    fail(path, `an integer in [${min}, ${authorityCount}] (at least a majority of the ${authorityCount} authorities)`, describe(value));
  }
  return value;
}
