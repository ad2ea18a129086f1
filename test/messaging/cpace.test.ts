// CPace on ristretto255/SHA-512 against the draft's own vectors (draft-18, appendix B.3; test/messaging/vectors/
// cpace-ristretto255-sha512.json names the sections), then runs of the whole exchange with key
// confirmation: matching passwords agree, a wrong one fails on both sides.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { sha512 } from '@noble/hashes/sha2.js';
import { ristretto255 } from '@noble/curves/ed25519.js';
import {
  CPACE_DSI,
  calculateGenerator,
  confirmationTag,
  cpaceIsk,
  cpaceShare,
  generatorString,
  parsePrefixFree,
  parseShare,
  prefixFreeCat,
  prependLen,
  scalarMult,
  scalarMultVfy,
  verifyConfirmation,
} from '../../src/messaging/cpace.js';
import { isBackchannelError } from '../../src/errors.js';
import { concatBytes, fromHex, toHex } from '../../src/util/bytes.js';
import { randomBytes } from 'node:crypto';

const FILE = fileURLToPath(new URL('../../../test/messaging/vectors/cpace-ristretto255-sha512.json', import.meta.url));
const V = JSON.parse(readFileSync(FILE, 'utf8'));
const h = fromHex;
const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const inputs = { prs: h(V.generator.PRS), ci: h(V.generator.CI), sid: h(V.generator.sid) };

describe('CPace string utilities (draft appendix)', () => {
  test('prepend_len, lv_cat and transcript_ir give the draft bytes', () => {
    for (const v of V.prependLen) assert.equal(toHex(prependLen(h(v.input))), v.output);
    assert.equal(toHex(prependLen(new Uint8Array(128))).slice(0, 4), '8001');
    assert.equal(toHex(prefixFreeCat(...V.lvCat.inputs.map(h))), V.lvCat.output);
    for (const c of V.transcriptIr.cases) assert.equal(toHex(concatBytes(prefixFreeCat(h(c.Ya), h(c.ADa)), prefixFreeCat(h(c.Yb), h(c.ADb)))), c.output);
  });

  test('the invalidly encoded messages are refused', () => {
    for (const m of V.invalidMessages.messages) {
      assert.throws(() => parsePrefixFree(h(m), 2), (e) => isBackchannelError(e, 'ERR_INVITE_PAKE'));
      assert.throws(() => parseShare(h(m)), (e) => isBackchannelError(e, 'ERR_INVITE_PAKE'));
    }
  });

  test('prefix_free_cat parses back into its parts', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 4 }), (parts) => {
        const back = parsePrefixFree(prefixFreeCat(...parts), parts.length);
        assert.deepEqual(back.map(toHex), parts.map(toHex));
      }),
    );
  });
});

