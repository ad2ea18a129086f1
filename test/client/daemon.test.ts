// The client daemon's local socket over a real Unix socket, with an in-memory ClientApi.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientApi, ClientEvent, ClientStatus, MailboxInfo, NewMailbox, SendReceipt, SendRequest } from '../../src/client/api.js';
import { startIpcServer } from '../../src/client/daemon.js';
import type { IpcServer } from '../../src/client/daemon.js';
import { ipcCall, ipcRequest, MAX_REQUEST_LINE } from '../../src/client/ipc.js';
import type { IpcMessage } from '../../src/client/ipc.js';
import type { InboxMessage, OutgoingMessage } from '../../src/client/store.js';
import { BackchannelError, isBackchannelError } from '../../src/errors.js';
import { memoryLogger } from '../../src/ops/log.js';
import { toHex } from '../../src/util/bytes.js';

/** A ClientApi that records calls and emits events when told. */
class FakeApi implements ClientApi {
  readonly address = 'bc1fake';
  readonly sends: SendRequest[] = [];
  readonly consumed: number[] = [];
  readonly inbox: InboxMessage[] = [];
  readonly outgoingById = new Map<string, OutgoingMessage>();
  readonly listeners = new Set<(e: ClientEvent) => void>();
  sendError: BackchannelError | null = null;
  /** Called inside send, after the message has its id (to emit events "during" send). */
  duringSend: ((id: Uint8Array) => void) | null = null;
  #nextId = 1;
  #nextSeq = 1;

  status(): ClientStatus {
    return {
      address: this.address,
      gateway: 'gateway-1',
      connected: true,
      epoch: 42,
      document: 'current',
      directory: { documents: 1, unavailable: 0, invalid: 0, timeouts: 0 },
      pendingMessages: this.outgoingById.size,
      packetsSent: { real: 1, drop: 2, loop: 3 },
      entriesReceived: { fragment: 4, ack: 5, loop: 6, reply: 7, invalid: 0 },
      clockRestarts: { send: 0, loop: 0, fetch: 0 },
    };
  }

