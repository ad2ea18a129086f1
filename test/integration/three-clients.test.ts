/**
 * Issue 18's "done when", on a whole local network (servers as processes, three `client run`
 * processes, the commands a user types):
 *
 * - Alice and Bob become contacts by code (`client invite` / `client accept`); Alice and Carol by
 *   exchanging cards.
 * - Alice introduces Bob to Carol (`client introduce`); each sees the offer (`client
 *   introductions`) and accepts it (`client introduction accept`); they become contacts with the
 *   same safety number, and chat by name in both directions.
 * - A killed client: Bob queues a message and is killed with SIGKILL while Carol is killed too;
 *   both restarted, the message is delivered once, shown once, and survives another SIGKILL.
 * - A killed gateway: Carol's message waits, acknowledged, at Bob's gateway while Bob is away;
 *   the gateway is killed with SIGKILL and restarted; Bob then gets the message exactly once.
 * - A wrong code fails on both sides with a clear message, and makes no contact.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ipcCall } from '../../src/client/ipc.js';
import { WORDLIST } from '../../src/messaging/wordlist.js';
import { BIN, cli } from '../helpers/cli.js';
import type { ClientProcess } from '../helpers/client-process.js';
import { type ThreeClients, startThreeClients } from '../helpers/two-clients.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Entry {
  direction: 'in' | 'out';
  text: string | null;
  state: string;
}

interface IntroJson {
  id: number;
  role: string;
  from: string | null;
  names: string[];
  answers: string[];
  state: string;
}

/** `backchannel ...args` must succeed; its stdout. */
async function bc(args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await cli(args, { timeoutMs });
  assert.equal(r.code, 0, `backchannel ${args.slice(0, 3).join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Polls `fn` until it gives a value; fails after `timeoutMs` naming what it waited for. */
async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs / 1000} s) waiting for ${what}`);
    await sleep(250);
  }
}

async function history(c: ClientProcess, name: string): Promise<Entry[]> {
  const r = await ipcCall(c.socket, { op: 'history', name });
  assert.equal(r['ok'], true, JSON.stringify(r));
  return r['entries'] as Entry[];
}

async function contacts(c: ClientProcess): Promise<string[]> {
  return ((await ipcCall(c.socket, { op: 'contacts' }))['contacts'] as { name: string }[]).map((x) => x.name);
}

/** What `client introductions --json` lists, over the socket (no process per poll). */
async function introductions(c: ClientProcess): Promise<IntroJson[]> {
  return (await ipcCall(c.socket, { op: 'introductions' }))['introductions'] as IntroJson[];
}

async function safetyNumber(c: ClientProcess, name: string): Promise<string> {
  return String((await ipcCall(c.socket, { op: 'contact_verify', name }))['safety_number']);
}

/** `client invite` as a user runs it: resolves with the code once printed, and the command's end. */
function invite(dir: string, name: string): Promise<{ code: string; done: Promise<{ code: number | null; stdout: string; stderr: string }> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'client', 'invite', '--dir', dir, '--name', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let found = false;
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) => child.on('exit', (code) => r({ code, stdout, stderr })));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      const m = /^(\d+(?:-[a-z]+){4})$/m.exec(stdout);
      if (m !== null && !found) {
        found = true;
        resolve({ code: m[1]!, done });
      }
    });
    child.on('error', reject);
    void done.then((f) => {
      if (!found) reject(new Error(`invite ended without a code: ${JSON.stringify(f)}`));
    });
  });
}

