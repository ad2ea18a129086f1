// `backchannel client send | recv | inbox` as a user runs them, on a real local network (servers
// as processes, `up`'s own code path) with real client processes: what send says as the message
// goes (sent, stored at the recipient's gateway, retry N), both times on recv, read messages
// again with inbox, replies by an id prefix, files sent with their name and saved with --save.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientSocketPath, ipcRequest } from '../../src/client/ipc.js';
import type { IpcMessage } from '../../src/client/ipc.js';
import { nodeBackend } from '../../src/crypto/node.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import { BIN, cli } from '../helpers/cli.js';
import { ClientProcess } from '../helpers/client-process.js';
import { raiseClientRate } from '../helpers/mixnet-client.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Listed {
  id: string;
  sent_at: number | null;
  received_at: number;
  file_name: string | null;
  body_base64: string;
  reply_surbs: number;
  read?: boolean;
}

/** `client inbox --all --json` of `dir`, parsed. */
async function inbox(dir: string): Promise<Listed[]> {
  const r = await cli(['client', 'inbox', '--all', '--json', '--dir', dir]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Listed);
}

/** The daemon's inbox lines, straight from its socket (a cheap poll, no process per look). */
async function inboxLines(dir: string): Promise<IpcMessage[]> {
  const lines: IpcMessage[] = [];
  await ipcRequest(clientSocketPath(dir), { op: 'inbox' }, (m, c) => {
    if (m['event'] === 'message') lines.push(m);
    else c.end();
  });
  return lines;
}