  send(request: SendRequest): SendReceipt {
    if (this.sendError !== null) throw this.sendError;
    this.sends.push(request);
    const id = new Uint8Array(16).fill(this.#nextId++);
    const fragments = Math.max(1, Math.ceil(request.body.length / 1000));
    this.outgoingById.set(toHex(id), { id, destination: { kind: 'reply', inReplyTo: new Uint8Array(16) }, length: request.body.length, fragments, createdAt: 0, status: 'pending', done: 0 });
    this.duringSend?.(id);
    return { id, fragments };
  }

  subscribe(listener: (event: ClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(e: ClientEvent): void {
    for (const l of [...this.listeners]) l(e);
  }

  unconsumed(afterSeq: number, limit: number): InboxMessage[] {
    return this.inbox.filter((m) => m.seq > afterSeq && !this.consumed.includes(m.seq)).slice(0, limit);
  }

  consume(seq: number): void {
    this.consumed.push(seq);
  }

  outgoing(id: Uint8Array): OutgoingMessage | null {
    return this.outgoingById.get(toHex(id)) ?? null;
  }

  inboxPage(afterSeq: number, limit: number): InboxMessage[] {
    return this.inbox.filter((m) => m.seq > afterSeq).slice(0, limit).map((m) => ({ ...m, consumed: this.consumed.includes(m.seq) }));
  }

  findInbox(prefixHex: string): InboxMessage[] {
    return this.inbox.filter((m) => toHex(m.id).startsWith(prefixHex.toLowerCase())).slice(0, 2);
  }

  readonly extra: MailboxInfo[] = [];

  createMailbox(): NewMailbox {
    const id = new Uint8Array(32).fill(this.extra.length + 1);
    this.extra.push({ id, address: `bc1mailbox${this.extra.length}`, createdAt: 0, registered: false, refused: null, revoked: false, revokeConfirmed: false, revokeAt: null, replacedBy: null });
    return { id, address: this.extra.at(-1)!.address };
  }

  revokeMailbox(id: Uint8Array): void {
    const i = this.extra.findIndex((m) => toHex(m.id) === toHex(id));
    if (i < 0) throw new BackchannelError('ERR_CLIENT_MAILBOX', 'client: no such extra mailbox');
    this.extra[i] = { ...this.extra[i]!, revoked: true };
  }

  rotateMailbox(id: Uint8Array, graceMs = 1000): NewMailbox {
    const fresh = this.createMailbox();
    const i = this.extra.findIndex((m) => toHex(m.id) === toHex(id));
    this.extra[i] = { ...this.extra[i]!, revokeAt: graceMs, replacedBy: fresh.id };
    return fresh;
  }

  mailboxes(): MailboxInfo[] {
    return this.extra;
  }

  /** Stores a message in the inbox and, like the engine, tells the listeners. */
  receive(body: string, replySurbs = 0): InboxMessage {
    const seq = this.#nextSeq++;
    const m: InboxMessage = { seq, id: new Uint8Array(16).fill(0x80 + seq), body: new TextEncoder().encode(body), receivedAt: 1_700_000_000_000 + seq, replySurbs, inReplyTo: null, mailbox: null };
    this.inbox.push(m);
    this.emit({ type: 'message', message: m });
    return m;
  }
}

async function withServer(fn: (ctx: { api: FakeApi; path: string; server: IpcServer; log: ReturnType<typeof memoryLogger> }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bc-ipc-'));
  const path = join(dir, 'client.sock');
  const api = new FakeApi();
  const log = memoryLogger();
  const server = await startIpcServer({ path, api, log });
  try {
    await fn({ api, path, server, log });
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sends raw bytes and collects every line the daemon answers until it closes. */
function raw(path: string, data: string | Buffer, opts: { end?: boolean } = {}): Promise<IpcMessage[]> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    let text = '';
    socket.on('connect', () => {
      socket.write(data);
      if (opts.end === true) socket.end();
    });
    socket.on('data', (b: Buffer) => {
      text += b.toString('utf8');
    });
    socket.on('error', () => undefined); // the daemon may close while we still write
    socket.on('close', () => {
      try {
        resolve(
          text
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as IpcMessage),
        );
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

/** Collects the lines of one request, ending our side when `stop` says so (by default at a recv's end, consuming nothing). */
async function collect(path: string, request: IpcMessage, stop: (m: IpcMessage) => boolean = (m) => m['event'] === 'end'): Promise<IpcMessage[]> {
  const lines: IpcMessage[] = [];
  await ipcRequest(path, request, (m, c) => {
    lines.push(m);
    if (stop(m)) c.end();
  });
  return lines;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

test('status answers the ClientStatus as plain JSON; the socket is mode 0600', async () => {
  await withServer(async ({ api, path }) => {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const answer = await ipcCall(path, { op: 'status' });
    assert.deepEqual(answer, { ok: true, status: JSON.parse(JSON.stringify(api.status())) as unknown });
  });
});

test('send with wait streams progress, then delivered, for this message only', async () => {
  await withServer(async ({ api, path }) => {
    const body = 'x'.repeat(2500);
    const lines: IpcMessage[] = [];
    const done = ipcRequest(path, { op: 'send', to: 'bc1someone', body_base64: b64(body), reply_surbs: 2, wait: true }, (m) => {
      lines.push(m);
      if (lines.length === 1) {
        const id = new Uint8Array(Buffer.from(String(m['id']), 'hex'));
        // Another message's events are not ours.
        api.emit({ type: 'progress', id: new Uint8Array(16).fill(99), done: 1, total: 9 });
        api.emit({ type: 'progress', id, done: 1, total: 3 });
        api.emit({ type: 'delivered', id: new Uint8Array(16).fill(99) });
        api.emit({ type: 'progress', id, done: 3, total: 3 });
        api.emit({ type: 'delivered', id });
      }
    });
    await done;
    assert.deepEqual(lines, [
      { ok: true, id: toHex(new Uint8Array(16).fill(1)), fragments: 3 },
      { event: 'progress', done: 1, total: 3 },
      { event: 'progress', done: 3, total: 3 },
      { event: 'delivered' },
    ]);
    assert.equal(api.sends.length, 1);
    assert.equal(api.sends[0]!.to, 'bc1someone');
    assert.equal(api.sends[0]!.replySurbs, 2);
    assert.equal(new TextDecoder().decode(api.sends[0]!.body), body);
    assert.equal(api.listeners.size, 0, 'the subscription ends with the request');
  });
});

test('send with wait reports a message that fails during send, and one already finished', async () => {
  await withServer(async ({ api, path }) => {
    const asked = api.receive('question', 2);
    const prefix = toHex(asked.id).slice(0, 8);
    api.duringSend = (id) => api.emit({ type: 'failed', id, reason: 'no route' });
    const failed = await collect(path, { op: 'send', in_reply_to: prefix, body_base64: b64('hi'), wait: true });
    assert.deepEqual(failed.slice(1), [{ event: 'failed', reason: 'no route' }]);
    assert.deepEqual(api.sends[0]!.inReplyTo, asked.id, 'the prefix resolved to the whole id');

    api.duringSend = (id) => {
      const o = api.outgoingById.get(toHex(id))!;
      api.outgoingById.set(toHex(id), { ...o, status: 'sent', done: o.fragments });
    };
    const sent = await collect(path, { op: 'send', in_reply_to: prefix.toUpperCase(), body_base64: b64('hi'), wait: true });
    assert.deepEqual(sent.slice(1), [{ event: 'sent' }]);
  });
});

test('send with wait streams attempt events (first sends and retries) of this message', async () => {
  await withServer(async ({ api, path }) => {
    const lines: IpcMessage[] = [];
    await ipcRequest(path, { op: 'send', to: 'bc1someone', body_base64: b64('hi'), file_name: 'a.txt', wait: true }, (m) => {
      lines.push(m);
      if (lines.length === 1) {
        const id = new Uint8Array(Buffer.from(String(m['id']), 'hex'));
        api.emit({ type: 'attempt', id: new Uint8Array(16).fill(99), index: 0, attempt: 1, total: 1 });
        api.emit({ type: 'attempt', id, index: 0, attempt: 1, total: 1 });
        api.emit({ type: 'attempt', id, index: 0, attempt: 2, total: 1 });
        api.emit({ type: 'failed', id, reason: 'no acknowledgement after every retry' });
      }
    });
    assert.deepEqual(lines.slice(1), [
      { event: 'attempt', index: 0, attempt: 1, total: 1 },
      { event: 'attempt', index: 0, attempt: 2, total: 1 },
      { event: 'failed', reason: 'no acknowledgement after every retry' },
    ]);
    assert.equal(api.sends[0]!.fileName, 'a.txt');
  });
});

test('a reply names its message by a unique prefix; none, several, too short or no SURBs are clear errors', async () => {
  await withServer(async ({ api, path }) => {
    // Ids 0x81.. and 0x82..: they share no 8-digit prefix; make two that do.
    const a = api.receive('a', 1);
    const b = api.receive('b', 1);
    const none = api.receive('c', 0);
    const shared = new Uint8Array(16).fill(0x77);
    const twin = new Uint8Array(16).fill(0x77);
    twin[15] = 0x78;
    api.inbox.push({ ...a, seq: 90, id: shared }, { ...b, seq: 91, id: twin });
    const send = (inReplyTo: string): Promise<IpcMessage> => ipcCall(path, { op: 'send', in_reply_to: inReplyTo, body_base64: b64('re') });
    await assert.rejects(send('0123456789'), (e) => isBackchannelError(e, 'ERR_CLIENT_NO_MESSAGE') && /client inbox/.test(e.message));
    await assert.rejects(send('7777777777'), (e) => isBackchannelError(e, 'ERR_CLIENT_AMBIGUOUS_ID') && /more of them/.test(e.message));
    await assert.rejects(send(toHex(none.id).slice(0, 12)), (e) => isBackchannelError(e, 'ERR_CLIENT_NO_SURBS') && /--reply-surbs/.test(e.message) && /--to/.test(e.message));
    await assert.rejects(send('8181818'), (e) => isBackchannelError(e, 'ERR_CLIENT_IPC'));
    assert.equal(api.sends.length, 0);
    const ok = await send(toHex(b.id).slice(0, 8));
    assert.equal(ok['ok'], true);
    assert.deepEqual(api.sends[0]!.inReplyTo, b.id);
  });
});

test('inbox lists every message, read or not, or the last N, with consumed, and consumes nothing', async () => {
  await withServer(async ({ api, path }) => {
    for (let i = 0; i < 40; i++) api.receive(`m${i}`);
    api.consume(1);
    const all = await collect(path, { op: 'inbox' });
    assert.equal(all.length, 41);
    assert.deepEqual(all.at(-1), { event: 'end' });
    assert.equal(all[0]!['consumed'], true);
    assert.equal(all[1]!['consumed'], false);
    assert.deepEqual(all.slice(0, 40).map((m) => m['seq']), Array.from({ length: 40 }, (_, i) => i + 1));
    const last = await collect(path, { op: 'inbox', last: 3 });
    assert.deepEqual(last.map((m) => m['seq'] ?? m['event']), [38, 39, 40, 'end']);
    assert.deepEqual(api.consumed, [1]);
    await assert.rejects(ipcCall(path, { op: 'inbox', last: 0 }), (e) => isBackchannelError(e, 'ERR_CLIENT_IPC'));
  });
});

test('send without wait answers the id and closes', async () => {
  await withServer(async ({ api, path }) => {
    const lines = await collect(path, { op: 'send', to: 'bc1x', body_base64: b64('hello') });
    assert.deepEqual(lines, [{ ok: true, id: toHex(new Uint8Array(16).fill(1)), fragments: 1 }]);
    assert.equal(api.listeners.size, 0);
  });
});

test("send passes the engine's error code and message through", async () => {
  await withServer(async ({ api, path }) => {
    api.sendError = new BackchannelError('ERR_CLIENT_ADDRESS', 'address: checksum mismatch (a mistyped or truncated address?)');
    const lines = await raw(path, `${JSON.stringify({ op: 'send', to: 'bc1bad', body_base64: b64('x'), wait: true })}\n`);
    assert.deepEqual(lines, [{ ok: false, code: 'ERR_CLIENT_ADDRESS', error: 'address: checksum mismatch (a mistyped or truncated address?)' }]);
    await assert.rejects(ipcCall(path, { op: 'send', to: 'bc1bad', body_base64: b64('x') }), (e) => isBackchannelError(e, 'ERR_CLIENT_ADDRESS'));
    assert.equal(api.listeners.size, 0);
  });
});

test('recv sends the backlog then end, and records the consumes; it closes after the last consume', async () => {
  await withServer(async ({ api, path }) => {
    const count = 70; // more than one page
    for (let i = 0; i < count; i++) api.receive(`message ${i}`, i === 0 ? 3 : 0);
    const lines = await collect(path, { op: 'recv' });
    assert.equal(lines.length, count + 1);
    assert.deepEqual(lines.at(-1), { event: 'end' });
    const first = lines[0]!;
    assert.deepEqual(first, {
      event: 'message',
      seq: 1,
      id: toHex(api.inbox[0]!.id),
      body_base64: b64('message 0'),
      received_at: api.inbox[0]!.receivedAt,
      sent_at: null,
      file_name: null,
      reply_surbs: 3,
      in_reply_to: null,
      mailbox: null,
    });
    // collect() consumed nothing: nothing is marked read.
    assert.deepEqual(api.consumed, []);

    // Now consume each; the daemon closes by itself once all are consumed.
    const seen: number[] = [];
    await ipcRequest(path, { op: 'recv' }, (m, c) => {
      if (m['event'] === 'message') {
        seen.push(m['seq'] as number);
        c.send({ op: 'consume', seq: m['seq'] as number });
      }
    });
    assert.equal(seen.length, count);
    assert.deepEqual(api.consumed, seen);
    assert.deepEqual(await collect(path, { op: 'recv' }), [{ event: 'end' }]);
  });
});

test('recv refuses a consume of a message it did not send', async () => {
  await withServer(async ({ api, path }) => {
    api.receive('one');
    await assert.rejects(
      ipcRequest(path, { op: 'recv' }, (m, c) => {
        if (m['event'] === 'message') c.send({ op: 'consume', seq: 99 });
      }),
      (e) => isBackchannelError(e, 'ERR_CLIENT_IPC'),
    );
    assert.deepEqual(api.consumed, []);
  });
});

test('recv --follow sends the backlog, then messages that arrive later, once each', async () => {
  await withServer(async ({ api, path }) => {
    api.receive('before');
    const bodies: string[] = [];
    const done = ipcRequest(path, { op: 'recv', follow: true }, (m, c) => {
      assert.equal(m['event'], 'message');
      bodies.push(Buffer.from(String(m['body_base64']), 'base64').toString());
      c.send({ op: 'consume', seq: m['seq'] as number });
      if (bodies.length === 1) {
        setTimeout(() => {
          const later = api.receive('later');
          api.emit({ type: 'message', message: later }); // told twice: still sent once
          api.receive('last');
        }, 20);
      }
      if (bodies.length === 3) c.end();
    });
    await done;
    assert.deepEqual(bodies, ['before', 'later', 'last']);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(api.consumed, [1, 2, 3]);
    assert.equal(api.listeners.size, 0, 'the follower unsubscribed when the peer closed');
  });
});

test('malformed JSON, unknown ops, wrong types and oversized lines get ERR_CLIENT_IPC; the server keeps serving', async () => {
  await withServer(async ({ api, path }) => {
    const cases: Array<string | Buffer> = [
      'not json\n',
      '[1,2]\n',
      '{"op":"launch"}\n',
      '{"op":"status","extra":1}\n',
      '{"op":"send","to":5,"body_base64":"aGk="}\n',
      '{"op":"send","to":"bc1x","body_base64":"not base64!"}\n',
      '{"op":"send","to":"bc1x","body_base64":"aGk=","reply_surbs":-1}\n',
      '{"op":"send","in_reply_to":"xyz","body_base64":"aGk="}\n',
      '{"op":"recv","follow":"yes"}\n',
      Buffer.from([0xff, 0xfe, 0x0a]),
    ];
    for (const c of cases) {
      const lines = await raw(path, c);
      assert.equal(lines.length, 1, String(c));
      assert.equal(lines[0]!['ok'], false);
      assert.equal(lines[0]!['code'], 'ERR_CLIENT_IPC', String(c));
      assert.match(String(lines[0]!['error']), /^client ipc: /);
    }
    const big = Buffer.alloc(MAX_REQUEST_LINE + 1024, 0x61);
    const lines = await raw(path, big);
    assert.deepEqual(lines.map((l) => l['code']), ['ERR_CLIENT_IPC']);
    assert.match(String(lines[0]!['error']), /longer than/);
    assert.equal(api.sends.length, 0);
    // Still serving.
    assert.equal((await ipcCall(path, { op: 'status' }))['ok'], true);
    // A peer that connects and leaves without a request gets nothing and harms nothing.
    assert.deepEqual(await raw(path, '', { end: true }), []);
    assert.equal((await ipcCall(path, { op: 'status' }))['ok'], true);
  });
});

test('an exception that is not a BackchannelError is answered generically and logged by code only', async () => {
  await withServer(async ({ api, path, log }) => {
    api.status = () => {
      throw new Error('secret detail bc1abc');
    };
    await assert.rejects(ipcCall(path, { op: 'status' }), (e) => isBackchannelError(e, 'ERR_CLIENT_IPC') && !e.message.includes('secret'));
    assert.ok(!JSON.stringify(log.lines).includes('secret'));
  });
});

test('the logs carry no bodies, ids or addresses', async () => {
  await withServer(async ({ api, path, log }) => {
    api.receive('private words');
    await collect(path, { op: 'send', to: 'bc1secretaddress', body_base64: b64('private body'), wait: false });
    await ipcRequest(path, { op: 'recv' }, (m, c) => {
      if (m['event'] === 'message') c.send({ op: 'consume', seq: m['seq'] as number });
    });
    const text = JSON.stringify(log.lines);
    for (const secret of ['private', 'bc1secret', b64('private body'), toHex(api.inbox[0]!.id), toHex(new Uint8Array(16).fill(1))]) assert.ok(!text.includes(secret), secret);
  });
});

test('the ipc client reports a missing or stale socket as ERR_CLIENT_NOT_RUNNING, naming the directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bc-ipc-'));
  try {
    const path = join(dir, 'client.sock');
    await assert.rejects(ipcCall(path, { op: 'status' }, { dir: '/some/where' }), (e) => {
      assert.ok(isBackchannelError(e, 'ERR_CLIENT_NOT_RUNNING'));
      assert.match(e.message, /the client is not running for \/some\/where; start it with: npx backchannel client run --dir \/some\/where/);
      return true;
    });
    // A socket file left by a daemon that died (SIGKILL: nothing removed it).
    const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    assert.ok(statSync(path).isSocket());
    await assert.rejects(ipcCall(path, { op: 'status' }), (e) => isBackchannelError(e, 'ERR_CLIENT_NOT_RUNNING'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mailbox: create (and with wait, the gateway answer for that mailbox only), list, revoke, rotate; bad requests get ERR_CLIENT_IPC', async () => {
  await withServer(async ({ api, path }) => {
    const made = await ipcCall(path, { op: 'mailbox', action: 'create' });
    assert.equal(made['ok'], true);
    assert.equal((made['mailbox'] as IpcMessage)['id'], toHex(new Uint8Array(32).fill(1)));
    const listed = await ipcCall(path, { op: 'mailbox', action: 'list' });
    assert.deepEqual((listed['mailboxes'] as IpcMessage[]).map((m) => m['address']), ['bc1mailbox0']);

    // With wait: the created mailbox's answer ends the request; another mailbox's does not.
    const lines: IpcMessage[] = [];
    const waiting = ipcRequest(path, { op: 'mailbox', action: 'create', wait: true }, (m) => {
      lines.push(m);
      if (lines.length === 1) {
        api.emit({ type: 'mailbox', id: new Uint8Array(32).fill(1), state: 'refused', reason: 'limit' });
        api.emit({ type: 'mailbox', id: new Uint8Array(32).fill(2), state: 'registered', reason: null });
      }
    });
    await waiting;
    assert.deepEqual(lines.slice(1), [{ event: 'registered' }]);

    assert.deepEqual(await ipcCall(path, { op: 'mailbox', action: 'revoke', id: toHex(new Uint8Array(32).fill(1)) }), { ok: true });
    assert.equal(api.extra[0]!.revoked, true);
    await assert.rejects(ipcCall(path, { op: 'mailbox', action: 'revoke', id: toHex(new Uint8Array(32).fill(9)) }), (e) => isBackchannelError(e, 'ERR_CLIENT_MAILBOX'));
    const rotated = await ipcCall(path, { op: 'mailbox', action: 'rotate', id: toHex(new Uint8Array(32).fill(2)), grace_ms: 5 });
    assert.equal((rotated['mailbox'] as IpcMessage)['id'], toHex(new Uint8Array(32).fill(3)));
    assert.equal(api.extra[1]!.revokeAt, 5);
    for (const bad of [
      { op: 'mailbox', action: 'explode' },
      { op: 'mailbox', action: 'revoke', id: 'abc' },
      { op: 'mailbox', action: 'revoke' },
      { op: 'mailbox', action: 'rotate', id: toHex(new Uint8Array(32).fill(2)), grace_ms: -1 },
      { op: 'mailbox', action: 'list', extra: 1 },
    ]) {
      await assert.rejects(ipcCall(path, bad), (e) => isBackchannelError(e, 'ERR_CLIENT_IPC'), JSON.stringify(bad));
    }
  });
});
