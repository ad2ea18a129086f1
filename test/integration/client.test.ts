/**
 * Two clients on a whole local network, every piece real: the network from `backchannel up`'s own
 * code path (servers as processes), clients as `backchannel client init` and `backchannel client
 * run` processes, driven over their local sockets as the command line drives them.
 *
 * - 200 messages of 1 byte to 64 kB, 100 each way, all delivered exactly once and intact.
 * - Faults during an exchange: a mix node killed (SIGKILL) and restarted, the receiving gateway
 *   killed and restarted, the sending client killed (SIGKILL) and restarted: every message the
 *   sender accepted is delivered exactly once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { isBackchannelError } from '../../src/errors.js';
import { ipcCall, ipcRequest } from '../../src/client/ipc.js';
import type { IpcMessage } from '../../src/client/ipc.js';
import { ClientProcess } from '../helpers/client-process.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import { raiseClientRate, scrape } from '../helpers/mixnet-client.js';
import { readSample } from '../../src/ops/metrics.js';
import { KEY_GRACE_FRACTION } from '../../src/server/epochs.js';

const EPOCH_MS = 20_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Message sizes from 1 byte to 64 kB, log-uniform, with both ends included. */
function sizes(n: number): number[] {
  const out = [1, 65_536];
  for (let i = 2; i < n; i++) {
    const r = nodeBackend.randomBytes(4);
    const u = ((r[0]! << 16) | (r[1]! << 8) | r[2]!) / 2 ** 24;
    out.push(Math.max(1, Math.round(Math.exp(u * Math.log(65_536)))));
  }
  return out;
}

/**
 * Collects what `receiver` gets until every expected body is in; returns how often each id came.
 * @param expected message id → digest of its body
 */
async function collect(receiver: ClientProcess, expected: Map<string, string>, timeoutMs: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const m of await receiver.recv()) {
      seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
      assert.equal(digest(m.body), expected.get(m.id), `message ${m.id.slice(0, 8)} intact and expected`);
    }
    const missing = [...expected.keys()].filter((id) => !seen.has(id)).length;
    if (missing === 0) return seen;
    if (Date.now() > deadline) {
      const st = await receiver.status().catch((e: unknown) => String(e));
      throw new Error(`${missing} of ${expected.size} messages missing; receiver ${JSON.stringify(st)}`);
    }
    await sleep(500);
  }
}

/** Waits until `client` uses the document of the epoch it is now, within the epoch's first third; returns that epoch. */
async function earlyInEpoch(client: ClientProcess): Promise<number> {
  for (;;) {
    const now = Date.now();
    const epoch = Math.floor(now / EPOCH_MS);
    if (now - epoch * EPOCH_MS < EPOCH_MS / 3 && (await client.status())['epoch'] === epoch) return epoch;
    await sleep(100);
  }
}

async function waitIdle(sender: ClientProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await sender.status())['pendingMessages'] !== 0) {
    if (Date.now() > deadline) throw new Error('the sender still has unacknowledged messages');
    await sleep(500);
  }
}

