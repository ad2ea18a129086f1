/**
 * The shared ClientStore suite (store-compliance.ts) in Node: against the SQLite store on real
 * files, and against the record store (the browser's, record-store.ts) whose committed batches go
 * to a simulated backing that, like IndexedDB, keeps only structured clones of what was handed to
 * it. The same suite runs in Chromium against IndexedDB (test/browser/store.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { RecordClientStore } from '../../src/client/record-store.js';
import { CLIENT_DB_FILE, SqliteClientStore } from '../../src/client/sqlite-store.js';
import type { ClientStore } from '../../src/client/store.js';
import { complianceCases } from './store-compliance.js';
import type { StoreHarness } from './store-compliance.js';
import { openBackedJournal } from '../helpers/record-backing.js';

const root = mkdtempSync(join(tmpdir(), 'backchannel-store-compliance-'));
after(() => rmSync(root, { recursive: true, force: true }));

const sqlite: StoreHarness = {
  open: (name) => Promise.resolve(SqliteClientStore.open(join(root, name, CLIENT_DB_FILE))),
  close: (store) => {
    store.close();
    return Promise.resolve();
  },
};

const records: StoreHarness = {
  open: (name) => Promise.resolve<ClientStore>(new RecordClientStore(openBackedJournal(`compliance-${name}`))),
  close: (store) => {
    store.close();
    return Promise.resolve();
  },
};

for (const [label, harness] of [['SQLite store', sqlite], ['record store (write-through, simulated backing)', records]] as const) {
  describe(`ClientStore compliance: ${label}`, () => {
    complianceCases.forEach((c, i) => {
      test(c.name, () => c.run(harness, `case-${label.split(' ')[0]}-${i}`));
    });
  });
}
