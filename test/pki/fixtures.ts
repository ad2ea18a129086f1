/** Shared test material for the directory: deterministic keys, descriptors, parameters, authorities. */
import { sha512_256 } from '@noble/hashes/sha2.js';
import { signDescriptor } from '../../src/pki/descriptor.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import type { AuthorityInfo, Descriptor, MixKey, NetworkParameters, NodeRole } from '../../src/pki/types.js';
import type { AuthorizedNode } from '../../src/config/types.js';
import type { Clock } from '../../src/ops/clock.js';

const te = new TextEncoder();

/** A 32-byte value derived from a label: seeds and keys that are the same in every run. */
export function bytes32(label: string): Uint8Array {
  return sha512_256(te.encode(label));
}

export const params: NetworkParameters = {
  epochPeriodMs: 60_000,
  hops: 5,
  userPayloadLength: 2000,
  withSurb: true,
  layers: 3,
  mixMeanDelayMs: 50,
  sendRatePerS: 20,
  loopRatePerS: 5,
  fetchRatePerS: 1.5,
  gatewayRatePerClientPerS: 25,
};

export interface TestNode {
  readonly seed: Uint8Array;
  readonly identityKey: Uint8Array;
  readonly name: string;
  readonly role: NodeRole;
  readonly layer: number;
  readonly authorized: AuthorizedNode;
  /** A descriptor with mix keys for `epochs` (consecutive), and its signed bytes. */
  descriptor(epochs: readonly number[], overrides?: Partial<Descriptor>): { desc: Descriptor; bytes: Uint8Array };
}

export function testNode(name: string, role: NodeRole, layer: number): TestNode {
  const seed = bytes32(`seed ${name}`);
  const identityKey = nodeEd25519.publicKeyFromSeed(seed);
  return {
    seed,
    identityKey,
    name,
    role,
    layer,
    authorized: { name, identityKey, role, layer },
    descriptor(epochs, overrides = {}) {
      const mixKeys: MixKey[] = epochs.map((epoch) => ({ epoch, publicKey: bytes32(`mix ${name} ${epoch}`) }));
      const desc: Descriptor = {
        name,
        identityKey,
        linkKey: bytes32(`link ${name}`),
        role,
        layer,
        tcpAddress: `127.0.0.1:${10000 + (identityKey[0]! << 4) + layer}`,
        wsAddress: role === 'gateway' ? `ws://127.0.0.1:${20000 + identityKey[0]!}/link` : null,
        mixKeys,
        ...overrides,
      };
      return { desc, bytes: signDescriptor(desc, seed, nodeEd25519) };
    },
  };
}

/** One gateway and two mixes per layer. */
export function testNetwork(prefix = 'n'): TestNode[] {
  const nodes = [testNode(`${prefix}-gw0`, 'gateway', 0), testNode(`${prefix}-gw1`, 'gateway', 0)];
  for (let layer = 1; layer <= 3; layer++) for (let i = 0; i < 2; i++) nodes.push(testNode(`${prefix}-mix${layer}.${i}`, 'mix', layer));
  return nodes;
}

export interface TestAuthority {
  readonly seed: Uint8Array;
  readonly info: AuthorityInfo;
}

export function testAuthorities(n: number, prefix = 'auth'): TestAuthority[] {
  return Array.from({ length: n }, (_, i) => {
    const seed = bytes32(`authority ${prefix} ${i}`);
    return { seed, info: { name: `${prefix}${i}`, identityKey: nodeEd25519.publicKeyFromSeed(seed), url: `http://${prefix}${i}.test` } };
  });
}

export const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

/** A clock that moves only when told: timers run in time order, promises settle between them. */
export class ManualClock implements Clock {
  private timers: Array<{ id: number; at: number; fn: () => void }> = [];
  private nextId = 1;
  t: number;
  constructor(t: number) {
    this.t = t;
  }
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ id, at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  /** Runs every timer due up to `target`, in time order, letting promises settle after each. */
  async advanceTo(target: number): Promise<void> {
    for (;;) {
      await settle();
      const due = this.timers.filter((x) => x.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = target;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}
