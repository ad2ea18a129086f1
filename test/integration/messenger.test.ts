/**
 * The messenger end to end: a whole local network (servers as processes), two clients as
 * `backchannel client run` processes, and every step as a user types it on the command line.
 *
 * - Alice and Bob exchange cards with `contact export` / `contact import`, chat by name both
 *   ways, and each message reaches "delivered" (the other client confirmed it in the session).
 * - A file goes through and is saved intact; the safety numbers agree.
 * - `client chat` with a pipe for stdin: unread messages shown, a typed line sent and followed
 *   to "delivered".
 * - Bob's client is killed (SIGKILL) while Alice writes; restarted, it loses nothing and shows
 *   nothing twice.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { networkPortCount } from '../../src/config/genconfig.js';
import { findFreePortRange } from '../../src/local/network.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import { ipcCall } from '../../src/client/ipc.js';
import { BIN, cli } from '../helpers/cli.js';
import { ClientProcess } from '../helpers/client-process.js';
import { raiseClientRate } from '../helpers/mixnet-client.js';

const EPOCH_MS = 20_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Entry {
  id: number;
  direction: string;
  kind: string;
  text: string | null;
  file_name: string | null;
  state: string;
  sent_at: number;
  received_at: number;
}

async function bc(args: string[], timeoutMs = 150_000): Promise<string> {
  const t0 = Date.now();
  const r = await cli(args, { timeoutMs });
  if (process.env["BC_TIMING"]) process.stderr.write(`${args.slice(0, 3).join(" ")} ${Date.now() - t0} ms\n`);
  assert.equal(r.code, 0, `backchannel ${args.slice(0, 3).join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** A contact's history over the client's socket (what `client history NAME --json` prints), without a process per poll. */
async function history(c: ClientProcess, name: string): Promise<Entry[]> {
  const r = await ipcCall(c.socket, { op: 'history', name });
  assert.equal(r['ok'], true);
  return r['entries'] as Entry[];
}

async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

describe('messenger: two clients by name on a local network', { timeout: 900_000 }, () => {
  let dir: string;
  let net: RunningLocalNetwork;
  let alice: ClientProcess;
  let bob: ClientProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-msg-'));
    const data = join(dir, 'network');
    await ensureLocalNetwork({
      dir: data,
      basePort: await findFreePortRange(networkPortCount(), 29_200),
      params: { epochPeriodMs: EPOCH_MS, mixMeanDelayMs: 10, sendRatePerS: 50, loopRatePerS: 5, fetchRatePerS: 100 },
    });
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
    if (dir && process.env['BC_KEEP'] === undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('cards by hand, chat both ways, a file, states up to delivered, safety numbers', async () => {
    const aliceCard = (await bc(['client', 'contact', 'export', '--dir', alice.dir])).trim();
    const bobCard = (await bc(['client', 'contact', 'export', '--dir', bob.dir])).trim();
    await bc(['client', 'contact', 'import', 'bob', bobCard, '--dir', alice.dir]);
    await bc(['client', 'contact', 'import', 'alice', aliceCard, '--dir', bob.dir]);
    const contacts = JSON.parse(await bc(['client', 'contacts', '--json', '--dir', alice.dir])) as Array<{ name: string }>;
    assert.deepEqual(contacts.map((c) => c.name), ['bob']);

    assert.match(await bc(['client', 'send', 'bob', 'hello', 'bob', '--dir', alice.dir]), /delivered to bob/);
    assert.match(await bc(['client', 'send', 'alice', 'hi alice', '--dir', bob.dir]), /delivered to alice/);

    // recv names the contact and shows both times; a second recv has nothing new.
    const got = await bc(['client', 'recv', '--dir', bob.dir]);
    assert.match(got, /--- from alice · sent \S+ \S+ · received \S+ \S+\nhello bob\n/);
    assert.equal(got.includes('(binary'), false, 'no messenger message shown as an anonymous one');
    assert.equal((await bc(['client', 'recv', '--dir', bob.dir])).includes('hello bob'), false);

    const file = join(dir, 'photo.bin');
    const data = nodeBackend.randomBytes(20_000);
    writeFileSync(file, data);
    assert.match(await bc(['client', 'send', 'alice', '--file', file, '--dir', bob.dir]), /delivered to alice/);
    const saved = join(dir, 'saved');
    await bc(['client', 'history', 'bob', '--save', saved, '--dir', alice.dir]);
    assert.deepEqual(readdirSync(saved), ['photo.bin']);
    assert.deepEqual(new Uint8Array(readFileSync(join(saved, 'photo.bin'))), data);

    const printed = await bc(['client', 'history', 'bob', '--json', '--dir', alice.dir]);
    const h = printed.trim().split('\n').map((l) => JSON.parse(l) as Entry);
    assert.deepEqual(h.map((e) => [e.direction, e.kind, e.text ?? e.file_name, e.direction === 'out' ? e.state : 'in']), [
      ['out', 'text', 'hello bob', 'delivered'],
      ['in', 'text', 'hi alice', 'in'],
      ['in', 'file', 'photo.bin', 'in'],
    ]);

    const number = (s: string): string => /((?:\d{5} ){5}\d{5}\n\s+(?:\d{5} ){5}\d{5})/.exec(s)![1]!.replace(/\s+/g, ' ');
    const na = number(await bc(['client', 'contact', 'verify', 'bob', '--dir', alice.dir]));
    const nb = number(await bc(['client', 'contact', 'verify', 'alice', '--dir', bob.dir]));
    assert.equal(na, nb);
    assert.equal(na.replace(/ /g, '').length, 60);
  });

  it('chat (stdin not a terminal): unread messages first, typed lines sent, states printed until delivered', async () => {
    const child = spawn(process.execPath, [BIN, 'client', 'chat', 'bob', '--dir', alice.dir], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end('typed in chat\n');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0, stderr);
    assert.match(stdout, /bob: hi alice\n/);
    assert.match(stdout, /me: typed in chat {2}\(queued\)\n/);
    assert.match(stdout, /me: typed in chat {2}\(delivered\)\n/);
    assert.ok((await history(bob, 'alice')).some((e) => e.text === 'typed in chat'));
  });

  it('a killed and restarted receiver loses nothing and shows nothing twice', async () => {
    await bob.kill('SIGKILL');
    const texts = ['while you were out 1', 'while you were out 2', 'while you were out 3'];
    for (const t of texts) assert.match(await bc(['client', 'send', 'bob', t, '--no-wait', '--dir', alice.dir]), /queued/);
    // Let some of it reach Bob's gateway before he is back.
    await sleep(1500);
    await bob.run();
    await waitFor('every message delivered', 120_000, async () => {
      const h = (await history(alice, 'bob')).filter((e) => texts.includes(e.text ?? ''));
      return h.length === 3 && h.every((e) => e.state === 'delivered') ? h : null;
    });
    await bob.kill('SIGKILL');
    await bob.run();
    const inBob = (await history(bob, 'alice')).filter((e) => e.direction === 'in').map((e) => e.text);
    assert.deepEqual(inBob.filter((t) => texts.includes(t ?? '')), texts);
    const shown = await bc(['client', 'recv', '--dir', bob.dir]);
    for (const t of texts) assert.equal(shown.split(`\n${t}\n`).length, 2, `${t} shown once`);
    assert.equal((await bc(['client', 'recv', '--dir', bob.dir])).includes('while you were out'), false);
  });
});
