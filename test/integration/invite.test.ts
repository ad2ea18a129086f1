/**
 * Contacts by code on a whole local network, every piece real: servers as processes (the
 * gateways list the rendezvous service in the directory), two clients as `client run`
 * processes, and the commands a user types: `client invite` prints a code, `client accept CODE`
 * on the other client takes it. Neither is given the other's address or gateway.
 *
 * - The right code: both commands end with the contact made in each side's messenger; both print
 *   the same safety number, and a message sent by name arrives, through the mailbox of its own
 *   that the card named (a per-contact mailbox at the receiver's gateway).
 * - A wrong code: both commands fail with "the code did not match", and the right code is then
 *   refused as used: the code is burned.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { ClientProcess } from '../helpers/client-process.js';
import { startTwoClients } from '../helpers/two-clients.js';
import type { TwoClients } from '../helpers/two-clients.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { BIN_PATH } from '../../src/local/network.js';
import { ipcCall } from '../../src/client/ipc.js';
import { readSample } from '../../src/ops/metrics.js';
import { WORDLIST } from '../../src/messaging/wordlist.js';

interface Finished {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A CLI command as a user runs it; `onLine` sees each stdout line as it comes. */
function command(args: string[], onLine?: (line: string) => void): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      partial += b.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const l of lines) onLine?.(l);
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Starts `client invite` and resolves with its code (once printed) and its end. */
async function invite(dir: string, name: string): Promise<{ code: string; done: Promise<Finished> }> {
  let gotCode: (code: string) => void;
  const code = new Promise<string>((r) => (gotCode = r));
  const done = command(['client', 'invite', '--dir', dir, '--name', name], (line) => {
    if (/^\d+(-[a-z]+){4}$/.test(line.trim())) gotCode(line.trim());
  });
  const first = await Promise.race([code, done.then((f) => f)]);
  if (typeof first !== 'string') throw new Error(`invite ended without a code: ${JSON.stringify(first)}`);
  return { code: first, done };
}

/** `p`, or after `ms` an error that says where each client stands (status and invites). */
async function within<T>(p: Promise<T>, ms: number, clients: ClientProcess[]): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void Promise.all(
        clients.map(async (c) => {
          const st = await c.status().catch((e: unknown) => String(e));
          const inv = await command(['client', 'invites', '--dir', c.dir, '--json']);
          return `${c.dir}: ${JSON.stringify(st)} ${inv.stdout}`;
        }),
      ).then((lines) => reject(new Error(`not done in ${ms / 1000} s:\n${lines.join('\n')}`)));
    }, ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The names of the contacts of the client `c` (what `client contacts --json` lists). */
async function contactNames(c: ClientProcess): Promise<string[]> {
  const r = await ipcCall(c.socket, { op: 'contacts' });
  return (r['contacts'] as { name: string }[]).map((x) => x.name);
}

