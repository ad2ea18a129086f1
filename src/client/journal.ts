/**
 * Tables of records in memory with transactions, and the list of what each committed transaction
 * changed: the base of the browser's store (record-store.ts over IndexedDB, docs/browser.md).
 * Portable: no `node:` imports.
 *
 * A table maps string keys to records. Records are replaced, never changed in place, so an undo
 * entry can hold the record it replaced. `transaction(fn)` runs `fn`; when it throws, every change
 * it made is undone (a nested transaction undoes only its own, like a savepoint) and the error
 * rethrown. When the outermost transaction returns, the changes it made (the last value of every
 * key it touched, or a deletion) go to `onCommit` as one batch, in one call: the persistence layer
 * writes that batch atomically. Changes made outside any transaction are a batch of their own.
 */

/** A key's last value in a committed batch; `value` undefined means deleted. */
export interface JournalChange {
  readonly table: string;
  readonly key: string;
  readonly value: unknown;
}

interface Undo {
  readonly table: Map<string, unknown>;
  readonly key: string;
  readonly had: boolean;
  readonly old: unknown;
}

export class Journal {
  readonly #tables = new Map<string, Map<string, unknown>>();
  readonly #undo: Undo[] = [];
  /** Changed keys of the running transaction: `table\0key` -> change. */
  readonly #changed = new Map<string, JournalChange>();
  #depth = 0;
  readonly #onCommit: (changes: JournalChange[]) => void;

  constructor(tables: readonly string[], onCommit: (changes: JournalChange[]) => void) {
    for (const t of tables) this.#tables.set(t, new Map());
    this.#onCommit = onCommit;
  }

  /** Loads a record without journaling it (the state read back at open). */
  load(table: string, key: string, value: unknown): void {
    this.#table(table).set(key, value);
  }

  get(table: string, key: string): unknown {
    return this.#table(table).get(key);
  }

  has(table: string, key: string): boolean {
    return this.#table(table).has(key);
  }

  /** The records of a table in insertion order (a snapshot: safe to change the table meanwhile). */
  entries(table: string): Array<[string, unknown]> {
    return [...this.#table(table).entries()];
  }

  size(table: string): number {
    return this.#table(table).size;
  }

  put(table: string, key: string, value: unknown): void {
    this.#write(table, key, value);
  }

  delete(table: string, key: string): void {
    if (!this.#table(table).has(key)) return;
    this.#write(table, key, undefined);
  }

  transaction<T>(fn: () => T): T {
    const mark = this.#undo.length;
    this.#depth++;
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.#rollback(mark);
      this.#depth--;
      if (this.#depth === 0) this.#changed.clear();
      throw e;
    }
    this.#depth--;
    if (this.#depth === 0) this.#commit();
    return result;
  }

  #table(name: string): Map<string, unknown> {
    const t = this.#tables.get(name);
    if (t === undefined) throw new RangeError(`journal: no table ${name}`);
    return t;
  }

  #write(table: string, key: string, value: unknown): void {
    const t = this.#table(table);
    const had = t.has(key);
    this.#undo.push({ table: t, key, had, old: t.get(key) });
    if (value === undefined) t.delete(key);
    else t.set(key, value);
    this.#changed.set(`${table}\0${key}`, { table, key, value });
    if (this.#depth === 0) this.#commit();
  }

  #rollback(mark: number): void {
    while (this.#undo.length > mark) {
      const u = this.#undo.pop()!;
      if (u.had) u.table.set(u.key, u.old);
      else u.table.delete(u.key);
    }
    // The changed set may now name keys whose value is back to what it was: writing that value
    // again is harmless, so the set is rebuilt only from what the undo log still holds.
    this.#changed.clear();
    for (const u of this.#undo) {
      const name = this.#nameOf(u.table);
      const v = u.table.get(u.key);
      this.#changed.set(`${name}\0${u.key}`, { table: name, key: u.key, value: v });
    }
  }

  #nameOf(table: Map<string, unknown>): string {
    for (const [name, t] of this.#tables) if (t === table) return name;
    throw new RangeError('journal: unknown table');
  }

  #commit(): void {
    this.#undo.length = 0;
    if (this.#changed.size === 0) return;
    const batch = [...this.#changed.values()];
    this.#changed.clear();
    this.#onCommit(batch);
  }
}