/** Polls `dir`'s inbox until a message satisfies `ok`; fails after `timeoutMs` naming `what`. */
async function waitForMessage(dir: string, ok: (m: Listed) => boolean, what: string, timeoutMs = 60_000): Promise<Listed> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await inboxLines(dir)).map((m) => ({ ...m, read: m['consumed'] }) as unknown as Listed).find(ok);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what} did not arrive in ${dir}`);
    await sleep(200);
  }
}

describe('client send, recv and inbox on a local network', { timeout: 180_000 }, () => {
  let root: string;
  let net: RunningLocalNetwork;
  let alice: ClientProcess;
  let bob: ClientProcess;
  let carol: ClientProcess;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'bc-cli-msg-'));
    const data = join(root, 'network');
    // Ports below the ephemeral range (32768 and up) and apart from the other tests' ranges.
    await ensureLocalNetwork({ dir: data, basePort: 27_400, params: { epochPeriodMs: 20_000, mixMeanDelayMs: 10, sendRatePerS: 10, loopRatePerS: 1, fetchRatePerS: 20 } });
    raiseClientRate(data);
    net = await startLocalNetwork({ dir: data });
    alice = new ClientProcess(join(root, 'alice'));
    bob = new ClientProcess(join(root, 'bob'));
    carol = new ClientProcess(join(root, 'carol'));
    alice.init(data, 'gateway-1');
    bob.init(data, 'gateway-2');
    carol.init(data, 'gateway-2'); // never runs: its gateway does not know its mailbox
    await Promise.all([alice.run(), bob.run()]);
  });

  after(async () => {
    await alice?.kill('SIGTERM');
    await bob?.kill('SIGTERM');
    await net?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('send says sent, then stored at the gateway; recv shows the time sent and the time fetched; inbox shows it again', async () => {
    const s = await cli(['client', 'send', '--dir', alice.dir, '--to', bob.address, 'hello', 'bob'], { timeoutMs: 60_000 });
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stderr, /^sent: the message left this client; waiting for the recipient's gateway to acknowledge it$/m);
    const stored = /^stored at the recipient's gateway: ([0-9a-f]{32})\n$/.exec(s.stdout);
    assert.ok(stored, s.stdout);
    const id = stored[1]!;

    const listed = await waitForMessage(bob.dir, (m) => m.id === id, 'the message');
    assert.equal(listed.read, false);
    assert.ok(listed.sent_at !== null && listed.sent_at % 1000 === 0, 'the sender clock, in whole seconds');
    assert.ok(listed.sent_at <= listed.received_at + 1000, 'sent before fetched (one clock here)');

    const r = await cli(['client', 'recv', '--dir', bob.dir]);
    assert.equal(r.code, 0, r.stderr);
    const header = new RegExp(`^--- ${id.slice(0, 16)} · 9 bytes · sent \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ · fetched \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\nhello bob\\n$`);
    assert.match(r.stdout, header);
    assert.equal((await cli(['client', 'recv', '--dir', bob.dir])).stdout, '', 'recv marks it read');

    const again = await cli(['client', 'inbox', '--dir', bob.dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^--- ${id.slice(0, 16)} · read · 9 bytes · sent .* · fetched .*\\nhello bob\\n`, 'm'));
    assert.equal((await inbox(bob.dir)).find((m) => m.id === id)?.read, true);
  });

  it('--reply-to takes an id prefix; one without SURBs, an unknown or a short one is refused clearly', async () => {
    const plain = (await inboxLines(bob.dir))[0]! as unknown as Listed;
    const noSurbs = await cli(['client', 'send', '--dir', bob.dir, '--reply-to', plain.id.slice(0, 8), 'hi']);
    assert.equal(noSurbs.code, 1);
    assert.match(noSurbs.stderr, /no reply blocks \(SURBs\) left.*ask its sender to attach some \('send --reply-surbs N'\), or write to the sender's address with --to/);
    const unknown = await cli(['client', 'send', '--dir', bob.dir, '--reply-to', plain.id.startsWith('00') ? 'ffffffff' : '00000000', 'hi']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no received message has an id that starts with those digits/);

    const q = await cli(['client', 'send', '--dir', alice.dir, '--to', bob.address, '--reply-surbs', '2', '--no-wait', 'who is there?']);
    assert.equal(q.code, 0, q.stderr);
    const qid = /^queued ([0-9a-f]{32})$/m.exec(q.stdout)![1]!;
    const asked = await waitForMessage(bob.dir, (m) => m.id === qid, 'the question');
    assert.equal(asked.reply_surbs, 2);
    const shown = await cli(['client', 'recv', '--dir', bob.dir]);
    assert.match(shown.stdout, new RegExp(`reply with --reply-to ${qid.slice(0, 16)} \\(2 SURBs\\)`));
    const answer = await cli(['client', 'send', '--dir', bob.dir, '--reply-to', qid.slice(0, 10).toUpperCase(), 'me'], { timeoutMs: 60_000 });
    assert.equal(answer.code, 0, answer.stderr);
    assert.match(answer.stdout, /^sent: [0-9a-f]{32}\n$/);
    assert.doesNotMatch(answer.stderr, /waiting for the recipient's gateway/, 'a reply is never acknowledged');
  });

  it('send --file sends the name; recv --save writes it 0600 and never over an existing file', async () => {
    const content = nodeBackend.randomBytes(5000); // three fragments
    const src = join(root, 'report.bin');
    writeFileSync(src, content);
    const s = await cli(['client', 'send', '--dir', alice.dir, '--to', bob.address, '--file', src], { timeoutMs: 60_000 });
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stderr, /^sent: all 3 fragments left this client/m);
    const id = /^stored at the recipient's gateway: ([0-9a-f]{32})$/m.exec(s.stdout)![1]!;
    await waitForMessage(bob.dir, (m) => m.id === id && m.file_name === 'report.bin', 'the file');

    const saveDir = join(root, 'downloads');
    const r = await cli(['client', 'recv', '--dir', bob.dir, '--save', saveDir]);
    assert.equal(r.code, 0, r.stderr);
    const saved = join(saveDir, 'report.bin');
    assert.match(r.stdout, new RegExp(`· file report\\.bin\\n\\(saved as ${saved.replace(/[.]/g, '\\.')}\\)\\n$`));
    assert.deepEqual(new Uint8Array(readFileSync(saved)), content);
    assert.equal(statSync(saved).mode & 0o777, 0o600);
    assert.equal(statSync(saveDir).mode & 0o777, 0o700);

    // Saving it again from the inbox finds the name taken: refused, exit 1, the file unchanged.
    writeFileSync(saved, 'changed by the user');
    const again = await cli(['client', 'inbox', '--dir', bob.dir, '--save', saveDir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not saved: .*report\.bin exists and is not replaced/);
    assert.equal(readFileSync(saved, 'utf8'), 'changed by the user');
  });

  it('to a client that never ran, send shows each retry as it happens', async () => {
    const child = spawn(process.execPath, [BIN, 'client', 'send', '--dir', alice.dir, '--to', carol.address, 'anyone?']);
    let stderr = '';
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (/^retry 2: /m.test(stderr)) resolve();
      });
      void exit.then((code) => reject(new Error(`send exited with ${code} before retry 2: ${stderr}`)));
    });
    child.kill('SIGINT');
    await exit;
    const lines = stderr.split('\n');
    const sent = lines.findIndex((l) => l.startsWith('sent: the message left this client'));
    const retry1 = lines.findIndex((l) => /^retry 1: no acknowledgement yet, sending again \(attempt 2 of \d+\)$/.test(l));
    const retry2 = lines.findIndex((l) => l.startsWith('retry 2: '));
    assert.ok(sent >= 0 && sent < retry1 && retry1 < retry2, stderr);
  });
});
