// Links to next hops: each frame sent or counted once under one reason, whatever happens to the
// link while it is being made; a peer in back-off is skipped.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerLinks } from '../../src/server/forward.js';
import type { MessageLink } from '../../src/link/message-link.js';
import type { DocumentNode } from '../../src/pki/types.js';
import type { DropReason } from '../../src/ops/metrics.js';
import { silentLogger } from '../../src/ops/log.js';
import { idKey } from '../../src/util/bytes.js';

function peer(n: number): DocumentNode {
  return { name: `mix${n}`, identityKey: new Uint8Array(32).fill(n), linkKey: new Uint8Array(32), role: 'mix', layer: 2, tcpAddress: '127.0.0.1:1', wsAddress: null, mixKeys: [] };
}

class FakeLink implements MessageLink {
  readonly remoteStatic = new Uint8Array(32);
  isOpen = true;
  readonly written: Uint8Array[] = [];
  trySend(m: Uint8Array): boolean {
    this.written.push(m);
    return true;
  }
  send(m: Uint8Array): Promise<void> {
    this.written.push(m);
    return Promise.resolve();
  }
  close(): Promise<unknown> {
    this.isOpen = false;
    return Promise.resolve();
  }
  readonly setHandler = (): void => undefined;
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {}
}

/** PeerLinks whose connections the test settles by hand, counting every outcome. */
function harness(): {
  links: PeerLinks;
  drops: DropReason[];
  sent: () => number;
  pending: { resolve: (l: MessageLink) => void; reject: (e: Error) => void }[];
  now: { t: number };
} {
  const drops: DropReason[] = [];
  let sent = 0;
  const pending: { resolve: (l: MessageLink) => void; reject: (e: Error) => void }[] = [];
  const now = { t: 1000 };
  const links = new PeerLinks({
    clock: { now: () => now.t, setTimer: () => null, clearTimer: () => undefined },
    log: silentLogger,
    connect: () => new Promise((resolve, reject) => pending.push({ resolve, reject })),
    drop: (r) => drops.push(r),
    sent: () => sent++,
  });
  return { links, drops, sent: () => sent, pending, now };
}

const frame = (n: number): Uint8Array => Uint8Array.of(n);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('links to next hops', () => {
  test('frames queued while the link is made are sent once it is open, then sent directly', async () => {
    const h = harness();
    const p = peer(1);
    h.links.send(p, frame(1));
    h.links.send(p, frame(2));
    assert.equal(h.pending.length, 1, 'one connection for both frames');
    const link = new FakeLink();
    h.pending[0]!.resolve(link);
    await tick();
    h.links.send(p, frame(3));
    assert.deepEqual(link.written.map((f) => f[0]), [1, 2, 3]);
    assert.equal(h.sent(), 3);
    assert.deepEqual(h.drops, []);
  });

  test('a failed connection counts each queued frame once as link_down, and the peer is skipped during its back-off', async () => {
    const h = harness();
    const p = peer(1);
    h.links.send(p, frame(1));
    h.links.send(p, frame(2));
    h.pending[0]!.reject(new Error('refused'));
    await tick();
    assert.deepEqual(h.drops, ['link_down', 'link_down']);
    h.links.send(p, frame(3));
    assert.deepEqual(h.drops, ['link_down', 'link_down', 'link_down']);
    assert.equal(h.pending.length, 1, 'no new connection during the back-off');
  });

  test('a peer that leaves the documents while its link is made: its frames count once as unknown_next_hop and its link is closed unused', async () => {
    const h = harness();
    const p = peer(1);
    h.links.send(p, frame(1));
    h.links.retain(new Set([idKey(peer(2).identityKey)]));
    assert.deepEqual(h.drops, ['unknown_next_hop']);
    const link = new FakeLink();
    h.pending[0]!.resolve(link);
    await tick();
    assert.equal(link.written.length, 0);
    assert.equal(link.isOpen, false);
    assert.equal(h.sent(), 0);
    assert.deepEqual(h.drops, ['unknown_next_hop']);
  });

  test('a connection that fails after the peer left the documents counts nothing more', async () => {
    const h = harness();
    h.links.send(peer(1), frame(1));
    h.links.retain(new Set());
    h.pending[0]!.reject(new Error('refused'));
    await tick();
    assert.deepEqual(h.drops, ['unknown_next_hop']);
  });

  test('closing counts queued frames as shutdown, once, and frames sent after as shutdown', async () => {
    const h = harness();
    h.links.send(peer(1), frame(1));
    h.links.close();
    h.pending[0]!.reject(new Error('refused'));
    await tick();
    h.links.send(peer(1), frame(2));
    assert.deepEqual(h.drops, ['shutdown', 'shutdown']);
  });

  test('a peer entry from a newer document reaches the same link', async () => {
    const h = harness();
    h.links.send(peer(1), frame(1));
    const link = new FakeLink();
    h.pending[0]!.resolve(link);
    await tick();
    h.links.send({ ...peer(1) }, frame(2));
    assert.deepEqual(link.written.map((f) => f[0]), [1, 2]);
    assert.equal(h.pending.length, 1);
  });
});