describe('contacts by code on a local network', { timeout: 600_000 }, () => {
  let net: RunningLocalNetwork;
  let alice: ClientProcess;
  let bob: ClientProcess;

  let fixture: TwoClients;

  before(async () => {
    // Light clocks: an invite needs a few round trips, not throughput, and on a loaded machine a
    // client busy making cover packets fetches its mailbox (where the answers wait) late.
    fixture = await startTwoClients('bc-invite-', 28_400, { epochPeriodMs: 20_000, mixMeanDelayMs: 10, sendRatePerS: 10, loopRatePerS: 1, fetchRatePerS: 50 });
    ({ net, alice, bob } = fixture);
  });

  after(async () => {
    await fixture?.stop();
  });

  it('invite and accept make each the other\'s contact: same safety number, a mailbox each, a message by name', async () => {
    const inv = await within(invite(alice.dir, 'bob'), 120_000, [alice, bob]);
    const acc = await within(command(['client', 'accept', inv.code, '--dir', bob.dir, '--name', 'alice']), 120_000, [alice, bob]);
    const done = await within(inv.done, 60_000, [alice, bob]);
    assert.equal(acc.status, 0, acc.stderr);
    assert.equal(done.status, 0, done.stderr);
    assert.match(done.stdout, /contact "bob" added/);
    assert.match(acc.stdout, /contact "alice" added/);
    assert.deepEqual(await contactNames(alice), ['bob']);
    assert.deepEqual(await contactNames(bob), ['alice']);
    // Each card named a mailbox of its own at its maker's gateway.
    for (const c of [alice, bob]) {
      const r = await ipcCall(c.socket, { op: 'mailbox', action: 'list' });
      assert.equal((r['mailboxes'] as unknown[]).length, 1);
    }
    // The same safety number on both sides: the cards came from each other, not from a third party.
    const safety = async (c: ClientProcess, name: string): Promise<string> => String((await ipcCall(c.socket, { op: 'contact_verify', name }))['safety_number']);
    assert.equal(await safety(alice, 'bob'), await safety(bob, 'alice'));
    // A message by name arrives.
    const sent = await within(command(['client', 'send', 'bob', 'hello from the code', '--dir', alice.dir]), 240_000, [alice, bob]);
    assert.equal(sent.status, 0, sent.stderr);
    assert.match(sent.stdout, /delivered to bob/);
    const history = await ipcCall(bob.socket, { op: 'history', name: 'alice' });
    assert.ok((history['entries'] as { text: string | null; direction: string }[]).some((e) => e.direction === 'in' && e.text === 'hello from the code'));
  });

  it('blocking a contact revokes the mailbox it writes to: its next message stops at the gateway', async () => {
    const dropped = async (): Promise<number> => {
      const text = await (await fetch(`${net.network.server('gateway-2').opsUrl}/metrics`)).text();
      return readSample(text, 'backchannel_packets_dropped_total', { reason: 'mailbox_revoked' }) ?? 0;
    };
    const before = await dropped();
    const blocked = await command(['client', 'contact', 'block', 'alice', '--dir', bob.dir]);
    assert.equal(blocked.status, 0, blocked.stderr);
    assert.match(blocked.stdout, /mailbox they write to is revoked/);
    // The gateway learns of it on one of Bob's fetch ticks; then Alice's next message is refused there.
    const deadline = Date.now() + 120_000;
    while ((await dropped()) === before) {
      assert.ok(Date.now() < deadline, 'a message to the revoked mailbox was refused at the gateway');
      await ipcCall(alice.socket, { op: 'msg_send', name: 'bob', text: 'are you there?' }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 3_000));
    }
    const history = await ipcCall(bob.socket, { op: 'history', name: 'alice' });
    assert.equal((history['entries'] as { text: string | null }[]).some((e) => e.text === 'are you there?'), false);
  });

  it('unblocking gives the contact a new mailbox inside the session: its messages arrive again', async () => {
    type Listed = { id: string; revoked: boolean };
    const list = async (): Promise<Listed[]> => (await ipcCall(bob.socket, { op: 'mailbox', action: 'list' }))['mailboxes'] as Listed[];
    const before = await list();
    const unblocked = await command(['client', 'contact', 'unblock', 'alice', '--dir', bob.dir]);
    assert.equal(unblocked.status, 0, unblocked.stderr);
    assert.match(unblocked.stdout, /new mailbox to write to/);
    const after = await list();
    const fresh = after.filter((m) => !before.some((b) => b.id === m.id));
    assert.equal(fresh.length, 1, 'one new mailbox');
    assert.equal(fresh[0]!.revoked, false);
    assert.equal(after.filter((m) => m.revoked).length, before.filter((m) => m.revoked).length, 'the revoked one stays revoked');
    // Alice learns the new address inside the session on one of her fetches; what she sends
    // before that still goes to the revoked mailbox and is refused. Her messages from then on arrive.
    const arrived = async (): Promise<boolean> =>
      ((await ipcCall(bob.socket, { op: 'history', name: 'alice' }))['entries'] as { text: string | null; direction: string }[]).some((e) => e.direction === 'in' && e.text === 'back again');
    const deadline = Date.now() + 120_000;
    while (!(await arrived())) {
      assert.ok(Date.now() < deadline, 'a message sent after the unblock arrived');
      await ipcCall(alice.socket, { op: 'msg_send', name: 'bob', text: 'back again' }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 3_000));
    }
  });

  it('a wrong code fails on both sides, and the code is burned', async () => {
    const inv = await within(invite(alice.dir, 'carol'), 120_000, [alice, bob]);
    const parts = inv.code.split('-');
    parts[1] = WORDLIST[(WORDLIST.indexOf(parts[1]!) + 1) % WORDLIST.length]!;
    const wrong = await within(command(['client', 'accept', parts.join(' '), '--dir', bob.dir, '--name', 'carol']), 120_000, [alice, bob]);
    const done = await within(inv.done, 60_000, [alice, bob]);
    for (const r of [wrong, done]) {
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /the code did not match: ask for a new one/);
    }
    // The right code, now: refused, because the invite is burned.
    const late = await within(command(['client', 'accept', inv.code, '--dir', bob.dir, '--name', 'carol2']), 120_000, [alice, bob]);
    assert.equal(late.status, 1);
    assert.match(late.stderr, /used already/);
    assert.deepEqual(await contactNames(alice), ['bob']);
    assert.deepEqual(await contactNames(bob), ['alice']);
    // Both sides list the failure.
    const list = await command(['client', 'invites', '--dir', alice.dir, '--json']);
    const mine = (JSON.parse(list.stdout) as { name: string; stage: string; failure: { code: string } | null }[]).find((i) => i.name === 'carol');
    assert.deepEqual([mine?.stage, mine?.failure?.code], ['failed', 'ERR_INVITE_MISMATCH']);
  });

  it('removing a contact forgets it and revokes the mailbox it wrote to', async () => {
    type Listed = { id: string; revoked: boolean };
    const inUse = async (): Promise<string[]> =>
      ((await ipcCall(bob.socket, { op: 'mailbox', action: 'list' }))['mailboxes'] as Listed[]).filter((m) => !m.revoked).map((m) => m.id);
    const before = await inUse();
    const removed = await command(['client', 'contact', 'remove', 'alice', '--dir', bob.dir]);
    assert.equal(removed.status, 0, removed.stderr);
    assert.match(removed.stdout, /the mailbox they wrote to is revoked/);
    assert.deepEqual(await contactNames(bob), []);
    const left = await inUse();
    assert.equal(left.length, before.length - 1, 'one mailbox fewer in use');
  });
});
