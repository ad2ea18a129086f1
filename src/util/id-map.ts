/**
 * A map from byte-string ids (node ids, keys) to values, looked up without building a key: by the
 * id's first bytes as a small integer, then the whole id compared. For lookups per packet, where
 * idKey's string (src/util/bytes.ts) costs an allocation and a string hash every time (about three
 * times the cost of a lookup here). Ids that share their first bytes only share a bucket. Portable.
 */
interface Entry<V> {
  readonly id: Uint8Array;
  value: V;
  /** The next entry whose id starts with the same bytes. */
  next: Entry<V> | null;
}

export class IdMap<V> {
  /** Chains by the first 30 bits of the id: a small integer, which a Map hashes without allocating. */
  readonly #chains = new Map<number, Entry<V>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(id: Uint8Array): V | undefined {
    for (let e: Entry<V> | null = this.#chains.get(head(id)) ?? null; e !== null; e = e.next) if (same(e.id, id)) return e.value;
    return undefined;
  }

  has(id: Uint8Array): boolean {
    for (let e: Entry<V> | null = this.#chains.get(head(id)) ?? null; e !== null; e = e.next) if (same(e.id, id)) return true;
    return false;
  }

  /** Sets the value for `id` (a copy of `id` is kept). */
  set(id: Uint8Array, value: V): void {
    const h = head(id);
    const first = this.#chains.get(h);
    for (let e: Entry<V> | null = first ?? null; e !== null; e = e.next) {
      if (same(e.id, id)) {
        e.value = value;
        return;
      }
    }
    this.#chains.set(h, { id: id.slice(), value, next: first ?? null });
    this.#size++;
  }

  /** Removes `id`; true when it was there. */
  delete(id: Uint8Array): boolean {
    const h = head(id);
    let prev: Entry<V> | null = null;
    for (let e = this.#chains.get(h) ?? null; e !== null; prev = e, e = e.next) {
      if (!same(e.id, id)) continue;
      if (prev !== null) prev.next = e.next;
      else if (e.next !== null) this.#chains.set(h, e.next);
      else this.#chains.delete(h);
      this.#size--;
      return true;
    }
    return false;
  }

  clear(): void {
    this.#chains.clear();
    this.#size = 0;
  }

  /** Every id (the map's own copy: do not change it) and value, in no particular order. */
  *entries(): IterableIterator<[Uint8Array, V]> {
    for (const first of this.#chains.values()) for (let e: Entry<V> | null = first; e !== null; e = e.next) yield [e.id, e.value];
  }
}

function head(id: Uint8Array): number {
  if (id.length >= 4) return id[0]! | (id[1]! << 8) | (id[2]! << 16) | ((id[3]! & 0x3f) << 24);
  let h = id.length << 24;
  for (let i = 0; i < id.length; i++) h |= id[i]! << (8 * i);
  return h;
}

/** Ids are public (node ids, keys): an early exit leaks nothing. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
