/**
 * The page side of test/browser/store.test.ts: the shared ClientStore suite against the record
 * store over IndexedDB (web/idb.ts), and a write / reload / read pair for a real page reload.
 */
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

Object.assign(globalThis, { runCompliance, writeForReload, readAfterReload });
document.title = 'ready';
