/**
 * What the messenger shows while things happen, end to end through real `client run` processes on
 * a local network, and the commands a user types (test ports from 23000):
 *
 * - A 300 kB file to a contact (`client send bob --file`): the sender's progress off a terminal,
 *   a line per tenth with percentage, bytes and elapsed time, then "delivered to bob"; the
 *   receiver's `recv --follow` says "receiving from alice: N %" as the fragments come.
 * - Ctrl-C (SIGINT) while a file goes: exit 130, the message stays queued and is delivered later.
 * - An introduction: Bob's `recv --follow` and Carol's `chat alice` (stdin a pipe) each show the
 *   offer with the exact command to accept, which is run as printed; both then show the new
 *   contact once; a viewer started again shows neither again.
 * - Pruning: with the clock of Bob's database moved past the retention (the rows' times aged in
 *   the SQLite file while his client is stopped), the finished introduction is gone after a restart.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ipcCall } from '../../src/client/ipc.js';
import { CLIENT_DB_FILE } from '../../src/client/sqlite-store.js';
import { INTRODUCTION_GRACE_MS, INTRODUCTION_RETENTION_MS, INTRODUCTION_TTL_MS } from '../../src/messaging/index.js';
import { BIN, cli } from '../helpers/cli.js';
import type { ClientProcess } from '../helpers/client-process.js';
import { type ThreeClients, startThreeClients } from '../helpers/two-clients.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function bc(args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await cli(args, { timeoutMs });
  assert.equal(r.code, 0, `backchannel ${args.slice(0, 3).join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs / 1000} s) waiting for ${what}`);
    await sleep(200);
  }
}

/** A `backchannel` process whose output is kept, to wait on. */
class Run {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], stdin: 'ignore' | 'pipe' = 'ignore') {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: [stdin, 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (b: Buffer) => (this.stdout += b.toString()));
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = new Promise((r) => this.child.on('exit', (code) => r(code)));
  }

  /** Waits until `stream` matches `re`; returns the match. */
  async until(stream: 'stdout' | 'stderr', re: RegExp, timeoutMs = 90_000): Promise<RegExpExecArray> {
    return waitFor(`${re} on ${stream}; so far:\n${this[stream]}`, timeoutMs, async () => re.exec(this[stream]));
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGINT');
    return this.exited;
  }
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;

