/**
 * Faults on a whole local network (separate processes, 20-second epochs): an authority down out
 * of three, a mix node killed with SIGKILL and restarted, a gateway killed with SIGKILL while
 * packets arrive for its mailbox.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import { networkStatus } from '../../src/local/status.js';
import { fetchDocument } from '../../src/pki/client.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import type { SignedDocument } from '../../src/pki/types.js';
import { toHex } from '../../src/util/bytes.js';
import { dropSummary, raiseClientRate, scrape, TestClient } from '../helpers/mixnet-client.js';
import { readSample } from '../../src/ops/metrics.js';
import { BACKOFF_MAX_MS } from '../../src/server/forward.js';
import { buildInTime, nodeNamed, usableDocument } from '../helpers/documents.js';

// 20-second epochs: the gateway test builds and sends its packets and waits for their
// acknowledgements within one document's key lifetime (1.25 epochs at most), which on a loaded
// machine takes well over the 12.5 s that 10-second epochs allowed.
const EPOCH_MS = 20_000;
const NODES = ['gateway-1', 'gateway-2', 'mix-1-1', 'mix-1-2', 'mix-2-1', 'mix-2-2', 'mix-3-1', 'mix-3-2'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('faults on a local network', { timeout: 300_000 }, () => {
  let dir: string;
  let net: RunningLocalNetwork;

  const fetchDoc = (epoch: number | 'current'): Promise<SignedDocument> =>
    fetchDocument({ authorities: net.networkFile.authorities, threshold: net.networkFile.threshold, epoch, ed: nodeEd25519, timeoutMs: 2_000 });

  /** Waits for a valid document of an epoch after `epoch`. */
  async function nextDocument(epoch: number, timeoutMs = 4 * EPOCH_MS): Promise<SignedDocument> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const d = await fetchDoc('current');
        if (d.document.epoch > epoch) return d;
      } catch {
        // not yet
      }
      await sleep(250);
    }
    throw new Error(`no document after epoch ${epoch}`);
  }

  /** Waits until `node` has dropped nothing as link_down for 2 s: its links to the next layer are all up. */
  async function linkBackUp(node: string, timeoutMs: number): Promise<void> {
    const server = net.network.server(node);
    const linkDown = async (): Promise<number> => readSample(await scrape(server.opsUrl), 'backchannel_packets_dropped_total', { reason: 'link_down' }) ?? 0;
    const deadline = Date.now() + timeoutMs;
    let last = await linkDown();
    let since = Date.now();
    while (Date.now() - since < 2_000) {
      if (Date.now() > deadline) assert.fail(`${node} kept dropping packets as link_down for ${timeoutMs} ms; drops:\n${await dropSummary(net.network.servers)}`);
      await sleep(250);
      const now = await linkDown();
      if (now !== last) {
        last = now;
        since = Date.now();
      }
    }
  }

  /** A document of the current epoch naming every node, with most of its keys' lifetime left. */
  const freshDocument = (): Promise<SignedDocument> => usableDocument(net, NODES, { minRemainingMs: 0.8 * EPOCH_MS });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-faults-'));
    // Bursts of 200 packets from one client, far past any client's send clock: the gateway's
    // emission slots (acknowledgements go only in them) are sized to match.
    await ensureLocalNetwork({ dir, basePort: 31_200, params: { epochPeriodMs: EPOCH_MS, mixMeanDelayMs: 5, gatewayRatePerClientPerS: 100 } });
    raiseClientRate(dir);
    net = await startLocalNetwork({ dir });
  });

  after(async () => {
    await net?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a mix node killed with SIGKILL and restarted is listed and carries packets again by the next epoch', async () => {
    const name = 'mix-2-1';
    await net.network.kill(name, 'SIGKILL');
    const killedIn = (await fetchDoc('current')).document.epoch;
    net.network.start(name);
    const doc = await nextDocument(killedIn);
    const mix = doc.document.nodes.find((n) => n.name === name);
    assert.ok(mix, 'the restarted mix is in the next document');
    // Healthy again (it follows the document), and packets routed through it arrive.
    const deadline = Date.now() + 2 * EPOCH_MS;
    while (!(await networkStatus([net.network.server(name)])).nodes[0]!.healthy) {
      assert.ok(Date.now() < deadline, 'the restarted mix becomes healthy');
      await sleep(200);
    }
    // The gateways' own cover flows through every mix all the time, so while mix-2-1 was down
    // mix-1-1's link to it failed again and again and now waits out a backoff (up to
    // BACKOFF_MAX_MS) before it reconnects. Wait for that link: once mix-1-1 counts no new
    // link_down for 2 s (its cover to mix-2-1 alone is ~10 packets a second), it is up again.
    await linkBackUp('mix-1-1', BACKOFF_MAX_MS + 10_000);
    const fresh = await freshDocument();
    const gw1 = nodeNamed(fresh, 'gateway-1');
    const gw2 = nodeNamed(fresh, 'gateway-2');
    const via = [nodeNamed(fresh, 'mix-1-1'), nodeNamed(fresh, name), nodeNamed(fresh, 'mix-3-1')];
    const sender = new TestClient(fresh, gw1);
    const receiver = new TestClient(fresh, gw2);
    await sender.connect();
    await receiver.connect();
    try {
      for (let i = 0; i < 20; i++) await sender.send(sender.buildPacket(fresh, gw2, receiver.publicKey, Uint8Array.of(i), { mixes: via }).packet);
      const got = await receiver.drain(20, 5_000);
      if (got.length !== 20) assert.fail(`${got.length} of 20 packets arrived; drops:\n${await dropSummary(net.network.servers)}`);
    } finally {
      await sender.close();
      await receiver.close();
    }
  });

  it('a gateway killed with SIGKILL loses no mailbox entry it acknowledged', async () => {
    const N = 200;
    const bodyBySurb = new Map<string, string>();
    const keysBySurb = new Map<string, Uint8Array>();
    const first = await usableDocument(net, NODES, { minRemainingMs: 0 });
    const sender = new TestClient(first, nodeNamed(first, 'gateway-1'));
    const receiver = new TestClient(first, nodeNamed(first, 'gateway-2'));
    // Half an epoch of the keys' lifetime left once built: the sends, the kill and the acks fit in it.
    const { built, keysUntil: keysGone } = await buildInTime(net, NODES, EPOCH_MS / 2, (doc) => {
      bodyBySurb.clear();
      keysBySurb.clear();
      const out: Uint8Array[] = [];
      for (let i = 0; i < N; i++) {
        const body = nodeBackend.randomBytes(32);
        const p = sender.buildPacket(doc, nodeNamed(doc, 'gateway-2'), receiver.publicKey, body, { ackTo: sender, delayMs: 1 });
        bodyBySurb.set(toHex(p.surbId!), toHex(body));
        keysBySurb.set(toHex(p.surbId!), p.surbKeys!);
        out.push(p.packet);
      }
      return out;
    });
    await sender.connect();
    await receiver.connect();
    try {
      // Send half; once acknowledgements come back (deliveries are flowing), kill the receiving
      // gateway, and send the other half while it is down and while it restarts.
      const acks: Awaited<ReturnType<TestClient['drain']>> = [];
      for (let i = 0; i < N / 2; i++) await sender.send(built[i]!);
      // Acknowledgements can come back only while the hops hold the keys they were built with.
      while (acks.length < 20) {
        if (Date.now() >= keysGone) assert.fail(`acknowledgements arrive (${acks.length} of 20); drops:\n${await dropSummary(net.network.servers)}`);
        const a = await sender.fetchOne();
        if (a !== null) acks.push(a);
        else await sleep(10);
      }
      await net.network.kill('gateway-2', 'SIGKILL', 0);
      for (let i = N / 2; i < N; i++) await sender.send(built[i]!);
      net.network.start('gateway-2');
      acks.push(...(await sender.drain(N, 5_000)));
      const acked = new Set<string>();
      for (const a of acks) {
        const keys = keysBySurb.get(toHex(a.surbId!));
        assert.ok(keys);
        sender.sphinx.decryptSurbPayload(a.payload, keys);
        acked.add(toHex(a.surbId!));
      }
      assert.ok(acked.size > 0, 'some deliveries were acknowledged before the kill');
      // Reconnect to the restarted gateway and drain the mailbox.
      let stored: Set<string> | null = null;
      const deadline = Date.now() + 15_000;
      while (stored === null) {
        try {
          await receiver.close();
          await receiver.connect();
          stored = new Set((await receiver.drain(N, 3_000)).map((f) => toHex(f.payload.subarray(0, 32))));
        } catch {
          assert.ok(Date.now() < deadline, 'the restarted gateway accepts its client again');
          await sleep(250);
        }
      }
      for (const s of acked) assert.ok(stored.has(bodyBySurb.get(s)!), 'every acknowledged entry is in the mailbox after the crash');
      assert.ok(stored.size >= acked.size);
    } finally {
      await sender.close();
      await receiver.close();
    }
  });

  it('with one authority of three down, the other two still make a valid consensus', async () => {
    await net.network.kill('authority-3', 'SIGKILL');
    const at = (await fetchDoc('current')).document.epoch;
    // The next epoch's document may have been signed before the kill; the one after cannot.
    const doc = await nextDocument(at + 1, 5 * EPOCH_MS);
    assert.ok(doc.document.epoch > at + 1);
    assert.ok(doc.signatures.length >= 2);
    const signers = new Set(doc.signatures.map((s) => toHex(s.authority)));
    const third = net.networkFile.authorities.find((a) => a.name === 'authority-3')!;
    assert.ok(!signers.has(toHex(third.identityKey)), 'the authority that is down signed nothing');
    assert.equal(doc.document.nodes.length, 8);
  });
});
