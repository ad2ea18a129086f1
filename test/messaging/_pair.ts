/** Helpers for the messaging tests: two parties with seeded randomness and a virtual clock. */
import { nodeBackend } from '../../src/crypto/node.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import {
  type Identity,
  type MessagingComponents,
  type PrekeyStore,
  Session,
  acceptSession,
  createBundle,
  createPrekeyStore,
  generateIdentity,
  initiateSession,
} from '../../src/messaging/index.js';
import { seededBackend } from '../helpers/seeded.js';

export const te = new TextEncoder();
export const td = new TextDecoder();

export interface Clock {
  ms: number;
}

export function components(seed: string, clock: Clock = { ms: 0 }, base: CryptoBackend = nodeBackend): MessagingComponents {
  return { crypto: seededBackend(base, te.encode(seed)), now: () => clock.ms };
}

export interface Pair {
  alice: Session;
  bob: Session;
  aliceId: Identity;
  bobId: Identity;
  bobPrekeys: PrekeyStore;
  clock: Clock;
  ca: MessagingComponents;
  cb: MessagingComponents;
}

/** Alice opens a session to Bob, and Bob accepts it by reading Alice's first message (`first`). */
export function makePair(seed: string, first = 'hello', base: CryptoBackend = nodeBackend): Pair {
  const clock = { ms: 1_000_000 };
  const ca = components(`${seed}/alice`, clock, base);
  const cb = components(`${seed}/bob`, clock, base);
  const aliceId = generateIdentity(ca.crypto);
  const bobId = generateIdentity(cb.crypto);
  const bobPrekeys = createPrekeyStore();
  const bundle = createBundle(cb.crypto, bobId, bobPrekeys);
  const alice = initiateSession(aliceId, bundle, ca);
  const { session: bob } = acceptSession(bobId, bobPrekeys, alice.encrypt(te.encode(first)), cb);
  return { alice, bob, aliceId, bobId, bobPrekeys, clock, ca, cb };
}

/** A copy of a session through its encoding. */
export function copyOf(s: Session, c: MessagingComponents): Session {
  return Session.decode(s.encode(), c);
}

/** A deterministic byte stream that can be cloned at any point (ChaCha20 blocks under a seed-derived key). */
export class Stream {
  private readonly key: Uint8Array;
  private counter: number;
  private buffer: Uint8Array;
  private used: number;

  private constructor(key: Uint8Array, counter: number, buffer: Uint8Array, used: number) {
    this.key = key;
    this.counter = counter;
    this.buffer = buffer;
    this.used = used;
  }

  static of(seed: string): Stream {
    return new Stream(nodeBackend.hkdfSha256Expand(new Uint8Array(32).fill(7), te.encode(seed), 32), 0, new Uint8Array(0), 0);
  }

  take(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let off = 0; off < length; ) {
      if (this.used === this.buffer.length) {
        const k = nodeBackend.hkdfSha256Expand(this.key, Uint8Array.of(this.counter >>> 24, this.counter >>> 16, this.counter >>> 8, this.counter), 32);
        this.counter++;
        this.buffer = nodeBackend.chacha20Keystream(k, 1024);
        this.used = 0;
      }
      const n = Math.min(length - off, this.buffer.length - this.used);
      out.set(this.buffer.subarray(this.used, this.used + n), off);
      this.used += n;
      off += n;
    }
    return out;
  }

  clone(): Stream {
    return new Stream(this.key, this.counter, this.buffer, this.used);
  }
}

/**
 * A backend whose randomness is split by what it is for, told apart by length: 64 bytes is an
 * ML-KEM key generation seed, 24 a header nonce, anything else (32: X25519 secrets, and ML-KEM
 * encapsulation randomness) the `dh` stream. Lets a test give an adversary Bob's X25519 secrets
 * and not his ML-KEM secrets.
 */
export function splitBackend(streams: { dh: Stream; kem: Stream; nonce: Stream }): CryptoBackend {
  return {
    ...nodeBackend,
    randomBytes(length: number): Uint8Array {
      if (length === 64) return streams.kem.take(length);
      if (length === 24) return streams.nonce.take(length);
      return streams.dh.take(length);
    },
  };
}
