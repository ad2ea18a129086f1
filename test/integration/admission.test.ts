/**
 * Admission and flood limits on a whole local network (servers and clients as processes, real
 * sockets on 127.0.0.1; ports from 25,200). gateway-1 admits by proof of work (12 bits, so that
 * the test is quick; the default is ADMISSION_WORK_BITS), gateway-2 is open as local networks are.
 *
 * - A flood of fresh keys without work is refused at the handshake, each told the work it lacks,
 *   and counted; an honest `client run` on gateway-1, refused the same way at first, computes the
 *   work once, keeps it, and connects.
 * - A link flooding `retrieve_message` (an admitted key) has its excess dropped and counted
 *   (fetch_rate_limited) with no answer, never queued, while Alice's message to Bob is acknowledged
 *   as usual. Counts and states are asserted, never times.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readNetworkFile } from '../../src/config/genconfig.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { isBackchannelError } from '../../src/errors.js';
import { connectTcp } from '../../src/link/tcp.js';
import { LinkRefusedError } from '../../src/link/link.js';
import { BIN_PATH } from '../../src/local/network.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import { readSample } from '../../src/ops/metrics.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { encodeAdmission, solveWork } from '../../src/wire/admission.js';
import { WireCodec } from '../../src/wire/commands.js';
import { ClientProcess } from '../helpers/client-process.js';
import { raiseClientRate, scrape } from '../helpers/mixnet-client.js';

const WORK_BITS = 12;
const FLOOD_KEYS = 60;
const FLOOD_FETCHES = 4000;
const GATEWAY_2_CAP = 3;

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

describe('admission and flood limits on a local network', { timeout: 240_000 }, () => {
  let dir: string;
  let data: string;
  let net: RunningLocalNetwork | null = null;
  let alice: ClientProcess;
  let bob: ClientProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-admission-'));
    data = join(dir, 'network');
    await ensureLocalNetwork({ dir: data, basePort: 25_200, params: { epochPeriodMs: 30_000, mixMeanDelayMs: 10, sendRatePerS: 20, loopRatePerS: 5, fetchRatePerS: 50 } });
    raiseClientRate(data);
    const p = join(data, 'gateway-1', 'config.json');
    const c = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
    c['admission'] = { mode: 'proof-of-work', workBits: WORK_BITS };
    // The fetch bucket at its default (2 × 50/s, 500 at once): raiseClientRate lifts it for other tests.
    c['mailbox'] = { ...(c['mailbox'] as Record<string, unknown>), fetchRate: null };
    writeFileSync(p, JSON.stringify(c, null, 2));
    // gateway-2 is open as local networks are, with room for three clients: Bob and two fresh
    // keys. The layer-3 mixes that link to it before its first document take none of that room
    // (held undecided until the document, then linked as mixes: docs/network.md "Admission").
    const p2 = join(data, 'gateway-2', 'config.json');
    const c2 = JSON.parse(readFileSync(p2, 'utf8')) as Record<string, unknown>;
    c2['admission'] = { mode: 'open', maxClients: GATEWAY_2_CAP };
    writeFileSync(p2, JSON.stringify(c2, null, 2));
    net = await startLocalNetwork({ dir: data });
    alice = new ClientProcess(join(dir, 'alice'));
    bob = new ClientProcess(join(dir, 'bob'));
  });

  after(async () => {
    await alice?.kill('SIGTERM');
    await bob?.kill('SIGTERM');
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a flood of fresh keys without work, and admits an honest client that does the work once', async () => {
    const file = readNetworkFile(join(data, 'network.json'));
    const gw = file.gateways.find((g) => g.name === 'gateway-1')!;
    const [host, port] = gw.tcpAddress.split(':') as [string, string];
    const ops = net!.network.server('gateway-1').opsUrl;
    // Nothing counted yet: the layer-3 mixes that linked before gateway-1 had a document were
    // held undecided and then linked as mixes, neither refused nor admitted as clients.
    const before = await scrape(ops);
    assert.equal(readSample(before, 'backchannel_admission_total', { outcome: 'work' }), 0);
    assert.equal(readSample(before, 'backchannel_admission_total', { outcome: 'admitted' }), 0);
    let refused = 0;
    for (let i = 0; i < FLOOD_KEYS; i++) {
      const err = await connectTcp({ host, port: Number(port), staticKey: nodeBackend.randomBytes(32), remoteStatic: gw.linkKey }).then(
        (l) => {
          void l.close();
          return null;
        },
        (e: unknown) => e,
      );
      assert.ok(err instanceof LinkRefusedError && isBackchannelError(err, 'ERR_ADMISSION_WORK'), `key ${i}: ${String(err)}`);
      assert.equal(err.workBits, WORK_BITS);
      refused++;
    }
    assert.equal(refused, FLOOD_KEYS);
    const metrics = await scrape(ops);
    assert.equal(readSample(metrics, 'backchannel_admission_total', { outcome: 'work' }), FLOOD_KEYS);
    assert.equal(readSample(metrics, 'backchannel_admission_total', { outcome: 'admitted' }), 0);

    alice.init(data, 'gateway-1');
    bob.init(data, 'gateway-2');
    await Promise.all([alice.run(), bob.run()]);
    const s = await alice.status();
    assert.deepEqual(s['admission'], { state: 'ready' });
    assert.deepEqual((await bob.status())['admission'], { state: 'none' }, 'an open gateway asks nothing');
    const after = await scrape(ops);
    assert.equal(readSample(after, 'backchannel_admission_total', { outcome: 'work' }), FLOOD_KEYS + 1, 'alice was refused once, then did the work');
    assert.ok((readSample(after, 'backchannel_admission_total', { outcome: 'admitted' }) ?? 0) >= 1);

    // gateway-2 holds Bob and fills up with fresh keys: within its cap, one is refused as "full",
    // and health says degraded.
    const gw2 = file.gateways.find((g) => g.name === 'gateway-2')!;
    const [host2, port2] = gw2.tcpAddress.split(':') as [string, string];
    // Bob holds one place: exactly GATEWAY_2_CAP - 1 fresh keys are admitted, the next is refused.
    let full: unknown = null;
    let admittedFresh = 0;
    for (let i = 0; i < GATEWAY_2_CAP && full === null; i++) {
      full = await connectTcp({ host: host2, port: Number(port2), staticKey: nodeBackend.randomBytes(32), remoteStatic: gw2.linkKey }).then(
        (l) => {
          admittedFresh++;
          void l.close();
          return null;
        },
        (e: unknown) => e,
      );
    }
    assert.ok(isBackchannelError(full, 'ERR_ADMISSION_FULL'), String(full));
    assert.equal(admittedFresh, GATEWAY_2_CAP - 1, 'no place was taken by a mix');
    const health = (await (await fetch(`${net!.network.server('gateway-2').opsUrl}/healthz`)).json()) as { status: string; reasons?: string[] };
    assert.equal(health.status, 'degraded');
    assert.ok(health.reasons?.some((r) => r.startsWith('client cap reached')), JSON.stringify(health));
    assert.equal(readSample(await scrape(net!.network.server('gateway-2').opsUrl), 'backchannel_admission_total', { outcome: 'full' }), 1);
  });

  it('drops and counts a retrieve flood past the fetch bucket, with no answers, while another client\'s message is acknowledged', async () => {
    const file = readNetworkFile(join(data, 'network.json'));
    const gw = file.gateways.find((g) => g.name === 'gateway-1')!;
    const [host, port] = gw.tcpAddress.split(':') as [string, string];
    const ops = net!.network.server('gateway-1').opsUrl;
    const p = file.params;
    const codec = new WireCodec({ packetLength: geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb).packetLength });
    const key = nodeBackend.randomBytes(32);
    const nonce = (await solveWork(gw.identityKey, nodeBackend.x25519Base(key), WORK_BITS))!;
    const link = await connectTcp({
      host,
      port: Number(port),
      staticKey: key,
      remoteStatic: gw.linkKey,
      maxMessageLength: codec.commandLength,
      handshakePayload: encodeAdmission({ kind: 'work', nonce }),
    });
    const droppedBefore = readSample(await scrape(ops), 'backchannel_packets_dropped_total', { reason: 'fetch_rate_limited' }) ?? 0;
    let answers = 0;
    const reading = (async () => {
      for (;;) {
        const m = await link.recv().catch(() => null);
        if (m === null) return;
        if (codec.decode(m).kind === 'message') answers++;
      }
    })();
    // Alice sends while the flood runs: `client send` returns once the message is acknowledged.
    const sending = cli(['client', 'send', '--dir', alice.dir, '--to', bob.address, 'during the flood']);
    const frame = codec.encode({ kind: 'retrieve_message', sequence: 0 });
    const started = performance.now();
    for (let i = 0; i < FLOOD_FETCHES; i++) await link.send(frame);
    const sent = await sending;
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^stored at the recipient's gateway: /m);
    // Every flood fetch is either answered or dropped and counted; wait until they add up.
    let dropped = 0;
    for (;;) {
      dropped = (readSample(await scrape(ops), 'backchannel_packets_dropped_total', { reason: 'fetch_rate_limited' }) ?? 0) - droppedBefore;
      if (dropped + answers >= FLOOD_FETCHES) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const elapsedS = (performance.now() - started) / 1000;
    assert.equal(dropped + answers, FLOOD_FETCHES);
    // The bucket (2 × 50 fetches/s, 500 of burst) bounds the answers, however fast the flood went.
    assert.ok(dropped > 0, 'the flood met the bucket');
    assert.ok(answers <= 500 + 100 * elapsedS + 1, `answered ${answers} in ${elapsedS.toFixed(1)} s`);
    await link.close();
    await reading;
    // Bob got it.
    const got = await bob.until((s) => (s['entriesReceived'] as { fragment: number }).fragment >= 1, 60_000, 'holding alice\'s message');
    assert.ok(got);
  });
});
