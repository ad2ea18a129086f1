/**
 * Extra mailboxes on a whole local network, every piece real (servers and clients as processes,
 * driven by the command line): Alice makes two extra mailboxes with `client mailbox create
 * --wait`; Bob writes to one with the ordinary `client send --to ADDRESS`; Alice's `recv --json`
 * shows which mailbox it came to. Alice revokes it: Bob's next message to it is refused by her
 * gateway (counted at its /metrics as mailbox_revoked, never acknowledged), while her other
 * extra mailbox and her main address still work. And the fair fetch: with entries queued at a
 * client's main address, one that came later to its extra mailbox is answered second, not after
 * them (a bare test client that fetches by hand; src/server/fetch.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { BIN_PATH } from '../../src/local/network.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { readSample } from '../../src/ops/metrics.js';
import type { ClientProcess } from '../helpers/client-process.js';
import { startTwoClients } from '../helpers/two-clients.js';
import type { TwoClients } from '../helpers/two-clients.js';
import { nodeBackend } from '../../src/crypto/node.js';
import type { WireCommand } from '../../src/wire/commands.js';
import { usableDocument, nodeNamed } from '../helpers/documents.js';
import { scrape, TestClient } from '../helpers/mixnet-client.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `backchannel ARGS` to its end; its exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Received {
  readonly text: string;
  readonly mailbox: string | null;
}

/** `client recv --json` until `want` messages have come (each printed once, then read). */
async function recvAll(dir: string, want: number, timeoutMs: number): Promise<Received[]> {
  const got: Received[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < want) {
    const r = await cli(['client', 'recv', '--dir', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    for (const line of r.stdout.split('\n').filter((l) => l !== '')) {
      const m = JSON.parse(line) as { body_base64: string; mailbox: string | null };
      got.push({ text: Buffer.from(m.body_base64, 'base64').toString('utf8'), mailbox: m.mailbox });
    }
    if (got.length >= want) break;
    if (Date.now() > deadline) throw new Error(`only ${got.length} of ${want} messages came: ${JSON.stringify(got)}`);
    await sleep(300);
  }
  return got;
}

describe('extra mailboxes on a local network', { timeout: 300_000 }, () => {
  let net: RunningLocalNetwork;
  let alice: ClientProcess;
  let bob: ClientProcess;

  let fixture: TwoClients;

  before(async () => {
    fixture = await startTwoClients('bc-mailboxes-', 28_800, { epochPeriodMs: 30_000, mixMeanDelayMs: 10, sendRatePerS: 20, loopRatePerS: 5, fetchRatePerS: 50 });
    ({ net, alice, bob } = fixture);
  });

  after(async () => {
    await fixture?.stop();
  });

  it('mail to an extra mailbox arrives tagged with it; once revoked, mail to it is refused and counted, and the others still work', async () => {
    // Two extra mailboxes, each confirmed by the gateway before the command returns.
    const made: { id: string; address: string }[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await cli(['client', 'mailbox', 'create', '--wait', '--json', '--dir', alice.dir]);
      assert.equal(r.code, 0, r.stderr);
      const m = JSON.parse(r.stdout) as { id: string; address: string; registered: boolean };
      assert.equal(m.registered, true);
      assert.match(m.address, /^bc1/);
      assert.notEqual(m.address, alice.address);
      made.push(m);
    }
    const [first, second] = made as [{ id: string; address: string }, { id: string; address: string }];
    const listed = await cli(['client', 'mailbox', 'list', '--json', '--dir', alice.dir]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { id: string; registered: boolean }[]).map((m) => [m.id, m.registered]),
      made.map((m) => [m.id, true]),
    );

    // Bob writes to the first with the ordinary send; it is delivered (acknowledged by Alice's gateway).
    const sent = await cli(['client', 'send', '--dir', bob.dir, '--to', first.address, 'to the first mailbox']);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^stored at the recipient's gateway: /m);
    assert.deepEqual(await recvAll(alice.dir, 1, 60_000), [{ text: 'to the first mailbox', mailbox: first.id }]);

    // Revoked, by a prefix of its id; wait until the gateway confirmed it.
    const revoked = await cli(['client', 'mailbox', 'revoke', first.id.slice(0, 12), '--dir', alice.dir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const l = JSON.parse((await cli(['client', 'mailbox', 'list', '--json', '--dir', alice.dir])).stdout) as { id: string; revokeConfirmed: boolean }[];
      if (l.find((m) => m.id === first.id)?.revokeConfirmed === true) break;
      if (Date.now() > deadline) throw new Error('the revocation was not confirmed');
      await sleep(200);
    }
    const gateway1 = net.network.server('gateway-1').opsUrl;
    const refusedBefore = readSample(await scrape(gateway1), 'backchannel_packets_dropped_total', { reason: 'mailbox_revoked' }) ?? 0;

    // Bob writes to the revoked mailbox (without waiting: it is never acknowledged), then to the others.
    const queued = await cli(['client', 'send', '--no-wait', '--dir', bob.dir, '--to', first.address, 'to the revoked mailbox']);
    assert.equal(queued.code, 0, queued.stderr);
    for (const [to, text] of [
      [second.address, 'to the second mailbox'],
      [alice.address, 'to the main address'],
    ] as const) {
      const r = await cli(['client', 'send', '--dir', bob.dir, '--to', to, text]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^stored at the recipient's gateway: /m);
    }
    const later = await recvAll(alice.dir, 2, 60_000);
    assert.deepEqual(
      later.sort((a, b) => a.text.localeCompare(b.text)),
      [
        { text: 'to the main address', mailbox: null },
        { text: 'to the second mailbox', mailbox: second.id },
      ],
    );
    // The gateway refused the message to the revoked mailbox: counted, not stored, not acknowledged.
    const refusedBy = Date.now() + 60_000;
    for (;;) {
      const n = readSample(await scrape(gateway1), 'backchannel_packets_dropped_total', { reason: 'mailbox_revoked' }) ?? 0;
      if (n > refusedBefore) break;
      if (Date.now() > refusedBy) throw new Error('the gateway did not count a refused message for the revoked mailbox');
      await sleep(300);
    }
    const requests = await scrape(gateway1);
    assert.ok((readSample(requests, 'backchannel_mailbox_requests_total', { action: 'register', result: 'ok' }) ?? 0) >= 2);
    assert.ok((readSample(requests, 'backchannel_mailbox_requests_total', { action: 'revoke', result: 'ok' }) ?? 0) >= 1);
    // Nothing more came to Alice: the refused message was not stored.
    const status = await bob.status();
    assert.equal(status['pendingMessages'], 1, 'the message to the revoked mailbox is still unacknowledged');
    const rest = await cli(['client', 'recv', '--json', '--dir', alice.dir]);
    assert.equal(rest.stdout.trim(), '');
  });

  it("a client's acknowledgements come to its own mailbox and its loops to its main one, and none meets an intake limit", async () => {
    const gateway2 = net.network.server('gateway-2').opsUrl;
    const intake = async (address: string): Promise<number> => readSample(await scrape(gateway2), 'backchannel_mailbox_intake_total', { address }) ?? 0;
    // Nobody writes to bob: his gateway takes his loops (main) and their acknowledgements (own),
    // one for one, and the acknowledgements of his message's fragments (own).
    const [mainBefore, ownBefore] = [await intake('main'), await intake('own')];
    const text = 'x'.repeat(40_000); // about 20 fragments
    const sent = await cli(['client', 'send', '--dir', bob.dir, '--to', alice.address, text]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^stored at the recipient's gateway: /m);
    assert.deepEqual(await recvAll(alice.dir, 1, 60_000), [{ text, mailbox: null }]);
    const [main, own] = [(await intake('main')) - mainBefore, (await intake('own')) - ownBefore];
    assert.ok(main >= 3, `${main} loops came to bob's main mailbox`);
    assert.ok(own - main >= 15, `${own} entries came to bob's own mailbox, ${main} to his main one: the fragments' acknowledgements are in the own`);
    for (const name of ['gateway-1', 'gateway-2']) {
      assert.equal(readSample(await scrape(net.network.server(name).opsUrl), 'backchannel_packets_dropped_total', { reason: 'intake_limited' }) ?? 0, 0, `${name} refused nothing`);
    }
  });

  it('fair fetch: with entries queued at a client’s main address, a later one to its extra mailbox is answered second', async () => {
    const doc = await usableDocument(net, ['gateway-1', 'gateway-2'], { minRemainingMs: 10_000 });
    const gw2 = nodeNamed(doc, 'gateway-2');
    const sender = new TestClient(doc, nodeNamed(doc, 'gateway-1'));
    const receiver = new TestClient(doc, gw2);
    await sender.connect();
    await receiver.connect();
    try {
      const codec = receiver.codec;
      const next = async <K extends WireCommand['kind']>(kind: K): Promise<Extract<WireCommand, { kind: K }>> => {
        for (;;) {
          const m = await receiver.link.recv();
          if (m === null) throw new Error('test: the receiver link closed');
          const cmd = codec.decode(m);
          if (cmd.kind === kind) return cmd as Extract<WireCommand, { kind: K }>;
        }
      };
      // The receiver's extra mailbox, asked for until the gateway has it on disk.
      const aliasId = nodeBackend.x25519Base(nodeBackend.randomBytes(32));
      for (;;) {
        await receiver.link.send(codec.encode({ kind: 'mailbox_request', action: 'register', mailbox: aliasId }));
        const reply = await next('mailbox_reply');
        if (reply.result === 'ok') break;
        assert.equal(reply.result, 'pending');
        await sleep(50);
      }
      // Six entries to the main address, each stored once its acknowledgement came back, then one to the alias.
      for (let i = 0; i < 6; i++) await sender.send(sender.buildPacket(doc, gw2, receiver.publicKey, Uint8Array.of(i), { ackTo: sender }).packet);
      assert.equal((await sender.drain(6, 20_000)).length, 6, 'the six entries were stored');
      await sender.send(sender.buildPacket(doc, gw2, aliasId, Uint8Array.of(99), { ackTo: sender }).packet);
      assert.equal((await sender.drain(1, 20_000)).length, 1, 'the alias entry was stored');
      const order: string[] = [];
      let n = 0;
      for (let i = 0; i < 7; i++) {
        await receiver.link.send(codec.encode({ kind: 'retrieve_message', sequence: n }));
        const m = await next('message');
        assert.equal(m.empty, false);
        order.push(m.mailbox === undefined || m.mailbox === null ? 'main' : 'alias');
        n = m.sequence + 1;
      }
      // Oldest first, the alias entry would have come last.
      assert.deepEqual(order, ['main', 'alias', 'main', 'main', 'main', 'main', 'main']);
      await receiver.link.send(codec.encode({ kind: 'retrieve_message', sequence: n }));
      assert.equal((await next('message')).empty, true, 'each entry once: the fetches confirmed them');
    } finally {
      await sender.close();
      await receiver.close();
    }
  });
});
