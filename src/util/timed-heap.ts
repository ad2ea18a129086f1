/**
 * A binary min-heap of items by due time, first in first out among equal due times: the order
 * depends only on the due times and the order of pushes, never on the heap's internals. The mix
 * node's delay queue and the simulator's clock both keep their items in one. Portable.
 */
export class TimedHeap<T> {
  // Parallel arrays: due time, push sequence (the tie-break), item.
  readonly #due: number[] = [];
  readonly #seq: number[] = [];
  readonly #items: T[] = [];
  #nextSeq = 0;

  get size(): number {
    return this.#due.length;
  }

  /** The due time of the earliest item, or undefined when empty. */
  get nextDue(): number | undefined {
    return this.#due[0];
  }

  push(due: number, item: T): void {
    this.#due.push(due);
    this.#seq.push(this.#nextSeq++);
    this.#items.push(item);
    let i = this.#due.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(i, parent)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  /** Removes and returns the earliest item; the heap must not be empty. */
  pop(): T {
    const top = this.#items[0]!;
    const last = this.#due.length - 1;
    if (last > 0) this.#swap(0, last);
    this.#due.pop();
    this.#seq.pop();
    this.#items.pop();
    const n = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#before(r, l) ? r : l;
      if (!this.#before(c, i)) break;
      this.#swap(i, c);
      i = c;
    }
    return top;
  }

  /** True when entry i comes before entry j. */
  #before(i: number, j: number): boolean {
    const a = this.#due[i]!;
    const b = this.#due[j]!;
    return a < b || (a === b && this.#seq[i]! < this.#seq[j]!);
  }

  #swap(i: number, j: number): void {
    const d = this.#due;
    const s = this.#seq;
    const it = this.#items;
    const td = d[i]!;
    d[i] = d[j]!;
    d[j] = td;
    const ts = s[i]!;
    s[i] = s[j]!;
    s[j] = ts;
    const ti = it[i]!;
    it[i] = it[j]!;
    it[j] = ti;
  }
}