describe('clients on a local network', { timeout: 600_000 }, () => {
  let dir: string;
  let net: RunningLocalNetwork;
  let alice: ClientProcess;
  let bob: ClientProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-clients-'));
    const data = join(dir, 'network');
    // Faster clocks than the defaults, so that 200 messages take seconds, not minutes.
    await ensureLocalNetwork({ dir: data, basePort: 31_400, params: { epochPeriodMs: EPOCH_MS, mixMeanDelayMs: 10, sendRatePerS: 50, loopRatePerS: 5, fetchRatePerS: 100 } });
    raiseClientRate(data);
    net = await startLocalNetwork({ dir: data });
    alice = new ClientProcess(join(dir, 'alice'));
    bob = new ClientProcess(join(dir, 'bob'));
    alice.init(data, 'gateway-1');
    bob.init(data, 'gateway-2');
    await Promise.all([alice.run(), bob.run()]);
  });

  after(async () => {
    await alice?.kill('SIGTERM');
    await bob?.kill('SIGTERM');
    await net?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('200 messages of 1 byte to 64 kB, both ways, arrive exactly once and intact', async () => {
    const toBob = new Map<string, string>();
    const toAlice = new Map<string, string>();
    const all = sizes(200);
    for (const [i, n] of all.entries()) {
      const body = nodeBackend.randomBytes(n);
      if (i % 2 === 0) toBob.set(await alice.send(bob.address, body), digest(body));
      else toAlice.set(await bob.send(alice.address, body), digest(body));
    }
    const [atBob, atAlice] = await Promise.all([collect(bob, toBob, 240_000), collect(alice, toAlice, 240_000)]);
    for (const seen of [atBob, atAlice]) {
      assert.equal(seen.size, 100);
      assert.ok([...seen.values()].every((c) => c === 1), 'no message twice');
    }
    await Promise.all([waitIdle(alice, 60_000), waitIdle(bob, 60_000)]);
    // Nothing left over: a second recv finds nothing new.
    assert.deepEqual(await bob.recv(), []);
  });

  it('an anonymous sender attaches SURBs and gets a reply through them, without giving its address', async () => {
    // A SURB lives as long as the mix keys of the epoch it was made in (a quarter epoch past its
    // end): a reply sent later is dropped by the first hop, by design, and replies are not
    // acknowledged. On a loaded machine the question can take most of that time to reach Bob, so
    // the exchange starts early in an epoch in which Alice holds that epoch's document, and is
    // tried again (at most twice more) only when Bob could answer no sooner than the SURBs expired.
    for (let attempt = 1; ; attempt++) {
      const epoch = await earlyInEpoch(alice);
      const expires = (epoch + 1 + KEY_GRACE_FRACTION) * EPOCH_MS;
      const question = new TextEncoder().encode(`who is there? (${attempt})`);
      const r = await ipcCall(alice.socket, { op: 'send', to: bob.address, body_base64: Buffer.from(question).toString('base64'), reply_surbs: 2, wait: true });
      assert.equal(r['ok'], true, JSON.stringify(r));
      const qid = r['id'] as string;
      // Bob sees the message with 2 SURBs, and nothing in it names Alice.
      let asked: IpcMessage | undefined;
      for (let i = 0; i < 120 && asked === undefined; i++) {
        await ipcRequest(bob.socket, { op: 'recv' }, (m, conn) => {
          if (m['event'] === 'message') {
            if (m['id'] === qid) asked = m;
            conn.send({ op: 'consume', seq: m['seq'] as number });
          } else if (m['event'] === 'end') conn.end();
        });
        if (asked === undefined) await sleep(250);
      }
      assert.ok(asked, 'the question arrived');
      assert.equal(asked['reply_surbs'], 2);
      assert.equal(asked['in_reply_to'], null);
      // A reply of two fragments uses both SURBs; it is reported sent (replies are not acknowledged).
      const answer = nodeBackend.randomBytes(3000);
      const sent: IpcMessage[] = [];
      await ipcRequest(bob.socket, { op: 'send', in_reply_to: qid, body_base64: Buffer.from(answer).toString('base64'), wait: true }, (m) => {
        sent.push(m);
      });
      const sentAt = Date.now();
      assert.equal(sent[0]?.['ok'], true, JSON.stringify(sent[0]));
      assert.equal(sent.at(-1)?.['event'], 'sent');
      // No SURB is left for a third fragment.
      await assert.rejects(ipcCall(bob.socket, { op: 'send', in_reply_to: qid, body_base64: Buffer.from('more').toString('base64') }), (e: unknown) =>
        isBackchannelError(e, 'ERR_CLIENT_NO_SURBS'),
      );
      // Two seconds for the reply to cross the network before its keys go.
      if (sentAt + 2_000 >= expires) {
        assert.ok(attempt < 3, `the question reached Bob in time to answer within its SURBs' lifetime (answered ${sentAt - expires} ms after they expired)`);
        continue;
      }
      const got = await collect(alice, new Map([[sent[0]!['id'] as string, digest(answer)]]), 60_000);
      assert.equal(got.size, 1);
      return;
    }
  });

  it('a mix killed, the receiving gateway restarted and the sending client killed: every accepted message arrives once', async () => {
    const expected = new Map<string, string>();
    const sendSome = async (n: number): Promise<void> => {
      for (const size of sizes(n)) {
        const body = nodeBackend.randomBytes(Math.min(size, 8000));
        expected.set(await alice.send(bob.address, body), digest(body));
        await sleep(50);
      }
    };
    await sendSome(15);
    await net.network.kill('mix-2-1', 'SIGKILL');
    await sendSome(15);
    // The receiving gateway goes down hard, and comes back.
    await net.network.kill('gateway-2', 'SIGKILL');
    await sendSome(10);
    net.network.start('gateway-2');
    await sendSome(10);
    // The sending client dies with messages still unacknowledged, then resumes from its state.
    await alice.kill('SIGKILL');
    await sleep(500);
    await alice.run();
    net.network.start('mix-2-1');
    await sendSome(10);
    const seen = await collect(bob, expected, 300_000);
    assert.equal(seen.size, expected.size);
    assert.ok([...seen.values()].every((c) => c === 1), 'no message twice');
    await waitIdle(alice, 120_000);
    // The faults were real: layer 1 lost packets to the dead mix, and Bob's gateway went away.
    let lost = 0;
    for (const name of ['mix-1-1', 'mix-1-2']) lost += readSample(await scrape(net.network.server(name).opsUrl), 'backchannel_packets_dropped_total', { reason: 'link_down' }) ?? 0;
    assert.ok(lost > 0, 'packets were lost to the killed mix');
  });
});
