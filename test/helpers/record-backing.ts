/**
 * A stand-in for IndexedDB under the record stores, in Node: what a committed batch hands over is
 * kept as structured clones (as IndexedDB keeps records), and a reopen loads a new journal from
 * them. Backings are by name, for the life of the process.
 */
import type { Journal, JournalChange } from '../../src/client/journal.js';
import { RecordClientStore } from '../../src/client/record-store.js';

const backings = new Map<string, Map<string, Map<string, unknown>>>();

/** A journal over the backing `name`, holding what was committed to it before. */
export function openBackedJournal(name: string): Journal {
  let durable = backings.get(name);
  if (durable === undefined) backings.set(name, (durable = new Map()));
  const d = durable;
  const journal = RecordClientStore.journal((batch: JournalChange[]) => {
    for (const c of batch) {
      let t = d.get(c.table);
      if (t === undefined) d.set(c.table, (t = new Map()));
      if (c.value === undefined) t.delete(c.key);
      else t.set(c.key, structuredClone(c.value));
    }
  });
  for (const [table, rows] of d) for (const [key, value] of rows) journal.load(table, key, structuredClone(value));
  return journal;
}
