/**
 * Replay detection for a mix node. Sphinx gives every packet a replay tag (SHA-512/256 of alpha,
 * unique per packet and per mix key); a node that forwards the same tag twice under one key lets
 * an observer follow a packet by replaying it, so the second copy is dropped.
 *
 * A cache lives as long as its mix key: one per epoch, dropped whole when the key is retired, so
 * entries are never removed one by one and the table needs no tombstones. Memory is bounded: the
 * table doubles up to the size that holds `maxEntries` at load factor 1/2.
 *
 * Under pressure (more than `maxEntries` fresh tags in one epoch) the cache degrades by a fixed
 * rule, never by dropping everything and never by waving a replay through: further tags go into
 * an overflow Bloom filter of BLOOM_BITS_PER_ENTRY bits per expected entry (`overflowEntries`,
 * by default `maxEntries` again) with BLOOM_HASHES keyed probes. A replay is always caught; a
 * fresh packet is taken for a replay (and dropped) with the filter's false-positive rate, about
 * 2^-20 (one in a million) up to `overflowEntries` tags in it, then rising smoothly with the load:
 * 0.3% at twice that, 7% at three times, 28% at four (`falsePositiveRate`). The filter costs
 * 29/8 bytes per expected entry, a quarter of the table's 16 at load 1/2.
 */
import { randomFillSync } from 'node:crypto';
import { REPLAY_TAG_LENGTH } from '../sphinx/constants.js';
import { abytes, aint } from '../util/bytes.js';

/**
 * Bytes of the tag kept per entry. 128 bits of a hash output: a false 'replay' among 2^25 stored
 * tags happens with probability about 2^-79, far below any other loss on the path.
 */
export const REPLAY_ENTRY_LENGTH = 16;
const WORDS_PER_SLOT = REPLAY_ENTRY_LENGTH / 4;

/**
 * The largest bound a cache accepts: 2^25 entries take 2^26 slots of 16 bytes, 1 GiB. A node at
 * 10 000 packets/s fills 2^24 (12 M) in a 20-minute epoch.
 */
export const MAX_REPLAY_ENTRIES = 1 << 25;

/**
 * A default bound: 20-minute epochs (DESIGN.md, Defaults) at about 3 500 packets/s per key, which
 * is what one core unwraps (~90 us per packet with the Node backend); 128 MiB once full.
 */
export const DEFAULT_REPLAY_ENTRIES = 1 << 22;

/** Bits of the overflow Bloom filter per expected entry, and its probes: a false-positive rate of 2^-20 at that load. */
export const BLOOM_BITS_PER_ENTRY = 29;
export const BLOOM_HASHES = 20;

/** The table starts with room for this many entries (16 KiB) unless told otherwise. */
const DEFAULT_INITIAL_ENTRIES = 512;
const MIN_SLOTS = 16;

/** 'full' is never given since the overflow filter; it stays for callers that still count it. */
export type ReplayVerdict = 'fresh' | 'replay' | 'full';

export interface ReplayCacheOptions {
  /** The most tags held exactly; beyond it tags go to the overflow filter. In [1, MAX_REPLAY_ENTRIES]. */
  readonly maxEntries: number;
  /** Tags the overflow filter is sized for (at a false-positive rate of 2^-20). Default `maxEntries`; in [1, MAX_REPLAY_ENTRIES]. */
  readonly overflowEntries?: number;
  /** Room at the start, in entries (rounded up); the table doubles from there. Default 512. */
  readonly initialEntries?: number;
  /**
   * 16 bytes that key the slot index. Default: fresh random bytes. Senders choose alpha and so
   * can grind tags; a secret key keeps them from aiming many tags at one probe chain.
   */
  readonly hashKey?: Uint8Array;
}

/** A bare number is `maxEntries`. */
function optionsOf(o: number | ReplayCacheOptions): ReplayCacheOptions {
  return typeof o === 'number' ? { maxEntries: o } : o;
}

function nextPowerOfTwo(n: number): number {
  let p = MIN_SLOTS;
  while (p < n) p *= 2;
  return p;
}

/** The little-endian 32-bit word at `off` of `b`, as a signed int32 (what an Int32Array holds). */
function word(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24);
}

/**
 * The replay tags seen under one mix key: an open-addressing (linear probing) hash table of
 * 16-byte entries in one Int32Array. An all-zero entry marks an empty slot; the all-zero tag
 * itself (which a hash output is in practice never) is remembered in a flag.
 *
 * @example
 * const cache = new ReplayCache({ maxEntries: 1 << 20 });
 * if (cache.check(result.replayTag) !== 'fresh') drop();
 */
