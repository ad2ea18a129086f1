/** A gateway's admission of new client keys: by proof of work, by token, or open; known keys pass; a cap. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { CloseReason, WORK_REQUIRED_BASE } from '../../src/link/link.js';
import { createAdmission, memoryTokenLedger } from '../../src/server/admission.js';
import type { AdmissionInit } from '../../src/server/admission.js';
import { openTokenLedger } from '../../src/server/token-ledger.js';
import { idKey } from '../../src/util/bytes.js';
import { encodeAdmission, mintToken, solveWork, workBits } from '../../src/wire/admission.js';

const identityKey = new Uint8Array(32).fill(1);
const tokenKey = new Uint8Array(32).fill(2);

function gateway(init: AdmissionInit) {
  const known = new Set<string>();
  const outcomes: string[] = [];
  const admission = createAdmission(init, {
    identityKey,
    known: (k) => known.has(idKey(k)),
    clients: () => known.size,
    token: { key: tokenKey, ledger: memoryTokenLedger(), crypto: nodeBackend },
    counted: (o) => outcomes.push(o),
  });
  /** The node's accept: admitted keys get a record (the mailbox registration). */
  const link = (key: Uint8Array, payload: Uint8Array = new Uint8Array(33)) => {
    const v = admission.check(key, payload);
    if (v === true) known.add(idKey(key));
    return v;
  };
  return { admission, link, outcomes, known };
}

const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);

describe('server: admission', () => {
  test('proof of work: a new key without work, or with too little, is told the bits; with the work it is admitted, and then known', async () => {
    const { link, outcomes, admission } = gateway({ mode: 'proof-of-work', workBits: 12 });
    assert.deepEqual(link(key(10)), { refuse: WORK_REQUIRED_BASE + 12 });
    const nonce = (await solveWork(identityKey, key(10), 12))!;
    assert.deepEqual(link(key(11), encodeAdmission({ kind: 'work', nonce })), { refuse: WORK_REQUIRED_BASE + 12 }, 'the proof of another key');
    // A nonce of zeros proves less than 12 bits here (checked), so it is too weak.
    const zeros = new Uint8Array(16);
    assert.ok(workBits(identityKey, key(10), zeros) < 12);
    assert.deepEqual(link(key(10), encodeAdmission({ kind: 'work', nonce: zeros })), { refuse: WORK_REQUIRED_BASE + 12 }, 'too weak');
    assert.equal(link(key(10), encodeAdmission({ kind: 'work', nonce })), true);
    assert.equal(link(key(10)), true, 'a known key needs no proof');
    assert.deepEqual(outcomes, ['work', 'work', 'work', 'admitted', 'known']);
    assert.equal(admission.full(), false);
  });

  test('token: none is "token required"; a forged one, or one another key used, is "token invalid"; a fresh one admits its first key', () => {
    const { link, outcomes } = gateway({ mode: 'token' });
    const token = mintToken(nodeBackend, tokenKey, new Uint8Array(16).fill(5));
    const forged = mintToken(nodeBackend, new Uint8Array(32).fill(3), new Uint8Array(16).fill(5));
    assert.deepEqual(link(key(20)), { refuse: CloseReason.tokenRequired });
    assert.deepEqual(link(key(20), encodeAdmission({ kind: 'token', token: forged })), { refuse: CloseReason.tokenInvalid });
    assert.equal(link(key(20), encodeAdmission({ kind: 'token', token })), true);
    assert.deepEqual(link(key(21), encodeAdmission({ kind: 'token', token })), { refuse: CloseReason.tokenInvalid }, 'one key per token');
    assert.deepEqual(outcomes, ['token_required', 'token_invalid', 'admitted', 'token_invalid']);
  });

  test('open admits anyone; the cap refuses new keys with "full" (before any work), keeps known ones, and full() says so until there is room', () => {
    const g = gateway({ mode: 'open', maxClients: 3 });
    for (const n of [1, 2, 3]) assert.equal(g.link(key(n)), true);
    assert.deepEqual(g.link(key(4)), { refuse: CloseReason.full });
    assert.equal(g.admission.full(), true);
    assert.equal(g.link(key(2)), true, 'a known client still links');
    g.known.delete(idKey(key(1)));
    assert.equal(g.admission.full(), false, 'a record expired: room again');
    assert.equal(g.link(key(4)), true);
  });

  test('bad settings are refused', () => {
    assert.throws(() => gateway({ mode: 'nope' as never }), RangeError);
    assert.throws(() => gateway({ mode: 'proof-of-work', workBits: 41 }), RangeError);
    assert.throws(() => gateway({ mode: 'open', maxClients: 0 }), RangeError);
    assert.throws(() => createAdmission({ mode: 'token' }, { identityKey, known: () => false, clients: () => 0 }), /operator key/);
  });

  test('the token ledger keeps a token\'s key across a reopen, in a file of mode 0600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bc-ledger-'));
    try {
      const path = join(dir, 'admission.sqlite');
      const id = new Uint8Array(16).fill(1);
      let l = openTokenLedger(path);
      assert.equal(l.bind(id, key(1)), true);
      assert.equal(l.bind(id, key(1)), true, 'the same key again');
      l.close();
      assert.equal(statSync(path).mode & 0o777, 0o600);
      l = openTokenLedger(path);
      assert.equal(l.bind(id, key(2)), false, 'another key, after a restart');
      assert.equal(l.bind(new Uint8Array(16).fill(2), key(2)), true);
      l.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
