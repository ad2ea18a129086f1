/**
 * A link's timers run on the clock it is given: keepalives, the idle timeout and time-based
 * rekeying happen in virtual time, with no real time passing (the simulator's clock here).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { Link } from '../../src/link/link.js';
import type { LinkOptions } from '../../src/link/link.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import { SimClock } from '../../src/sim/clock.js';
import { MemoryTransport, pass } from '../helpers/memory-transport.js';

const serverKey = nodeBackend.randomBytes(32);
const clientKey = nodeBackend.randomBytes(32);
const serverPub = nodeBackend.x25519Base(serverKey);

async function pairOn(clock: SimClock, opts: LinkOptions): Promise<{ client: Link; server: Link; ct: MemoryTransport; st: MemoryTransport }> {
  const ct = new MemoryTransport();
  const st = new MemoryTransport();
  const clientP = Link.initiate(ct, nodeNoiseCrypto, { staticKey: clientKey, remoteStatic: serverPub, clock, ...opts });
  const serverP = Link.respond(st, nodeNoiseCrypto, { staticKey: serverKey, accept: () => true, clock, ...opts });
  pass(ct, st);
  pass(st, ct);
  pass(ct, st);
  await new Promise((r) => setImmediate(r)); // the accept callback answers asynchronously
  pass(st, ct);
  return { client: await clientP, server: await serverP, ct, st };
}

describe('link timers on an injected clock', () => {
  test('a keepalive goes out once the virtual clock passes keepaliveMs without a send', async () => {
    const clock = new SimClock(1_000_000);
    const { client, server, ct, st } = await pairOn(clock, { keepaliveMs: 1_000, idleTimeoutMs: 10_000 });
    ct.take();
    await clock.run(clock.now() + 400);
    assert.equal(ct.written.length, 0, 'nothing before keepaliveMs');
    await clock.run(clock.now() + 1_000);
    assert.ok(ct.written.length > 0, 'a keepalive frame was written');
    pass(ct, st);
    assert.ok(client.isOpen && server.isOpen);
  });

  test('a link that hears nothing for idleTimeoutMs of virtual time fails with ERR_LINK_TIMEOUT', async () => {
    const clock = new SimClock(1_000_000);
    const { client } = await pairOn(clock, { keepaliveMs: 1_000, idleTimeoutMs: 3_000 });
    await clock.run(clock.now() + 4_000);
    const info = await client.closed;
    assert.equal(info.by, 'error');
    assert.equal(info.by === 'error' && (info.error as { code?: string }).code, 'ERR_LINK_TIMEOUT');
  });

  test('the sending key is replaced after rekeyAfterMs of virtual time', async () => {
    const clock = new SimClock(1_000_000);
    const { client, server, ct, st } = await pairOn(clock, { keepaliveMs: 1_000, idleTimeoutMs: 10_000, rekeyAfterMs: 5_000 });
    // The rekey point is drawn in [2.5, 7.5] s; on a quiet link it rides on the next keepalive.
    for (let t = 0; t < 9; t++) {
      await clock.run(clock.now() + 1_000);
      pass(ct, st);
      pass(st, ct);
    }
    assert.ok(client.stats.rekeys >= 1, 'the client rekeyed');
    await client.send(Uint8Array.of(1, 2, 3));
    pass(ct, st);
    assert.deepEqual(await server.recv(), Uint8Array.of(1, 2, 3), 'the peer follows the new key');
  });
});
