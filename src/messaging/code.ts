/**
 * Invite codes a person reads aloud: `<channel>-<word>-<word>-<word>-<word>`, for example
 * `4-purple-sausage-anchor-lemon`.
 *
 * - The channel (1 to MAX_CHANNEL) is public: it names the rendezvous slot, and so which gateway
 *   serves it. The inviter draws it at random and claims it at the rendezvous; a channel that is
 *   taken is drawn again, so two open invites never share one (invite.ts).
 * - The words are the secret: CODE_WORDS words of the 256-word list (wordlist.ts), 8 bits each,
 *   32 bits in all. They are the PAKE's password, so an attacker gets one online guess per code
 *   (a 2^-32 chance) and nothing to test offline.
 *
 * Parsing forgives case, spaces, dashes, dots, commas and underscores between the parts, and
 * surrounding blanks. Portable: no `node:` imports; randomness is passed in.
 */
import { BackchannelError } from '../errors.js';
import { WORDLIST } from './wordlist.js';

/** Words of a code: 4 × 8 bits = 32 bits of secret, the least issue 18 asks. */
export const CODE_WORDS = 4;
/** Channels run 1 to 999: at most three digits to read aloud, plenty for the invites open at once on a network of our size. */
export const MAX_CHANNEL = 999;
/** Bits of secret in a code's words. */
export const CODE_SECRET_BITS = CODE_WORDS * Math.log2(WORDLIST.length);

const INDEX = new Map(WORDLIST.map((w, i) => [w, i]));

/** A parsed (or fresh) code. `text` is the canonical form; `words` are the list indices. */
export interface InviteCode {
  readonly channel: number;
  readonly words: readonly number[];
  readonly text: string;
}

function codeError(message: string): BackchannelError {
  return new BackchannelError('ERR_INVITE_CODE', `invite: ${message}`);
}

/** A uniform integer in [0, n) from the backend's random bytes (rejection sampling, n <= 2^16). */
function uniform(randomBytes: (n: number) => Uint8Array, n: number): number {
  const limit = 65536 - (65536 % n);
  for (;;) {
    const b = randomBytes(2);
    const v = (b[0]! << 8) | b[1]!;
    if (v < limit) return v % n;
  }
}

function format(channel: number, words: readonly number[]): string {
  return [String(channel), ...words.map((i) => WORDLIST[i]!)].join('-');
}

/** A random channel number in [1, MAX_CHANNEL]. */
export function randomChannel(randomBytes: (n: number) => Uint8Array): number {
  return 1 + uniform(randomBytes, MAX_CHANNEL);
}

/** A fresh code on `channel` (random when not given) with CODE_WORDS random words. */
export function generateCode(randomBytes: (n: number) => Uint8Array, channel?: number): InviteCode {
  const ch = channel ?? randomChannel(randomBytes);
  if (!Number.isInteger(ch) || ch < 1 || ch > MAX_CHANNEL) throw new RangeError(`"channel" expected an integer in [1, ${MAX_CHANNEL}], got ${ch}`);
  const words = Array.from({ length: CODE_WORDS }, () => uniform(randomBytes, WORDLIST.length));
  return { channel: ch, words, text: format(ch, words) };
}

/**
 * Reads a code as a person typed it.
 * @throws {BackchannelError} ERR_INVITE_CODE when it is not a channel number and CODE_WORDS words
 *   of the list (the message says which part is wrong, never the words themselves).
 * @example parseCode(' 4 Purple-sausage  anchor.lemon ').text === '4-purple-sausage-anchor-lemon'
 */
export function parseCode(text: string): InviteCode {
  if (typeof text !== 'string') throw new TypeError(`"text" expected string, got ${typeof text}`);
  const parts = text.trim().toLowerCase().split(/[\s\-_.,]+/).filter((p) => p.length > 0);
  const example = `a code is a number and ${CODE_WORDS} words, like 4-purple-sausage-anchor-lemon`;
  if (parts.length !== CODE_WORDS + 1) throw codeError(`${example} (this one has ${parts.length} parts)`);
  const first = parts[0]!;
  if (!/^[0-9]{1,3}$/.test(first)) throw codeError(`${example}: it starts with the number`);
  const channel = Number(first);
  if (channel < 1 || channel > MAX_CHANNEL) throw codeError(`the number of a code is 1 to ${MAX_CHANNEL}`);
  const words: number[] = [];
  for (let i = 1; i < parts.length; i++) {
    const idx = INDEX.get(parts[i]!);
    if (idx === undefined) throw codeError(`word ${i} of the code is not in the word list: check its spelling`);
    words.push(idx);
  }
  return { channel, words, text: format(channel, words) };
}

/** The PAKE password (PRS) of a code: its words, canonical, as UTF-8. */
export function codePassword(code: InviteCode): Uint8Array {
  return new TextEncoder().encode(code.words.map((i) => WORDLIST[i]!).join('-'));
}