describe('three clients: contacts by code, an introduction, chat by name, a killed client and a killed gateway', { timeout: 600_000 }, () => {
  let fixture: ThreeClients;
  let alice: ClientProcess;
  let bob: ClientProcess;
  let carol: ClientProcess;

  before(async () => {
    fixture = await startThreeClients('bc-three-', 26_000, { epochPeriodMs: 20_000, mixMeanDelayMs: 10, sendRatePerS: 20, loopRatePerS: 2, fetchRatePerS: 50 });
    ({ alice, bob, carol } = fixture);
  });

  after(async () => {
    await fixture?.stop();
  });

  it('alice and bob become contacts by code; alice and carol by cards', async () => {
    const inv = await invite(alice.dir, 'bob');
    const accepted = await cli(['client', 'accept', inv.code, '--name', 'alice', '--dir', bob.dir], { timeoutMs: 120_000 });
    const invited = await inv.done;
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(invited.code, 0, invited.stderr);
    const aliceCard = (await bc(['client', 'contact', 'export', '--dir', alice.dir])).trim();
    const carolCard = (await bc(['client', 'contact', 'export', '--dir', carol.dir])).trim();
    await bc(['client', 'contact', 'import', 'carol', carolCard, '--dir', alice.dir]);
    await bc(['client', 'contact', 'import', 'alice', aliceCard, '--dir', carol.dir]);
    assert.deepEqual(await contacts(alice), ['bob', 'carol']);
    assert.deepEqual(await contacts(bob), ['alice']);
    assert.deepEqual(await contacts(carol), ['alice']);
  });

  it('alice introduces bob to carol; both accept; they chat by name both ways with the same safety number', async () => {
    assert.match(await bc(['client', 'introduce', 'bob', 'carol', '--dir', alice.dir]), /Offered bob and carol an introduction/);
    const offerAt = (c: ClientProcess, from: string, name: string): Promise<IntroJson> =>
      waitFor(`the offer at ${c.dir}`, 60_000, async () => (await introductions(c)).find((i) => i.role === 'received' && i.state === 'offered' && i.from === from && i.names[0] === name));
    const atBob = await offerAt(bob, 'alice', 'carol');
    const atCarol = await offerAt(carol, 'alice', 'bob');
    assert.match(await bc(['client', 'introductions', '--dir', bob.dir]), /alice offers to introduce you to carol/);
    await bc(['client', 'introduction', 'accept', String(atBob.id), '--dir', bob.dir]);
    await bc(['client', 'introduction', 'accept', String(atCarol.id), '--name', 'bob', '--dir', carol.dir]);
    await waitFor('bob and carol are contacts', 60_000, async () => ((await contacts(bob)).includes('carol') && (await contacts(carol)).includes('bob') ? true : null));
    assert.equal(await safetyNumber(bob, 'carol'), await safetyNumber(carol, 'bob'));

    assert.match(await bc(['client', 'send', 'carol', 'hello carol, alice said you would like to talk', '--dir', bob.dir]), /delivered to carol/);
    assert.match(await bc(['client', 'send', 'bob', 'hello bob', '--dir', carol.dir]), /delivered to bob/);
    assert.deepEqual((await history(carol, 'bob')).map((e) => [e.direction, e.text]), [['in', 'hello carol, alice said you would like to talk'], ['out', 'hello bob']]);
    assert.deepEqual((await history(bob, 'carol')).map((e) => [e.direction, e.text, e.state]), [['out', 'hello carol, alice said you would like to talk', 'delivered'], ['in', 'hello bob', 'received']]);
    const made = (await introductions(alice)).find((i) => i.role === 'made')!;
    assert.deepEqual([made.names, made.answers, made.state], [['bob', 'carol'], ['accepted', 'accepted'], 'done']);
    // The introducer saw none of it.
    assert.equal((await history(alice, 'bob')).some((e) => e.text?.includes('hello') === true), false);
  });

  it('killed clients (SIGKILL) lose nothing: the message is delivered, and shown, exactly once', async () => {
    const text = 'queued before both clients were killed';
    await carol.kill('SIGKILL');
    assert.match(await bc(['client', 'send', 'carol', text, '--no-wait', '--dir', bob.dir]), /queued/);
    await bob.kill('SIGKILL');
    await Promise.all([bob.run(), carol.run()]);
    await waitFor('the message delivered', 120_000, async () => ((await history(bob, 'carol')).find((e) => e.text === text)?.state === 'delivered' ? true : null));
    await carol.kill('SIGKILL');
    await carol.run();
    assert.equal((await history(carol, 'bob')).filter((e) => e.text === text).length, 1);
    const shown = await bc(['client', 'recv', '--dir', carol.dir]);
    assert.equal(shown.split(text).length, 2, shown);
    assert.equal((await bc(['client', 'recv', '--dir', carol.dir])).includes(text), false);
  });

  it('a gateway killed (SIGKILL) while it holds a message keeps it: delivered once after its restart', async () => {
    const text = 'waiting at a gateway that was killed';
    await bob.kill('SIGTERM');
    await bc(['client', 'send', 'bob', text, '--no-wait', '--dir', carol.dir]);
    // Bob's gateway has stored it (acknowledged: "sent"); Bob is away, so it waits there.
    await waitFor('the message stored at gateway-2', 120_000, async () => ((await history(carol, 'bob')).find((e) => e.text === text)?.state === 'sent' ? true : null));
    await fixture.net.network.kill('gateway-2', 'SIGKILL', 0);
    fixture.net.network.start('gateway-2');
    await bob.run();
    await waitFor('the message delivered', 120_000, async () => ((await history(carol, 'bob')).find((e) => e.text === text)?.state === 'delivered' ? true : null));
    assert.equal((await history(bob, 'carol')).filter((e) => e.text === text).length, 1);
    // And the chat goes on both ways.
    assert.match(await bc(['client', 'send', 'carol', 'back again', '--dir', bob.dir]), /delivered to carol/);
  });

  it('a wrong code fails cleanly on both sides and makes no contact', async () => {
    const inv = await invite(carol.dir, 'dave');
    const words = inv.code.split('-');
    words[2] = WORDLIST[(WORDLIST.indexOf(words[2]!) + 1) % WORDLIST.length]!;
    const wrong = await cli(['client', 'accept', words.join('-'), '--name', 'carol2', '--dir', bob.dir], { timeoutMs: 120_000 });
    const invited = await inv.done;
    for (const r of [wrong, invited]) {
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /the code did not match: ask for a new one/);
    }
    assert.deepEqual(await contacts(bob), ['alice', 'carol']);
    assert.deepEqual(await contacts(carol), ['alice', 'bob']);
  });
});
