/**
 * A binary min-heap of items by due time, first in first out among equal due times: the order
 * depends only on the due times and the order of pushes, never on the heap's internals. The mix
 * node's delay queue and the simulator's clock both keep their items in one. Portable.
 *
 * Sifting moves a hole rather than swapping pairs (one write per level instead of six), and the
 * due time and push number of each entry sit side by side in one array of doubles, so that a
 * comparison reads adjacent memory. Push numbers are doubles too: exact up to 2^53 pushes.
 */
export class TimedHeap<T> {
  /** [due, sequence] per entry, entry i at 2i and 2i + 1. */
  #keys: Float64Array = new Float64Array(2 * 64);
  #items: (T | undefined)[] = [];
  #size = 0;
  #nextSeq = 0;

  get size(): number {
    return this.#size;
  }

  /** The due time of the earliest item, or undefined when empty. */
  get nextDue(): number | undefined {
    return this.#size > 0 ? this.#keys[0] : undefined;
  }

  push(due: number, item: T): void {
    let i = this.#size++;
    if (2 * this.#size > this.#keys.length) this.#growKeys();
    const keys = this.#keys;
    const items = this.#items;
    const seq = this.#nextSeq++;
    // Move the hole up while the parent comes after the new entry.
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pd = keys[2 * p]!;
      if (pd < due || (pd === due && keys[2 * p + 1]! < seq)) break;
      keys[2 * i] = pd;
      keys[2 * i + 1] = keys[2 * p + 1]!;
      items[i] = items[p];
      i = p;
    }
    keys[2 * i] = due;
    keys[2 * i + 1] = seq;
    items[i] = item;
  }

  /** Removes and returns the earliest item; the heap must not be empty. */
  pop(): T {
    const items = this.#items;
    const top = items[0] as T;
    const n = --this.#size;
    const keys = this.#keys;
    const lastItem = items[n];
    items[n] = undefined;
    if (n === 0) return top;
    const due = keys[2 * n]!;
    const seq = keys[2 * n + 1]!;
    // Move the hole from the root down while a child comes before the last entry, then put it there.
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let cd = keys[2 * c]!;
      let cs = keys[2 * c + 1]!;
      const r = c + 1;
      if (r < n) {
        const rd = keys[2 * r]!;
        if (rd < cd || (rd === cd && keys[2 * r + 1]! < cs)) {
          c = r;
          cd = rd;
          cs = keys[2 * r + 1]!;
        }
      }
      if (due < cd || (due === cd && seq < cs)) break;
      keys[2 * i] = cd;
      keys[2 * i + 1] = cs;
      items[i] = items[c];
      i = c;
    }
    keys[2 * i] = due;
    keys[2 * i + 1] = seq;
    items[i] = lastItem;
    return top;
  }

  #growKeys(): void {
    const bigger = new Float64Array(this.#keys.length * 2);
    bigger.set(this.#keys);
    this.#keys = bigger;
  }
}