export class ReplayCache {
  readonly maxEntries: number;
  readonly #initialSlots: number;
  readonly #maxSlots: number;
  readonly #key: Int32Array;
  #table: Int32Array;
  #mask: number;
  /** Grow before the count passes this: half the slots. */
  #growAt: number;
  #size = 0;
  #zeroSeen = false;
  readonly #bloomBits: number;
  /** The overflow filter, made when the table is full. */
  #bloom: Uint32Array | null = null;
  #overflowed = 0;

  /**
   * `init` is the options, or just `maxEntries`.
   * @throws {TypeError|RangeError} for a bound outside [1, MAX_REPLAY_ENTRIES], a negative or
   *   non-integer initial size, or a hash key that is not 16 bytes.
   */
  constructor(init: number | ReplayCacheOptions) {
    const options = optionsOf(init);
    aint('maxEntries', options.maxEntries, 1, MAX_REPLAY_ENTRIES);
    const initial = options.initialEntries ?? DEFAULT_INITIAL_ENTRIES;
    aint('initialEntries', initial, 0, MAX_REPLAY_ENTRIES);
    this.maxEntries = options.maxEntries;
    const overflow = options.overflowEntries ?? options.maxEntries;
    aint('overflowEntries', overflow, 1, MAX_REPLAY_ENTRIES);
    this.#bloomBits = overflow * BLOOM_BITS_PER_ENTRY;
    this.#maxSlots = nextPowerOfTwo(2 * this.maxEntries);
    this.#initialSlots = Math.min(this.#maxSlots, nextPowerOfTwo(2 * initial));
    const key = new Uint8Array(REPLAY_ENTRY_LENGTH);
    if (options.hashKey !== undefined) {
      abytes('hashKey', options.hashKey, REPLAY_ENTRY_LENGTH);
      key.set(options.hashKey);
    } else {
      randomFillSync(key);
    }
    this.#key = Int32Array.of(word(key, 0), word(key, 4), word(key, 8), word(key, 12));
    key.fill(0);
    this.#table = new Int32Array(this.#initialSlots * WORDS_PER_SLOT);
    this.#mask = this.#initialSlots - 1;
    this.#growAt = this.#initialSlots / 2;
  }

  /** Tags held. */
  get size(): number {
    return this.#size;
  }

  /** Slots in the table now (a power of two, at most twice `maxEntries` rounded up). */
  get slots(): number {
    return this.#mask + 1;
  }

  /** Bytes the table (and the overflow filter, once made) take now. */
  get byteLength(): number {
    return this.#table.byteLength + (this.#bloom?.byteLength ?? 0);
  }

  /** Tags remembered in the overflow filter (beyond `maxEntries`). */
  get overflowed(): number {
    return this.#overflowed;
  }

