// Key files: created once and reloaded unchanged, written atomically with mode 0600, corrupt
// files rejected by name only; mix keys per epoch, deleted and wiped when their epoch is over.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeBackend } from '../../src/crypto/index.js';
import { isBackchannelError } from '../../src/errors.js';
import { writeFileAtomic } from '../../src/config/_fs.js';
import {
  ed25519PublicKey,
  IDENTITY_KEY_FILE,
  LINK_KEY_FILE,
  loadOrCreateIdentity,
  loadOrCreateLinkKey,
  MIX_KEYS_FILE,
  MixKeyStore,
} from '../../src/config/keys.js';
import { fromHex, isZero, toHex } from '../../src/util/bytes.js';
import { seededBackend } from '../helpers/seeded.js';

const posix = process.platform !== 'win32';

function withTemp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'bc-keys-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const keysError = (file: string, forbidden?: string) => (e: unknown) =>
  isBackchannelError(e, 'ERR_KEYS') && e.message.startsWith('keys: ') && e.message.includes(file) && (forbidden === undefined || !e.message.includes(forbidden));

// RFC 8032 §7.1, TEST 1.
const RFC8032_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC8032_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

describe('identity and link keys', () => {
  test('the Ed25519 public key of a seed matches RFC 8032', () => {
    assert.equal(toHex(ed25519PublicKey(fromHex(RFC8032_SEED))), RFC8032_PUBLIC);
    assert.throws(() => ed25519PublicKey(new Uint8Array(31)), RangeError);
  });

  test('an identity is created once, then reloaded unchanged', () => {
    withTemp((root) => {
      const dataDir = join(root, 'node', 'data');
      const first = loadOrCreateIdentity(dataDir, { randomBytes: () => fromHex(RFC8032_SEED) });
      assert.equal(first.created, true);
      assert.equal(first.insecurePermissions, false);
      assert.equal(toHex(first.publicKey), RFC8032_PUBLIC);
      const again = loadOrCreateIdentity(dataDir);
      assert.equal(again.created, false);
      assert.equal(toHex(again.seed), RFC8032_SEED);
      assert.equal(toHex(again.publicKey), RFC8032_PUBLIC);
      assert.deepEqual(JSON.parse(readFileSync(join(dataDir, IDENTITY_KEY_FILE), 'utf8')), { type: 'ed25519-seed', secret: RFC8032_SEED });
    });
  });

  test('key files are mode 0600 in a 0700 data folder, with no temporary file left behind', { skip: !posix }, () => {
    withTemp((root) => {
      const dataDir = join(root, 'data');
      loadOrCreateIdentity(dataDir);
      loadOrCreateLinkKey(dataDir);
      assert.equal(statSync(dataDir).mode & 0o777, 0o700);
      assert.equal(statSync(join(dataDir, IDENTITY_KEY_FILE)).mode & 0o777, 0o600);
      assert.equal(statSync(join(dataDir, LINK_KEY_FILE)).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(dataDir).sort(), [IDENTITY_KEY_FILE, LINK_KEY_FILE]);
    });
  });

  test('a link key is an X25519 pair and survives a reload', () => {
    withTemp((dataDir) => {
      const a = loadOrCreateLinkKey(dataDir);
      assert.equal(a.created, true);
      assert.deepEqual(a.publicKey, nodeBackend.x25519Base(a.privateKey));
      const b = loadOrCreateLinkKey(dataDir);
      assert.equal(b.created, false);
      assert.deepEqual(b.privateKey, a.privateKey);
      assert.deepEqual(b.publicKey, a.publicKey);
      assert.equal(JSON.parse(readFileSync(join(dataDir, LINK_KEY_FILE), 'utf8')).type, 'x25519-private');
    });
  });

  test('a key file readable by others loads, with the insecurePermissions flag set', { skip: !posix }, () => {
    withTemp((dataDir) => {
      loadOrCreateIdentity(dataDir);
      chmodSync(join(dataDir, IDENTITY_KEY_FILE), 0o644);
      assert.equal(loadOrCreateIdentity(dataDir).insecurePermissions, true);
    });
  });

  test('a corrupt key file is ERR_KEYS naming the file and never its content', () => {
    withTemp((dataDir) => {
      const path = join(dataDir, IDENTITY_KEY_FILE);
      const secretish = 'ab'.repeat(31);
      const bodies = [
        'not json at all',
        JSON.stringify({ type: 'ed25519-seed', secret: secretish }),
        JSON.stringify({ type: 'ed25519-seed', secret: 'zz'.repeat(32) }),
        JSON.stringify({ type: 'ed25519-seed', secret: 'ab'.repeat(32), extra: 1 }),
        JSON.stringify({ type: 'x25519-private', secret: 'ab'.repeat(32) }),
        JSON.stringify(['ed25519-seed', 'ab'.repeat(32)]),
        '',
      ];
      for (const body of bodies) {
        writeFileSync(path, body, { mode: 0o600 });
        assert.throws(() => loadOrCreateIdentity(dataDir), keysError(IDENTITY_KEY_FILE, secretish), body);
      }
      // Nothing replaced the corrupt file: an operator must look at it.
      assert.equal(readFileSync(path, 'utf8'), '');
    });
  });

  test('a data folder that is a file is ERR_KEYS', () => {
    withTemp((root) => {
      const file = join(root, 'file');
      writeFileSync(file, 'x');
      assert.throws(() => loadOrCreateLinkKey(file), (e: unknown) => isBackchannelError(e, 'ERR_KEYS'));
    });
  });
});

