/**
 * Noise handshake patterns (The Noise Protocol Framework, revision 34, sections 7 and 9) and the
 * parser for protocol names such as `Noise_XKpsk3_25519_ChaChaPoly_BLAKE2b`.
 *
 * A pattern is written here in the specification's own notation, one line per message, with the
 * pre-messages before `...`. The parser turns that text into token lists, so the table below can
 * be checked against the specification by eye.
 */
import { BackchannelError } from '../errors.js';

export type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';

export interface HandshakePattern {
  /** The pattern's name as it appears in the protocol name, modifiers included (`XKpsk3`). */
  readonly name: string;
  /** Public keys the initiator's peer knows beforehand (`-> s`), and the responder's (`<- s`). */
  readonly initiatorPreMessage: readonly Token[];
  readonly responderPreMessage: readonly Token[];
  /** Message i is sent by the initiator when i is even, by the responder when i is odd. */
  readonly messages: readonly (readonly Token[])[];
  /** One-way patterns (N, K, X): after the handshake only the initiator sends. */
  readonly oneWay: boolean;
}

/** The fundamental patterns (section 7.4 and 7.5) and the deferred patterns (section 18.2). */
const PATTERNS: Record<string, string> = {
  // one-way
  N: '<- s ... -> e, es',
  K: '-> s; <- s ... -> e, es, ss',
  X: '<- s ... -> e, es, s, ss',
  // interactive, fundamental
  NN: '-> e; <- e, ee',
  NK: '<- s ... -> e, es; <- e, ee',
  NX: '-> e; <- e, ee, s, es',
  KN: '-> s ... -> e; <- e, ee, se',
  KK: '-> s; <- s ... -> e, es, ss; <- e, ee, se',
  KX: '-> s ... -> e; <- e, ee, se, s, es',
  XN: '-> e; <- e, ee; -> s, se',
  XK: '<- s ... -> e, es; <- e, ee; -> s, se',
  XX: '-> e; <- e, ee, s, es; -> s, se',
  IN: '-> e, s; <- e, ee, se',
  IK: '<- s ... -> e, es, s, ss; <- e, ee, se',
  IX: '-> e, s; <- e, ee, se, s, es',
  // interactive, deferred
  NK1: '<- s ... -> e; <- e, ee, es',
  NX1: '-> e; <- e, ee, s; -> es',
  X1N: '-> e; <- e, ee; -> s; <- se',
  X1K: '<- s ... -> e, es; <- e, ee; -> s; <- se',
  XK1: '<- s ... -> e; <- e, ee, es; -> s, se',
  X1K1: '<- s ... -> e; <- e, ee, es; -> s; <- se',
  X1X: '-> e; <- e, ee, s, es; -> s; <- se',
  XX1: '-> e; <- e, ee, s; -> es, s, se',
  X1X1: '-> e; <- e, ee, s; -> es, s; <- se',
  K1N: '-> s ... -> e; <- e, ee; -> se',
  K1K: '-> s; <- s ... -> e, es; <- e, ee; -> se',
  KK1: '-> s; <- s ... -> e; <- e, ee, se, es',
  K1K1: '-> s; <- s ... -> e; <- e, ee, es; -> se',
  K1X: '-> s ... -> e; <- e, ee, s, es; -> se',
  KX1: '-> s ... -> e; <- e, ee, se, s; -> es',
  K1X1: '-> s ... -> e; <- e, ee, s; -> se, es',
  I1N: '-> e, s; <- e, ee; -> se',
  I1K: '<- s ... -> e, es, s; <- e, ee; -> se',
  IK1: '<- s ... -> e, s; <- e, ee, se, es',
  I1K1: '<- s ... -> e, s; <- e, ee, es; -> se',
  I1X: '-> e, s; <- e, ee, s, es; -> se',
  IX1: '-> e, s; <- e, ee, se, s; -> es',
  I1X1: '-> e, s; <- e, ee, s; -> se, es',
};

const ONE_WAY = new Set(['N', 'K', 'X']);

function bad(message: string): BackchannelError {
  return new BackchannelError('ERR_NOISE_PROTOCOL', `noise: ${message}`);
}