describe('CPace ristretto255 vectors', () => {
  test('the generator string, its hash and the generator', () => {
    const s = generatorString(CPACE_DSI, inputs.prs, inputs.ci, inputs.sid);
    assert.equal(toHex(CPACE_DSI), V.generator.DSI);
    assert.equal(toHex(s), V.generator.generatorString);
    assert.equal(toHex(sha512(s)), V.generator.hash);
    assert.equal(toHex(calculateGenerator(inputs.prs, inputs.ci, inputs.sid).toBytes()), V.generator.g);
  });

  test('MSGa and MSGb from the given scalars', () => {
    const a = cpaceShare(inputs, h(V.msgA.AD), rnd, h(V.msgA.y));
    const b = cpaceShare(inputs, h(V.msgB.AD), rnd, h(V.msgB.y));
    assert.equal(toHex(a.msg), toHex(prefixFreeCat(h(V.msgA.Y), h(V.msgA.AD))));
    assert.equal(toHex(parseShare(a.msg).Y), V.msgA.Y);
    assert.equal(toHex(parseShare(b.msg).Y), V.msgB.Y);
  });

  test('K on both sides and the initiator/responder ISK', () => {
    assert.equal(toHex(scalarMultVfy(h(V.msgA.y), h(V.msgB.Y))), V.K.value);
    assert.equal(toHex(scalarMultVfy(h(V.msgB.y), h(V.msgA.Y))), V.K.value);
    assert.equal(toHex(sha512(h(V.iskInitiatorResponder.hashInput))), V.iskInitiatorResponder.ISK);
    const a = cpaceShare(inputs, h(V.msgA.AD), rnd, h(V.msgA.y));
    const b = cpaceShare(inputs, h(V.msgB.AD), rnd, h(V.msgB.y));
    assert.equal(toHex(concatBytes(a.msg, b.msg)), V.iskInitiatorResponder.transcriptIr);
    assert.equal(toHex(cpaceIsk(inputs, a, b.msg, 'initiator')), V.iskInitiatorResponder.ISK);
    assert.equal(toHex(cpaceIsk(inputs, b, a.msg, 'responder')), V.iskInitiatorResponder.ISK);
  });

  test('scalar_mult with valid inputs, and invalid points give the neutral element', () => {
    const v = V.scalarMultValid;
    assert.equal(toHex(scalarMult(h(v.s), ristretto255.Point.fromBytes(h(v.X)))), v.result);
    assert.equal(toHex(scalarMultVfy(h(v.s), h(v.X))), v.result);
    for (const p of V.scalarMultInvalid.points) assert.equal(toHex(scalarMultVfy(h(V.scalarMultInvalid.s), h(p))), V.scalarMultInvalid.identity);
  });

  test('a run aborts on an invalid or identity point from the peer', () => {
    const a = cpaceShare(inputs, new Uint8Array(0), rnd);
    for (const p of V.scalarMultInvalid.points) {
      assert.throws(() => cpaceIsk(inputs, a, prefixFreeCat(h(p), new Uint8Array(0)), 'initiator'), (e) => isBackchannelError(e, 'ERR_INVITE_PAKE'));
    }
  });
});

describe('CPace runs with key confirmation', () => {
  const run = (pwA: string, pwB: string) => {
    const te = new TextEncoder();
    const sid = rnd(16);
    const ci = te.encode('test channel');
    const ia = { prs: te.encode(pwA), ci, sid };
    const ib = { prs: te.encode(pwB), ci, sid };
    const a = cpaceShare(ia, new Uint8Array(0), rnd);
    const b = cpaceShare(ib, new Uint8Array(0), rnd);
    const iskA = cpaceIsk(ia, a, b.msg, 'initiator');
    const iskB = cpaceIsk(ib, b, a.msg, 'responder');
    const tagA = confirmationTag(iskA, a.msg);
    const tagB = confirmationTag(iskB, b.msg);
    return { iskA, iskB, aAccepts: verifyConfirmation(iskA, b.msg, tagB), bAccepts: verifyConfirmation(iskB, a.msg, tagA) };
  };

  test('the same password gives the same ISK and both tags verify', () => {
    const r = run('4-purple-sausage-anchor', '4-purple-sausage-anchor');
    assert.equal(toHex(r.iskA), toHex(r.iskB));
    assert.ok(r.aAccepts && r.bAccepts);
  });

  test('a wrong password fails on both sides', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ minLength: 1, maxLength: 20 }), (x, y) => {
        fc.pre(x !== y);
        const r = run(x, y);
        assert.notEqual(toHex(r.iskA), toHex(r.iskB));
        assert.ok(!r.aAccepts && !r.bAccepts);
      }),
      { numRuns: 20 },
    );
  });

  test('a flipped bit of a tag is refused', () => {
    const isk = rnd(64);
    const msg = rnd(37);
    const tag = confirmationTag(isk, msg);
    for (let i = 0; i < tag.length * 8; i += 37) {
      const bad = tag.slice();
      bad[i >> 3]! ^= 1 << (i & 7);
      assert.equal(verifyConfirmation(isk, msg, bad), false);
    }
    assert.equal(verifyConfirmation(isk, msg, tag), true);
  });
});
