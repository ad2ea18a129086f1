// What `client send` says while a message goes out (SendReporter, failureExplanation) and how
// `client recv` / `client inbox` show and save what came in (received.ts), without a network.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_ATTEMPTS } from '../../src/client/client.js';
import { formatReceived, parseReceived, prepareSaveDir, receivedJson, saveReceivedFile } from '../../src/cli/received.js';
import { byteSize, failureExplanation, SendReporter } from '../../src/cli/send-progress.js';
import { IncomingProgress } from '../../src/cli/messenger.js';
import { introductionNotice } from '../../src/cli/introduce.js';
import { isBackchannelError } from '../../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'bc-cli-received-'));
after(() => rmSync(root, { recursive: true, force: true }));

function recorder(isTTY = false): { stream: { write(t: string): boolean; isTTY: boolean }; text: () => string } {
  let text = '';
  return {
    stream: {
      write: (t: string) => {
        text += t;
        return true;
      },
      isTTY,
    },
    text: () => text,
  };
}

const line = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  event: 'message',
  seq: 3,
  id: '0123456789abcdef0123456789abcdef',
  body_base64: Buffer.from('hello\u001b[2J').toString('base64'),
  received_at: Date.UTC(2026, 11, 6, 13, 0, 5),
  sent_at: Date.UTC(2026, 11, 6, 13, 0, 1),
  file_name: null,
  reply_surbs: 0,
  in_reply_to: null,
  ...over,
});

describe('send progress', () => {
  it('says sent once every fragment left, each new retry level once, and nothing else for one fragment', () => {
    const r = recorder();
    const rep = new SendReporter({ fragments: 1, reply: false, stream: r.stream });
    rep.attempt(0, 1);
    rep.progress(0);
    rep.attempt(0, 2);
    rep.attempt(0, 3);
    rep.finish();
    assert.deepEqual(r.text().trimEnd().split('\n'), [
      "sent: the message left this client; waiting for the recipient's gateway to acknowledge it",
      `retry 1: no acknowledgement yet, sending again (attempt 2 of ${MAX_ATTEMPTS})`,
      `retry 2: no acknowledgement yet, sending again (attempt 3 of ${MAX_ATTEMPTS})`,
    ]);
  });

  it('for several fragments: sent after the last first attempt, a redrawn progress line on a terminal, cleared at the end', () => {
    const r = recorder(true);
    const rep = new SendReporter({ fragments: 3, reply: false, stream: r.stream });
    rep.attempt(0, 1);
    rep.attempt(1, 1);
    assert.ok(!r.text().includes('sent:'));
    rep.attempt(2, 1);
    rep.progress(2);
    rep.attempt(2, 2); // a retry of one fragment
    rep.finish();
    const t = r.text();
    const clear = '\r\x1b[K';
    assert.ok(t.includes(`${clear}sending: 2/3 fragments sent, 0/3 stored at the recipient's gateway`), t);
    assert.ok(t.includes(`${clear}sent: all 3 fragments left this client`), t);
    assert.match(t, /sending: 3\/3 fragments sent, 2\/3 stored/);
    assert.match(t, /retry 1: /);
    assert.ok(t.endsWith('\r\x1b[K'), 'the progress line is cleared');
  });

  it('off a terminal, progress lines come at most every 5 s; a reply never waits for acknowledgements', () => {
    let now = 0;
    const r = recorder(false);
    const rep = new SendReporter({ fragments: 4, reply: true, stream: r.stream, now: () => now });
    rep.attempt(0, 1);
    now = 6000;
    rep.attempt(1, 1);
    now = 7000;
    rep.attempt(2, 1);
    rep.attempt(3, 1);
    assert.deepEqual(r.text().trimEnd().split('\n'), ['sending: 2/4 fragments sent · 50% · 0:06 elapsed']);
  });

  it('a file of known length: a line per tenth stored off a terminal, with bytes, percentage and elapsed time, never an ETA', () => {
    let now = 1000;
    const r = recorder(false);
    const rep = new SendReporter({ fragments: 20, reply: false, stream: r.stream, now: () => now, length: 300_000, recipient: 'bob', start: 0 });
    for (let i = 0; i < 20; i++) rep.attempt(i, 1);
    for (let done = 1; done <= 20; done++) {
      now += 500;
      rep.progress(done);
      rep.progress(done); // the same again draws nothing new
    }
    rep.finish();
    const lines = r.text().trimEnd().split('\n');
    assert.equal(lines[0], "sent: all 20 fragments left this client; waiting for bob's gateway to acknowledge it");
    const progress = lines.slice(1);
    assert.equal(progress.length, 10, progress.join('\n'));
    assert.equal(progress[0], "sending: 20/20 fragments sent, 2/20 stored at bob's gateway · 10% · 30 kB of 300 kB · 0:02 elapsed");
    assert.equal(progress[9], "sending: 20/20 fragments sent, 20/20 stored at bob's gateway · 100% · 300 kB of 300 kB · 0:11 elapsed");
    assert.ok(!r.text().includes('eta'));
  });

  it('byte sizes read as people write them', () => {
    assert.deepEqual([byteSize(999), byteSize(1000), byteSize(299_999), byteSize(1_048_576)], ['999 B', '1 kB', '299 kB', '1.0 MB']);
  });

  it('a large message coming in: a line per tenth off a terminal, one redrawn line on a terminal', () => {
    const plain = recorder(false);
    const p = new IncomingProgress(plain.stream);
    for (let have = 1; have < 30; have++) p.update({ event: 'receiving', contact: 'bob', have, total: 30 });
    const lines = plain.text().trimEnd().split('\n');
    assert.equal(lines.length, 10); // 0 %, 10 %, ..., 90 %
    assert.equal(lines[4], 'receiving from bob: 40 % of a large message (a file or a long text), 12/30 fragments');
    const term = recorder(true);
    const q = new IncomingProgress(term.stream);
    q.update({ event: 'receiving', contact: 'bob\u001b[2J', have: 3, total: 30 });
    q.clear();
    assert.equal(term.text(), '\r\x1b[Kreceiving from bob\ufffd[2J: 10 % of a large message (a file or a long text), 3/30 fragments\r\x1b[K');
  });

  it('introduction notices name who introduces whom and the exact commands', () => {
    const offer = introductionNotice('offer', { id: 7, role: 'received', from: 'alice', names: ['carol'], answers: [], state: 'offered' }, ' --dir bob');
    assert.match(offer, /alice offers to introduce you to carol/);
    assert.match(offer, /npx backchannel client introduction accept 7 --dir bob/);
    assert.match(offer, /npx backchannel client introduction decline 7 --dir bob/);
    const noName = introductionNotice('offer', { id: 8, role: 'received', from: 'alice', names: [''], answers: [], state: 'offered' }, '');
    assert.match(noName, /introduction accept 8 --name NAME\n/);
    const done = introductionNotice('outcome', { id: 7, role: 'received', from: 'alice', names: ['carol smith'], answers: [], state: 'done' }, '');
    assert.match(done, /carol smith \(introduced by alice\) is now your contact/);
    assert.match(done, /client chat 'carol smith'/);
    const made = introductionNotice('outcome', { id: 2, role: 'made', from: null, names: ['bob', 'carol'], answers: ['accepted', 'declined'], state: 'declined' }, '');
    assert.match(made, /carol declined your introduction of bob and carol/);
  });

  it('a failure after every retry names the likely causes; other reasons pass as they are', () => {
    const text = failureExplanation('no acknowledgement after every retry');
    assert.match(text, new RegExp(`after ${MAX_ATTEMPTS} attempts`));
    assert.match(text, /gateway is down/);
    assert.match(text, /address is wrong/);
    assert.match(text, /never connected/);
    assert.equal(failureExplanation('the reply SURB starts at another gateway than ours'), 'the reply SURB starts at another gateway than ours');
  });
});

