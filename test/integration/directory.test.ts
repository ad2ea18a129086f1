/**
 * Clients get the directory through their gateway, never from an authority: a whole local network
 * (servers as processes), two clients initialised from a copy of its network.json in which every
 * authority's URL points at a recording HTTP server of ours instead. `client run` never reaches
 * it, yet each client gets every new epoch's document (through its gateway, verified against the
 * authorities' keys) and a message goes from one to the other.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NETWORK_FILE, networkFileToJson, readNetworkFile } from '../../src/config/genconfig.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { ClientProcess } from '../helpers/client-process.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import { raiseClientRate } from '../helpers/mixnet-client.js';

const EPOCH_MS = 20_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('clients get the directory through their gateway', { timeout: 300_000 }, () => {
  let dir: string;
  let net: RunningLocalNetwork;
  let decoy: Server;
  const decoyRequests: string[] = [];
  let alice: ClientProcess;
  let bob: ClientProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-gwdir-'));
    const data = join(dir, 'network');
    await ensureLocalNetwork({ dir: data, basePort: 28_000, params: { epochPeriodMs: EPOCH_MS, mixMeanDelayMs: 10, sendRatePerS: 20, loopRatePerS: 5, fetchRatePerS: 50 } });
    raiseClientRate(data);
    net = await startLocalNetwork({ dir: data });

    // What the clients are told about the authorities: their real keys, but our server's URL.
    decoy = createServer((req, res) => {
      decoyRequests.push(req.url ?? '');
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => decoy.listen(0, '127.0.0.1', () => r()));
    const port = (decoy.address() as { port: number }).port;
    const network = readNetworkFile(join(data, NETWORK_FILE));
    const copy = join(dir, 'clients-network');
    mkdirSync(copy);
    const redirected = { ...network, authorities: network.authorities.map((a, i) => ({ ...a, url: `http://127.0.0.1:${port}/authority-${i + 1}` })) };
    writeFileSync(join(copy, NETWORK_FILE), JSON.stringify(networkFileToJson(redirected), null, 2));

    alice = new ClientProcess(join(dir, 'alice'));
    bob = new ClientProcess(join(dir, 'bob'));
    alice.init(copy, 'gateway-1');
    bob.init(copy, 'gateway-2');
    await Promise.all([alice.run(), bob.run()]);
  });

  after(async () => {
    await alice?.kill();
    await bob?.kill();
    await net?.stop();
    await new Promise<void>((r) => (decoy ? decoy.close(() => r()) : r()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('each new epoch document comes through the gateway, a message is delivered, and no request reaches an authority', async () => {
    const first = await alice.until((s) => typeof s['epoch'] === 'number' && s['document'] === 'current', 90_000, 'on a current document');
    const e0 = first['epoch'] as number;
    // Two epoch boundaries: the next documents are fetched ahead through the gateways and adopted.
    for (const c of [alice, bob]) await c.until((s) => typeof s['epoch'] === 'number' && (s['epoch'] as number) >= e0 + 2 && s['document'] === 'current', 3 * EPOCH_MS, `on epoch ${e0 + 2}`);
    const st = await alice.status();
    const counts = st['directory'] as Record<string, number>;
    assert.ok(counts['documents']! >= 3, `documents from the gateway: ${JSON.stringify(counts)}`);
    assert.equal(counts['invalid'], 0);

    const body = nodeBackend.randomBytes(5000);
    const id = await alice.send(bob.address, body);
    const deadline = Date.now() + 60_000;
    let got: { id: string; body: Uint8Array } | undefined;
    while (got === undefined) {
      got = (await bob.recv()).find((m) => m.id === id);
      if (got === undefined) {
        if (Date.now() > deadline) throw new Error(`not delivered; bob ${JSON.stringify(await bob.status())}`);
        await sleep(300);
      }
    }
    assert.deepEqual(got.body, body);
    assert.deepEqual(decoyRequests, [], 'client run never contacted an authority');
  });
});
