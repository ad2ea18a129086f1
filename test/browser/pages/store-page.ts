/**
 * The page side of test/browser/store.test.ts: the shared ClientStore suite against the record
 * store over IndexedDB (web/idb.ts), and a write / reload / read pair for a real page reload.
 * Also WebCrypto's X25519 (src/crypto/async-x25519.ts) against @noble's in this Chromium.
 */
import { webCryptoX25519 } from '../../../src/crypto/async-x25519.js';
import { portableBackend } from '../../../src/crypto/portable.js';
import { isBackchannelError } from '../../../src/errors.js';
import { onCurveCache, prepareHeaderKeys } from '../../../src/sphinx/header-keys.js';
import { defaultGeometry, Sphinx } from '../../../src/sphinx/index.js';
import type { PathHop } from '../../../src/sphinx/index.js';
import { equalBytes, fromHex, toHex } from '../../../src/util/bytes.js';
import type { ClientStore } from '../../../src/client/store.js';
import { complianceCases } from '../../client/store-compliance.js';
import type { StoreHarness } from '../../client/store-compliance.js';
import { openIdbClientStore } from '../../../web/idb.js';
import type { IdbClientStore } from '../../../web/idb.js';

const open = new Map<ClientStore, IdbClientStore>();

const harness: StoreHarness = {
  open: async (name) => {
    const h = await openIdbClientStore(`compliance-${name}`);
    open.set(h.store, h);
    return h.store;
  },
  close: async (store) => {
    const h = open.get(store);
    open.delete(store);
    await h?.close();
  },
};

async function runCompliance(): Promise<Array<{ name: string; error: string | null }>> {
  const results: Array<{ name: string; error: string | null }> = [];
  for (const [i, c] of complianceCases.entries()) {
    try {
      await c.run(harness, `case-${i}`);
      results.push({ name: c.name, error: null });
    } catch (e) {
      results.push({ name: c.name, error: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) });
    }
  }
  return results;
}

/** Writes n messages' worth of state, waits until it is on disk, and does not close (the page is reloaded next). */
async function writeForReload(n: number): Promise<void> {
  const h = await openIdbClientStore('reload');
  for (let i = 0; i < n; i++) {
    h.store.transaction(() => {
      h.store.enqueue({ id: Uint8Array.of(1, i), destination: { kind: 'address', gateway: new Uint8Array(32), mailbox: new Uint8Array(32) }, length: 3, createdAt: 1000 + i }, [Uint8Array.of(i, i, i)]);
      h.store.setNextMailboxSeq(i + 1);
    });
  }
  await h.flushed();
}

async function readAfterReload(): Promise<{ seq: number; pending: number }> {
  const h = await openIdbClientStore('reload');
  const r = { seq: h.store.nextMailboxSeq(), pending: h.store.pendingFragments().length };
  await h.close();
  return r;
}

/** RFC 7748 §5.2 (the first vector) and §6.1 (Alice's and Bob's keys, their shared secret). */
const RFC7748 = [
  { k: 'a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4', u: 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c', out: 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552' },
  { k: '4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d', u: 'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493', out: '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957' },
  { k: '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', u: '0900000000000000000000000000000000000000000000000000000000000000', out: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a' },
  { k: '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', u: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', out: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742' },
];

/**
 * WebCrypto's X25519 against @noble's: whether it is there, RFC 7748's vectors, `n` random scalars
 * and points (half of them the 32 random bytes as they are, high bit and all), a small-order point
 * refused, and a Sphinx packet from WebCrypto-prepared header keys equal to the synchronous one.
 */
async function runX25519Check(n: number): Promise<{ available: boolean; vectors: number; random: number; mismatches: string[]; lowOrder: boolean; packetEqual: boolean }> {
  const web = await webCryptoX25519();
  const c = portableBackend;
  const mismatches: string[] = [];
  if (web === null) return { available: false, vectors: 0, random: 0, mismatches, lowOrder: false, packetEqual: false };
  let vectors = 0;
  for (const v of RFC7748) {
    const out = toHex(await web.x25519(fromHex(v.k), fromHex(v.u)));
    if (out !== v.out) mismatches.push(`vector ${vectors}: ${out}`);
    vectors++;
  }
  let random = 0;
  for (let i = 0; i < n; i++) {
    const k = c.randomBytes(32);
    const u = i % 2 === 0 ? c.randomBytes(32) : c.x25519Base(c.randomBytes(32));
    const [a, b] = await Promise.all([web.x25519(k, u), web.x25519Base(k)]);
    if (!equalBytes(a, c.x25519(k, u))) mismatches.push(`random ${i}: X25519`);
    if (!equalBytes(b, c.x25519Base(k))) mismatches.push(`random ${i}: base`);
    random++;
  }
  let lowOrder = false;
  try {
    await web.x25519(c.randomBytes(32), new Uint8Array(32));
  } catch (e) {
    lowOrder = isBackchannelError(e, 'ERR_CRYPTO_LOW_ORDER');
  }
  // A 5-hop packet: the header keys of its first four hops made with WebCrypto, the same x and padding as the synchronous one.
  const g = defaultGeometry();
  const path: PathHop[] = Array.from({ length: g.hops }, (_, i) => ({
    id: c.randomBytes(32),
    publicKey: c.x25519Base(c.randomBytes(32)),
    commands: i === g.hops - 1 ? [{ type: 'recipient' as const, id: c.randomBytes(32) }] : [{ type: 'nodeDelay' as const, delayMs: 10 + i }],
  }));
  const x = c.randomBytes(32);
  const payload = c.randomBytes(g.forwardPayloadLength);
  const scripted = (chunks: Uint8Array[]): typeof c => ({ ...c, randomBytes: (len: number) => chunks.shift() ?? new Uint8Array(len) });
  const sync = new Sphinx(g, scripted([x.slice()])).createPacket(path, payload);
  const prepared = await prepareHeaderKeys(c, web, x, path.slice(0, -1).map((h) => h.publicKey), onCurveCache(16));
  const fast = new Sphinx(g, scripted([])).createPacket(path, payload, prepared);
  return { available: true, vectors, random, mismatches, lowOrder, packetEqual: equalBytes(sync, fast) };
}

Object.assign(globalThis, { runCompliance, writeForReload, readAfterReload, runX25519Check });
document.title = 'ready';