describe('received messages', () => {
  it('shows both the time sent (sender) and fetched (ours), the short id, and hides terminal escapes', () => {
    const text = formatReceived(parseReceived(line({ reply_surbs: 2 })), true);
    const [header, body] = text.split('\n');
    assert.equal(header, '--- 0123456789abcdef · 9 bytes · sent 2026-12-06 13:00:01Z · fetched 2026-12-06 13:00:05Z · reply with --reply-to 0123456789abcdef (2 SURBs)');
    assert.equal(body, 'hello\ufffd[2J');
  });

  it('an older message without a send time says so; --json has sent_at null, file_name and read only from inbox', () => {
    const old = parseReceived(line({ sent_at: undefined, file_name: undefined }));
    assert.match(formatReceived(old, false), / · sent at an unknown time · fetched /);
    assert.deepEqual(Object.keys(receivedJson(old)), ['id', 'seq', 'sent_at', 'received_at', 'file_name', 'body_base64', 'reply_surbs', 'in_reply_to', 'mailbox']);
    assert.equal(receivedJson(old)['sent_at'], null);
    const read = parseReceived(line({ consumed: true }));
    assert.equal(receivedJson(read)['read'], true);
    assert.match(formatReceived(read, false), /^--- 0123456789abcdef · read · /);
  });

  it('a file is not dumped on the terminal: its name, and where it was saved or how to save it', () => {
    const f = parseReceived(line({ file_name: 'report.pdf' }));
    assert.match(formatReceived(f, true), / · file report\.pdf\n\(a file of 9 bytes; write it to a folder with --save DIR\)\n$/);
    assert.match(formatReceived(f, true, '/tmp/x/report.pdf'), /\(saved as \/tmp\/x\/report\.pdf\)\n$/);
  });

  it('saves a file 0600 inside the folder (made 0700), never over an existing name or through a link, never outside', () => {
    const dir = prepareSaveDir(join(root, 'made', 'here'));
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const path = saveReceivedFile(dir, 'notes.txt', new TextEncoder().encode('content'));
    assert.equal(path, join(dir, 'notes.txt'));
    assert.equal(readFileSync(path, 'utf8'), 'content');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.throws(
      () => saveReceivedFile(dir, 'notes.txt', new Uint8Array([1])),
      (e: unknown) => isBackchannelError(e, 'ERR_CLIENT_SAVE') && /exists and is not replaced/.test(e.message),
    );
    assert.equal(readFileSync(path, 'utf8'), 'content', 'not overwritten');
    const target = join(root, 'target.txt');
    writeFileSync(target, 'mine');
    symlinkSync(target, join(dir, 'link.txt'));
    assert.throws(() => saveReceivedFile(dir, 'link.txt', new Uint8Array([1])), (e: unknown) => isBackchannelError(e, 'ERR_CLIENT_SAVE'));
    assert.equal(readFileSync(target, 'utf8'), 'mine', 'a link is not followed');
    for (const bad of ['../escape.txt', '..', '/etc/passwd', 'a/b', 'x\u0000y']) {
      assert.throws(() => saveReceivedFile(dir, bad, new Uint8Array([1])), (e: unknown) => isBackchannelError(e, 'ERR_CLIENT_SAVE') && /not a plain name/.test(e.message));
    }
    assert.ok(!existsSync(join(root, 'made', 'escape.txt')));
    mkdirSync(join(root, 'file-parent'));
    writeFileSync(join(root, 'file-parent', 'f'), '');
    assert.throws(() => prepareSaveDir(join(root, 'file-parent', 'f')), (e: unknown) => isBackchannelError(e, 'ERR_CLIENT_SAVE'));
  });
});