describe('atomic writes', () => {
  test('an exclusive write never replaces an existing file; a plain one does', () => {
    withTemp((dir) => {
      const path = join(dir, 'f');
      assert.equal(writeFileAtomic(path, Buffer.from('one'), { mode: 0o600, exclusive: true }), true);
      assert.equal(writeFileAtomic(path, Buffer.from('two'), { mode: 0o600, exclusive: true }), false);
      assert.equal(readFileSync(path, 'utf8'), 'one');
      assert.equal(writeFileAtomic(path, Buffer.from('three'), { mode: 0o600 }), true);
      assert.equal(readFileSync(path, 'utf8'), 'three');
      assert.deepEqual(readdirSync(dir), ['f']);
    });
  });
});

describe('MixKeyStore', () => {
  test('ensure creates the missing epochs only, and a reopened store has the same keys', () => {
    withTemp((dataDir) => {
      const store = MixKeyStore.open(dataDir);
      assert.deepEqual(store.epochs(), []);
      assert.equal(existsSync(join(dataDir, MIX_KEYS_FILE)), false);
      assert.deepEqual(store.ensure([11, 10, 10]), [10, 11]);
      assert.deepEqual(store.ensure([10, 11, 12]), [12]);
      assert.deepEqual(store.ensure([12]), []);
      assert.deepEqual(store.epochs(), [10, 11, 12]);
      const k10 = store.get(10)!;
      assert.equal(k10.epoch, 10);
      assert.deepEqual(k10.publicKey, nodeBackend.x25519Base(k10.privateKey));
      assert.equal(store.get(9), undefined);

      const reopened = MixKeyStore.open(dataDir);
      assert.deepEqual(reopened.epochs(), [10, 11, 12]);
      for (const e of [10, 11, 12]) assert.deepEqual(reopened.get(e)!.privateKey, store.get(e)!.privateKey);
      if (posix) assert.equal(statSync(join(dataDir, MIX_KEYS_FILE)).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(dataDir), [MIX_KEYS_FILE]);
    });
  });

  test('keys come from the injected randomness', () => {
    withTemp((dataDir) => {
      const seeded = seededBackend(nodeBackend, new Uint8Array(32));
      const a = MixKeyStore.open(join(dataDir, 'a'), { randomBytes: (n) => seeded.randomBytes(n) });
      a.ensure([1]);
      const again = seededBackend(nodeBackend, new Uint8Array(32));
      const b = MixKeyStore.open(join(dataDir, 'b'), { randomBytes: (n) => again.randomBytes(n) });
      b.ensure([1]);
      assert.deepEqual(a.get(1)!.privateKey, b.get(1)!.privateKey);
    });
  });

  test('publicKeys lists the epochs asked for, in order, and a missing one is ERR_KEYS', () => {
    withTemp((dataDir) => {
      const store = MixKeyStore.open(dataDir);
      store.ensure([5, 6]);
      const pub = store.publicKeys([6, 5]);
      assert.deepEqual(pub.map((k) => k.epoch), [6, 5]);
      assert.deepEqual(pub[0]!.publicKey, store.get(6)!.publicKey);
      assert.throws(() => store.publicKeys([5, 7]), (e: unknown) => isBackchannelError(e, 'ERR_KEYS') && /epoch 7/.test(e.message));
    });
  });

  test('deleteBefore removes old keys from the file and wipes them in memory', () => {
    withTemp((dataDir) => {
      const store = MixKeyStore.open(dataDir);
      store.ensure([1, 2, 3, 4]);
      const old = store.get(2)!.privateKey;
      const oldHex = toHex(old);
      assert.deepEqual(store.deleteBefore(3), [1, 2]);
      assert.deepEqual(store.deleteBefore(3), []);
      assert.ok(isZero(old), 'the deleted key is wiped');
      assert.deepEqual(store.epochs(), [3, 4]);
      const text = readFileSync(join(dataDir, MIX_KEYS_FILE), 'utf8');
      assert.ok(!text.includes(oldHex));
      assert.deepEqual(MixKeyStore.open(dataDir).epochs(), [3, 4]);
      assert.deepEqual(store.deleteBefore(100), [3, 4]);
      assert.deepEqual(MixKeyStore.open(dataDir).epochs(), []);
    });
  });

  test('close wipes every key in memory and leaves the file', () => {
    withTemp((dataDir) => {
      const store = MixKeyStore.open(dataDir);
      store.ensure([1]);
      const k = store.get(1)!.privateKey;
      store.close();
      assert.ok(isZero(k));
      assert.deepEqual(store.epochs(), []);
      assert.deepEqual(MixKeyStore.open(dataDir).epochs(), [1]);
    });
  });

  test('epochs must be non-negative safe integers', () => {
    withTemp((dataDir) => {
      const store = MixKeyStore.open(dataDir);
      assert.throws(() => store.ensure([-1]), RangeError);
      assert.throws(() => store.ensure([1.5]), TypeError);
      assert.throws(() => store.ensure([Number.NaN]), TypeError);
      assert.deepEqual(store.epochs(), []);
    });
  });

  test('a corrupt mixkeys.json is ERR_KEYS naming the file, not its content', () => {
    withTemp((dataDir) => {
      const path = join(dataDir, MIX_KEYS_FILE);
      const secret = 'cd'.repeat(32);
      const bodies = [
        '{',
        JSON.stringify({ type: 'x25519-mix-keys' }),
        JSON.stringify({ type: 'ed25519-seed', keys: [] }),
        JSON.stringify({ type: 'x25519-mix-keys', keys: {} }),
        JSON.stringify({ type: 'x25519-mix-keys', keys: [{ epoch: -1, secret }] }),
        JSON.stringify({ type: 'x25519-mix-keys', keys: [{ epoch: 1, secret: secret.slice(2) }] }),
        JSON.stringify({ type: 'x25519-mix-keys', keys: [{ epoch: 1, secret }, { epoch: 1, secret }] }),
        JSON.stringify({ type: 'x25519-mix-keys', keys: [{ epoch: 1, secret, note: 'x' }] }),
      ];
      for (const body of bodies) {
        writeFileSync(path, body);
        assert.throws(() => MixKeyStore.open(dataDir), keysError(MIX_KEYS_FILE, secret.slice(2)), body);
      }
    });
  });
});
