// Invite codes: the word list's size and shape, fresh codes, and forgiving but strict parsing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { CODE_SECRET_BITS, CODE_WORDS, MAX_CHANNEL, codePassword, generateCode, parseCode } from '../../src/messaging/code.js';
import { WORDLIST } from '../../src/messaging/wordlist.js';
import { isBackchannelError } from '../../src/errors.js';

const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const isCodeError = (e: unknown): boolean => isBackchannelError(e, 'ERR_INVITE_CODE');

describe('the word list', () => {
  test('has 256 distinct lower-case words of 4 to 8 letters, sorted', () => {
    assert.equal(WORDLIST.length, 256);
    assert.equal(new Set(WORDLIST).size, WORDLIST.length);
    for (const w of WORDLIST) assert.match(w, /^[a-z]{4,8}$/);
    assert.deepEqual([...WORDLIST].sort(), [...WORDLIST]);
  });

  test('gives a code at least 32 bits of secret', () => {
    assert.ok(CODE_SECRET_BITS >= 32);
  });
});

describe('invite codes', () => {
  test('a fresh code is a channel and the right number of words, and parses back to itself', () => {
    for (let i = 0; i < 200; i++) {
      const c = generateCode(rnd);
      assert.ok(c.channel >= 1 && c.channel <= MAX_CHANNEL);
      assert.equal(c.words.length, CODE_WORDS);
      assert.deepEqual(parseCode(c.text), c);
    }
  });

  test('parsing forgives case, spaces, dashes and blanks around', () => {
    const c = generateCode(rnd, 4);
    const words = c.text.split('-').slice(1);
    const messy = `  4 ${words[0]!.toUpperCase()}-${words[1]}  ${words[2]}. ${words[3]!.replace(/^./, (x) => x.toUpperCase())}\n`;
    assert.equal(parseCode(messy).text, c.text);
    assert.equal(parseCode(c.text.replaceAll('-', ' ')).text, c.text);
  });

  test('the password is the words only, the same for every way of typing them', () => {
    const c = generateCode(rnd, 12);
    const a = codePassword(c);
    assert.deepEqual(codePassword(parseCode(c.text.toUpperCase().replaceAll('-', ' '))), a);
    assert.equal(new TextDecoder().decode(a), c.text.split('-').slice(1).join('-'));
  });

  test('a malformed code is a typed error that does not repeat the words', () => {
    const bad = ['', '4', 'purple-sausage-anchor-lemon-apple', '0-apple-apple-apple-apple', '1000-apple-apple-apple-apple', '4-apple-apple-apple', '4-apple-apple-apple-apple-apple', '4-apple-appel-apple-apple', 'x4-apple-apple-apple-apple'];
    for (const b of bad) {
      assert.throws(() => parseCode(b), (e: unknown) => isCodeError(e) && !(e as Error).message.includes('appel'));
    }
  });

  test('any string either parses to a canonical code or is a typed error', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        try {
          const c = parseCode(s);
          assert.equal(parseCode(c.text).text, c.text);
        } catch (e) {
          assert.ok(isCodeError(e));
        }
      }),
    );
  });
});