/** Splits one message line (`-> e, es`) into its direction and tokens. */
function parseLine(line: string): { dir: '->' | '<-'; tokens: Token[] } {
  const m = /^(->|<-)\s*(.*)$/.exec(line.trim());
  if (!m) throw bad('malformed pattern table entry');
  const tokens = m[2]!.split(',').map((t) => t.trim()) as Token[];
  return { dir: m[1] as '->' | '<-', tokens };
}

function parseBase(name: string): HandshakePattern {
  const text = PATTERNS[name];
  if (text === undefined) throw bad(`unknown handshake pattern ${JSON.stringify(name)}`);
  const [pre, body] = text.includes('...') ? text.split('...') : ['', text];
  const initiatorPreMessage: Token[] = [];
  const responderPreMessage: Token[] = [];
  for (const line of pre!.split(';').filter((l) => l.trim() !== '')) {
    const { dir, tokens } = parseLine(line);
    (dir === '->' ? initiatorPreMessage : responderPreMessage).push(...tokens);
  }
  const messages = body!.split(';').map((line, i) => {
    const { dir, tokens } = parseLine(line);
    if ((dir === '->') !== (i % 2 === 0)) throw bad('pattern table entry does not alternate');
    return tokens;
  });
  return { name, initiatorPreMessage, responderPreMessage, messages, oneWay: ONE_WAY.has(name) };
}

/**
 * The pattern `name`, with its psk modifiers applied (section 9.2): `psk0` puts a `psk` token at
 * the start of the first message, `pskN` at the end of message N.
 */
export function parsePattern(name: string): HandshakePattern {
  const m = /^([NKXI1]+?)((?:psk\d+)(?:\+psk\d+)*)?$/.exec(name);
  if (!m) throw bad(`unknown handshake pattern ${JSON.stringify(name)}`);
  const base = parseBase(m[1]!);
  if (m[2] === undefined) return base;
  const messages = base.messages.map((tokens) => [...tokens]);
  const seen = new Set<number>();
  for (const modifier of m[2].split('+')) {
    const n = Number(modifier.slice(3));
    if (n > messages.length || seen.has(n)) throw bad(`modifier ${modifier} does not fit pattern ${base.name}`);
    seen.add(n);
    if (n === 0) messages[0]!.unshift('psk');
    else messages[n - 1]!.push('psk');
  }
  return { ...base, name, messages };
}

export type DhName = '25519';
export type CipherName = 'ChaChaPoly' | 'AESGCM';
export type HashName = 'SHA256' | 'SHA512' | 'BLAKE2s' | 'BLAKE2b';

export interface ProtocolName {
  readonly full: string;
  readonly pattern: HandshakePattern;
  readonly dh: DhName;
  readonly cipher: CipherName;
  readonly hash: HashName;
  /** How many pre-shared keys the pattern's modifiers call for. */
  readonly pskCount: number;
}

const CIPHERS: readonly string[] = ['ChaChaPoly', 'AESGCM'];
const HASHES: readonly string[] = ['SHA256', 'SHA512', 'BLAKE2s', 'BLAKE2b'];

/**
 * Parses `Noise_<pattern>_<dh>_<cipher>_<hash>`. Only X25519 is served; a 448 suite is reported
 * as ERR_NOISE_PROTOCOL like any other unsupported name.
 */
export function parseProtocolName(full: string): ProtocolName {
  if (typeof full !== 'string') throw bad('protocol name must be a string');
  const parts = full.split('_');
  if (parts.length !== 5 || parts[0] !== 'Noise') throw bad('protocol name must be Noise_<pattern>_<dh>_<cipher>_<hash>');
  const [, patternName, dh, cipher, hash] = parts as [string, string, string, string, string];
  if (dh !== '25519') throw bad(`unsupported DH function ${JSON.stringify(dh)} (only 25519)`);
  if (!CIPHERS.includes(cipher)) throw bad(`unsupported cipher ${JSON.stringify(cipher)}`);
  if (!HASHES.includes(hash)) throw bad(`unsupported hash ${JSON.stringify(hash)}`);
  const pattern = parsePattern(patternName);
  const pskCount = pattern.messages.reduce((n, tokens) => n + tokens.filter((t) => t === 'psk').length, 0);
  return { full, pattern, dh, cipher: cipher as CipherName, hash: hash as HashName, pskCount };
}

/** Every base pattern name the table holds (for tests and documentation). */
export const PATTERN_NAMES: readonly string[] = Object.keys(PATTERNS);