  /** The chance that a fresh tag is taken for a replay now: 0 until the table is full, then the filter's. */
  get falsePositiveRate(): number {
    if (this.#overflowed === 0) return 0;
    return (1 - Math.exp((-BLOOM_HASHES * this.#overflowed) / this.#bloomBits)) ** BLOOM_HASHES;
  }

  /**
   * Looks up `tag` (a 32-byte replay tag; its first 16 bytes are kept) and remembers it when new.
   * 'fresh': first sighting, now remembered; 'replay': seen before; 'full': not seen before but
   * the cache holds `maxEntries` tags, so it was not remembered and the packet must be dropped.
   * @throws {TypeError|RangeError} when `tag` is not a 32-byte Uint8Array.
   */
  check(tag: Uint8Array): ReplayVerdict {
    // Checked inline first: this runs for every packet, and abytes takes its lengths as an array.
    if (!(tag instanceof Uint8Array) || tag.length !== REPLAY_TAG_LENGTH) abytes('tag', tag, REPLAY_TAG_LENGTH);
    const w0 = word(tag, 0);
    const w1 = word(tag, 4);
    const w2 = word(tag, 8);
    const w3 = word(tag, 12);
    if ((w0 | w1 | w2 | w3) === 0) {
      if (this.#zeroSeen) return 'replay';
      if (this.#size >= this.maxEntries) return this.#overflow(w0, w1, w2, w3);
      this.#zeroSeen = true;
      this.#size++;
      return 'fresh';
    }
    const t = this.#table;
    const mask = this.#mask;
    for (let i = this.#slotOf(w0, w1, w2, w3); ; i = (i + 1) & mask) {
      const o = i * WORDS_PER_SLOT;
      const a = t[o]!;
      const b = t[o + 1]!;
      const c = t[o + 2]!;
      const d = t[o + 3]!;
      if (a === w0 && b === w1 && c === w2 && d === w3) return 'replay';
      if ((a | b | c | d) === 0) {
        if (this.#size >= this.maxEntries) return this.#overflow(w0, w1, w2, w3);
        if (this.#size + 1 > this.#growAt && this.slots < this.#maxSlots) {
          this.#grow();
          this.#insert(w0, w1, w2, w3);
        } else {
          t[o] = w0;
          t[o + 1] = w1;
          t[o + 2] = w2;
          t[o + 3] = w3;
        }
        this.#size++;
        return 'fresh';
      }
    }
  }

  /**
   * A tag not in the full table: 'replay' when every probe of it is set in the overflow filter
   * (a replay of a tag remembered there, or a false positive), else remembered there: 'fresh'.
   * Probes by double hashing of two keyed hashes of the tag.
   */
  #overflow(w0: number, w1: number, w2: number, w3: number): ReplayVerdict {
    const m = this.#bloomBits;
    const bloom = (this.#bloom ??= new Uint32Array(Math.ceil(m / 32)));
    const k = this.#key;
    const h1 = mix32(w0 ^ k[1]!, w1 ^ k[2]!, w2 ^ k[3]!, w3 ^ k[0]!) % m;
    const h2 = (mix32(w3 ^ k[2]!, w2 ^ k[0]!, w1 ^ k[3]!, w0 ^ k[1]!) % (m - 1)) + 1;
    let all = true;
    let i = h1;
    for (let j = 0; j < BLOOM_HASHES; j++) {
      if ((bloom[i >>> 5]! & (1 << (i & 31))) === 0) {
        all = false;
        bloom[i >>> 5]! |= 1 << (i & 31);
      }
      i += h2;
      if (i >= m) i -= m;
    }
    if (all) return 'replay';
    this.#overflowed++;
    return 'fresh';
  }

  /** Forgets every tag, zeroes the table and shrinks it back to its initial size. */
  clear(): void {
    this.#bloom?.fill(0);
    this.#bloom = null;
    this.#overflowed = 0;
    this.#table.fill(0);
    this.#table = new Int32Array(this.#initialSlots * WORDS_PER_SLOT);
    this.#mask = this.#initialSlots - 1;
    this.#growAt = this.#initialSlots / 2;
    this.#size = 0;
    this.#zeroSeen = false;
  }

  /**
   * The first probe for a tag. Tags are hash outputs, so any bits would do for honest traffic;
   * the key and the murmur3 finalizer keep an attacker who grinds alphas from choosing slots.
   */
  #slotOf(w0: number, w1: number, w2: number, w3: number): number {
    const k = this.#key;
    let h = Math.imul(w0 ^ k[0]!, 0x9e3779b1) ^ Math.imul(w1 ^ k[1]!, 0x85ebca77);
    h ^= Math.imul(w2 ^ k[2]!, 0xc2b2ae3d) ^ Math.imul(w3 ^ k[3]!, 0x27d4eb2f);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h & this.#mask;
  }

  /** Stores a tag known to be absent, with room known to be there. */
  #insert(w0: number, w1: number, w2: number, w3: number): void {
    const t = this.#table;
    const mask = this.#mask;
    for (let i = this.#slotOf(w0, w1, w2, w3); ; i = (i + 1) & mask) {
      const o = i * WORDS_PER_SLOT;
      if ((t[o]! | t[o + 1]! | t[o + 2]! | t[o + 3]!) === 0) {
        t[o] = w0;
        t[o + 1] = w1;
        t[o + 2] = w2;
        t[o + 3] = w3;
        return;
      }
    }
  }

  /** Doubles the table and re-inserts every entry; the old table is zeroed. */
  #grow(): void {
    const old = this.#table;
    const slots = Math.min(this.#maxSlots, this.slots * 2);
    this.#table = new Int32Array(slots * WORDS_PER_SLOT);
    this.#mask = slots - 1;
    this.#growAt = slots / 2;
    for (let o = 0; o < old.length; o += WORDS_PER_SLOT) {
      const a = old[o]!;
      const b = old[o + 1]!;
      const c = old[o + 2]!;
      const d = old[o + 3]!;
      if ((a | b | c | d) !== 0) this.#insert(a, b, c, d);
    }
    old.fill(0);
  }
}

/** A 32-bit hash of four words (murmur3's finalizer over a keyed mix), unsigned. */
function mix32(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a, 0xcc9e2d51) ^ Math.imul(b, 0x1b873593) ^ Math.imul(c, 0xe6546b64) ^ Math.imul(d, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * One ReplayCache per mix-key epoch, made on first use. The node calls `retain` when keys rotate
 * so that a retired key's tags go with it.
 *
 * @example
 * const caches = new ReplayCaches({ maxEntries: DEFAULT_REPLAY_ENTRIES });
 * caches.forEpoch(outcome.epoch).check(outcome.replayTag);
 * caches.retain([current, next]);
 */
/** What ReplayCaches needs of a journal on disk (replay-journal.ts); none in tests and the simulator. */
export interface ReplayTagJournal {
  load(epoch: number): Uint8Array[];
  /** Records a fresh tag; returns its sequence number (1, 2, ... since the journal opened). */
  record(epoch: number, tag: Uint8Array): number;
  /** Whether a recorded tag is still unwritten. */
  readonly dirty: boolean;
  /** Every tag up to this sequence number is written. */
  readonly written: number;
  flush(): void;
  retain(epochs: readonly number[]): void;
}

export class ReplayCaches {
  readonly #options: ReplayCacheOptions;
  readonly #caches = new Map<number, ReplayCache>();
  readonly #journal: ReplayTagJournal | null;

  /**
   * With a journal, a cache made for an epoch starts with the tags recorded for it, and fresh tags
   * seen through `check` are recorded.
   * @throws {TypeError|RangeError} as the ReplayCache constructor (checked here, not at first use).
   */
  constructor(init: number | ReplayCacheOptions, journal: ReplayTagJournal | null = null) {
    const options = optionsOf(init);
    // Fail on bad options now rather than at the first packet. Without a given hashKey, each
    // epoch's cache draws its own.
    new ReplayCache({ ...options, initialEntries: 0 });
    this.#options = options;
    this.#journal = journal;
  }

  /**
   * The cache for `epoch`, made if there was none (with the journal's tags for it, when there is
   * a journal).
   * @throws {TypeError|RangeError} when `epoch` is not a non-negative safe integer.
   */
  forEpoch(epoch: number): ReplayCache {
    let cache = this.#caches.get(epoch);
    if (cache === undefined) {
      aint('epoch', epoch, 0, Number.MAX_SAFE_INTEGER);
      cache = new ReplayCache(this.#options);
      if (this.#journal !== null) {
        const full = new Uint8Array(REPLAY_TAG_LENGTH);
        for (const kept of this.#journal.load(epoch)) {
          full.set(kept);
          cache.check(full);
        }
      }
      this.#caches.set(epoch, cache);
    }
    return cache;
  }

  /**
   * Checks `tag` in the cache of `epoch`; a fresh one is also recorded in the journal, and
   * `lastRecorded` names it for `ensureWritten`.
   */
  check(epoch: number, tag: Uint8Array): ReplayVerdict {
    const verdict = this.forEpoch(epoch).check(tag);
    if (verdict === 'fresh' && this.#journal !== null) this.lastRecorded = this.#journal.record(epoch, tag);
    return verdict;
  }

  /** The journal's sequence number of the last fresh tag (0 without a journal). */
  lastRecorded = 0;

  /**
   * Writes the journal's buffered tags when tag `seq` (from `lastRecorded`) is among them: the
   * node calls it before the packet of that tag leaves, so that no packet goes on whose tag a
   * crash could lose. Most packets wait longer than the journal's batch interval and cost nothing.
   */
  ensureWritten(seq: number): void {
    const j = this.#journal;
    if (j !== null && j.written < seq) j.flush();
  }

  /** Writes every buffered tag (before a packet whose tag is not known leaves, e.g. an acknowledgement). */
  beforeSend(): void {
    if (this.#journal?.dirty === true) this.#journal.flush();
  }

  /** Drops (and zeroes) every cache whose epoch is not in `epochs`, with its journal file. */
  retain(epochs: readonly number[]): void {
    const keep = new Set(epochs);
    for (const [epoch, cache] of this.#caches) {
      if (!keep.has(epoch)) {
        cache.clear();
        this.#caches.delete(epoch);
      }
    }
    this.#journal?.retain(epochs);
  }

  /** Drops (and zeroes) every cache in memory and writes what the journal holds; its files stay for the next start. */
  close(): void {
    for (const cache of this.#caches.values()) cache.clear();
    this.#caches.clear();
    this.#journal?.flush();
  }

  /** The epochs that have a cache, in ascending order. */
  epochs(): number[] {
    return [...this.#caches.keys()].sort((a, b) => a - b);
  }

  /** Tags held over every epoch. */
  get size(): number {
    let n = 0;
    for (const c of this.#caches.values()) n += c.size;
    return n;
  }

  /** Bytes the tables take over every epoch. */
  get byteLength(): number {
    let n = 0;
    for (const c of this.#caches.values()) n += c.byteLength;
    return n;
  }

  /** Drops (and zeroes) every cache, and the journal's files. */
  clear(): void {
    this.retain([]);
  }
}