describe('the messenger as it happens: file progress, a large message coming in, introductions in recv --follow and chat, pruning', { timeout: 600_000 }, () => {
  let fixture: ThreeClients;
  let alice: ClientProcess;
  let bob: ClientProcess;
  let carol: ClientProcess;
  let follow: Run | undefined;
  let chat: Run | undefined;

  before(async () => {
    fixture = await startThreeClients('bc-msg-events-', 23_000, { epochPeriodMs: 20_000, mixMeanDelayMs: 10, sendRatePerS: 20, loopRatePerS: 2, fetchRatePerS: 50 });
    ({ alice, bob, carol } = fixture);
    for (const [x, xName, y, yName] of [[alice, 'alice', bob, 'bob'], [alice, 'alice', carol, 'carol']] as const) {
      const xCard = (await bc(['client', 'contact', 'export', '--dir', x.dir])).trim();
      const yCard = (await bc(['client', 'contact', 'export', '--dir', y.dir])).trim();
      await bc(['client', 'contact', 'import', yName, yCard, '--dir', x.dir]);
      await bc(['client', 'contact', 'import', xName, xCard, '--dir', y.dir]);
    }
    // Both sessions up (each way once), so that what follows measures the file, not the set-up.
    await bc(['client', 'send', 'bob', 'hi bob', '--dir', alice.dir]);
    await bc(['client', 'send', 'alice', 'hi alice', '--dir', bob.dir]);
    await bc(['client', 'send', 'carol', 'hi carol', '--dir', alice.dir]);
    await bc(['client', 'send', 'alice', 'hi alice', '--dir', carol.dir]);
  });

  after(async () => {
    await follow?.stop();
    await chat?.stop();
    await fixture?.stop();
  });

  it('a 300 kB file: the sender sees a line per tenth with bytes and elapsed time, the receiver sees it coming in', async () => {
    follow = new Run(['client', 'recv', '--follow', '--dir', bob.dir]);
    await follow.until('stdout', /hi bob/);
    const path = join(fixture.dir, 'photo.jpg');
    writeFileSync(path, randomBytes(300_000));
    const send = await cli(['client', 'send', 'bob', '--file', path, '--dir', alice.dir], { timeoutMs: 180_000 });
    assert.equal(send.code, 0, send.stderr);
    assert.equal(send.stdout.trim(), 'delivered to bob');
    const sent = /sent: all (\d+) fragments left this client; waiting for bob's gateway to acknowledge it/.exec(send.stderr);
    assert.ok(sent !== null, send.stderr);
    const n = Number(sent[1]);
    assert.ok(n > 100, `${n} fragments`);
    const lines = [...send.stderr.matchAll(/^sending: \d+\/(\d+) fragments sent, (\d+)\/\d+ stored at bob's gateway · (\d+)% · (\d+) kB of 300 kB · \d+:\d\d elapsed$/gm)];
    const pcts = lines.map((l) => Number(l[3]));
    // Bob's confirmation can overtake the acknowledgements and end the waiting early: his
    // gateway sends acknowledgements in place of its constant-rate cover (docs/network.md), so
    // 156 of them drain over seconds, while the confirmation rides bob's own send clock. A full
    // run showed it at 70 % (110 of 156 acknowledged). So: a line per tenth reached, in order.
    assert.ok(pcts.length >= 3 && pcts.length <= 10, send.stderr);
    assert.deepEqual(pcts, [...pcts].sort((a, b) => a - b));
    assert.equal(new Set(pcts.map((p) => Math.floor(p / 10))).size, pcts.length, 'one line per tenth');
    assert.doesNotMatch(send.stderr, /eta/);
    // Bob's viewer said it was coming, by tenths, then showed the file once.
    await follow.until('stdout', /--- from alice .*\n\[file "photo\.jpg", 300000 bytes\]/);
    const coming = [...follow.stderr.matchAll(/^receiving from alice: (\d+) % of a large message \(a file or a long text\), (\d+)\/(\d+) fragments$/gm)];
    assert.ok(coming.length >= 3, follow.stderr);
    assert.equal(Number(coming[0]![3]), n);
    assert.equal(count(follow.stdout, 'photo.jpg'), 1);
  });

  it('Ctrl-C while a file goes stops the waiting, not the sending: exit 130, and the message is delivered', async () => {
    const path = join(fixture.dir, 'second.bin');
    writeFileSync(path, randomBytes(150_000));
    const send = new Run(['client', 'send', 'bob', '--file', path, '--dir', alice.dir]);
    await send.until('stderr', /sending: /);
    send.child.kill('SIGINT');
    assert.equal(await send.exited, 130, send.stderr);
    assert.match(send.stderr, /Stopped waiting\. The message stays (queued|stored at bob's gateway): your client keeps sending it/);
    assert.match(send.stderr, new RegExp(`See its state with: npx backchannel client history bob --dir ${alice.dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    await waitFor('the file delivered', 120_000, async () => {
      const r = await ipcCall(alice.socket, { op: 'history', name: 'bob' });
      return (r['entries'] as Array<{ file_name: string | null; state: string }>).find((e) => e.file_name === 'second.bin' && e.state === 'delivered') ?? null;
    });
    await follow!.until('stdout', /\[file "second\.bin", 150000 bytes\]/);
  });

  it('an introduction shows in recv --follow and chat with the exact commands, its outcome once, and never again in a new viewer', async () => {
    chat = new Run(['client', 'chat', 'alice', '--dir', carol.dir], 'pipe');
    await chat.until('stdout', /alice: hi carol/);
    await bc(['client', 'introduce', 'bob', 'carol', '--dir', alice.dir]);
    // Each viewer shows the offer, naming who introduces whom, and the command to run.
    const atBob = await follow!.until('stdout', /alice offers to introduce you to carol\.\n {4}accept: {2}npx backchannel (client introduction accept \d+ --dir \S+)/);
    assert.match(follow!.stdout, /decline: npx backchannel client introduction decline \d+ --dir /);
    const atCarol = await chat.until('stdout', /alice offers to introduce you to bob\.\n {4}accept: {2}npx backchannel (client introduction accept \d+ --dir \S+)/);
    // The commands as printed work.
    await bc(atBob[1]!.split(' '));
    await bc(atCarol[1]!.split(' '));
    await follow!.until('stdout', /carol \(introduced by alice\) is now your contact\.\n {4}chat: {4}npx backchannel client chat carol --dir /);
    await chat.until('stdout', /bob \(introduced by alice\) is now your contact\./);
    // The introducer hears the outcome in its next recv, once.
    assert.match(await bc(['client', 'recv', '--dir', alice.dir]), /bob and carol both accepted your introduction; they are contacts now/);
    assert.doesNotMatch(await bc(['client', 'recv', '--dir', alice.dir]), /introduction/);
    // Shown once each, and a viewer started again shows neither again.
    await sleep(500);
    assert.equal(count(follow!.stdout, 'offers to introduce you'), 1);
    assert.equal(count(follow!.stdout, 'is now your contact'), 1);
    assert.equal(count(chat.stdout, 'offers to introduce you'), 1);
    assert.equal(count(chat.stdout, 'is now your contact'), 1);
    await follow!.stop();
    follow = undefined;
    chat.child.stdin!.end();
    await chat.exited;
    chat = undefined;
    for (const c of [bob, carol]) assert.doesNotMatch(await bc(['client', 'recv', '--dir', c.dir]), /introduc/);
    const again = new Run(['client', 'chat', 'alice', '--dir', carol.dir], 'pipe');
    await bc(['client', 'send', 'carol', 'one more line', '--dir', alice.dir]);
    await again.until('stdout', /alice: one more line/);
    again.child.stdin!.end();
    await again.exited;
    assert.doesNotMatch(again.stdout, /introduc/);
    // And the two talk by name.
    assert.match(await bc(['client', 'send', 'carol', 'hello carol', '--dir', bob.dir]), /delivered to carol/);
  });

  it(`a finished introduction is pruned ${INTRODUCTION_RETENTION_MS / 86_400_000} days after its answer window closed`, async () => {
    const list = async (): Promise<unknown[]> => JSON.parse(await bc(['client', 'introductions', '--json', '--dir', bob.dir])) as unknown[];
    assert.equal((await list()).length, 1);
    await bob.kill('SIGTERM');
    // The passage of time, as the database sees it: the row made that long ago.
    const age = INTRODUCTION_TTL_MS + INTRODUCTION_GRACE_MS + INTRODUCTION_RETENTION_MS + 3_600_000;
    const db = new Database(join(bob.dir, CLIENT_DB_FILE));
    db.prepare('UPDATE msg_introductions SET created_at = created_at - ?, expires_at = expires_at - ?').run(age, age);
    db.close();
    await bob.run();
    assert.deepEqual(await list(), []);
    // The contact it made stays.
    assert.match(await bc(['client', 'contacts', '--dir', bob.dir]), /carol/);
  });
});
