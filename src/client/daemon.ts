/**
 * The client daemon's local socket: serves a ClientApi to the `backchannel client` commands over
 * a Unix socket (mode 0600, in the client's 0700 directory), newline-delimited JSON, one request
 * per connection on its first line:
 *
 *   {"op":"status"}
 *       -> {"ok":true,"status":{...ClientStatus}}                                  then close
 *   {"op":"send","to"?:ADDRESS,"in_reply_to"?:HEX,"body_base64":B64,"reply_surbs"?:N,"file_name"?:NAME,"wait"?:BOOL}
 *       -> {"ok":true,"id":HEX,"fragments":N}                                     without wait: close
 *       with wait: {"event":"attempt","index":N,"attempt":N,"total":N} and
 *       {"event":"progress","done":N,"total":N}, any number, then one of {"event":"delivered"},
 *       {"event":"sent"}, {"event":"failed","reason":TEXT}; then close.
 *       in_reply_to is an inbox message's id or a prefix of it of at least MIN_ID_PREFIX_HEX hex
 *       digits; a prefix that matches none is ERR_CLIENT_NO_MESSAGE, several ERR_CLIENT_AMBIGUOUS_ID,
 *       a message without SURBs left ERR_CLIENT_NO_SURBS.
 *   {"op":"recv","follow"?:BOOL}
 *       -> {"event":"message","seq":N,"id":HEX,"body_base64":B64,"received_at":MS,"sent_at":MS|null,
 *           "file_name":NAME|null,"reply_surbs":N,"in_reply_to":HEX|null,"mailbox":HEX|null}* for every
 *       unconsumed inbox message (mailbox: the extra mailbox it came to, null for the main one);
 *       the peer answers each with {"op":"consume","seq":N} once it has the message safe. Without follow, {"event":"end"} after the backlog, and the daemon closes once every
 *       message sent is consumed or the peer closes. With follow, new messages as they arrive,
 *       until the peer closes.
 *   {"op":"inbox","last"?:N}
 *       -> the same message lines, with "consumed":BOOL, for every inbox message read or not (or
 *       the last N), oldest first, then {"event":"end"}; then close. Nothing is consumed.
 *   {"op":"mailbox","action":"create","wait"?:BOOL}
 *       -> {"ok":true,"mailbox":{...MailboxInfo}}; with wait, then {"event":"registered"} or
 *       {"event":"refused","reason":TEXT} once the gateway answers; then close
 *   {"op":"mailbox","action":"list"} -> {"ok":true,"mailboxes":[{...MailboxInfo}*]} then close
 *   {"op":"mailbox","action":"revoke","id":HEX} -> {"ok":true} then close
 *   {"op":"mailbox","action":"rotate","id":HEX,"grace_ms"?:N} -> {"ok":true,"mailbox":{...}} then close
 *   {"op":"invite"|"accept"|"invites"|"invite_cancel",...}: contacts by code (invite-ipc.ts).
 *   any error -> {"ok":false,"code":"ERR_...","error":TEXT} then close.
 *
 * A peer can do no harm beyond its own connection: lines are bounded (MAX_REQUEST_LINE), a
 * request must come within REQUEST_TIMEOUT_MS, connections are capped, every failure is answered
 * and logged by code. Logs never carry bodies, ids or addresses.
 */
import { Buffer } from 'node:buffer';
import { chmodSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { BackchannelError, isBackchannelError } from '../errors.js';
import type { Logger } from '../ops/log.js';
import { equalBytes, fromHex, toHex } from '../util/bytes.js';
import { MIN_ID_PREFIX_HEX } from './api.js';
import type { ClientApi, ClientEvent, SendRequest } from './api.js';
import { encodeLine, LineReader, MAX_REQUEST_LINE, parseLine } from './ipc.js';
import type { IpcMessage } from './ipc.js';
import type { InboxMessage } from './store.js';
import { INVITE_OPS, serveInviteOp } from './invite-ipc.js';
import type { InviteManager } from './invites.js';

/** Time a peer has to send its request after connecting. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Connections served at once; more are refused by the listener. */
export const MAX_IPC_CONNECTIONS = 64;
/** Inbox messages read from the store at a time. */
export const RECV_PAGE = 32;
/** Message events held for a follower while it writes; beyond that it rereads the store. */
const MAX_QUEUED_EVENTS = 256;
/** The longest message id accepted in `in_reply_to` (bytes). */
const MAX_ID_LENGTH = 16;
/** The most messages `inbox` with `last` returns. */
const MAX_INBOX_LAST = 10_000;
/** Time a closing connection is given to flush before it is destroyed. */
const CLOSE_GRACE_MS = 5000;

export interface IpcServerOptions {
  /** The socket's path (its folder exists; a stale file there must have been removed). */
  readonly path: string;
  readonly api: ClientApi;
  readonly log: Logger;
  /** Contacts by code; without it the invite ops answer an error. */
  readonly invites?: InviteManager;
  /** More ops (the messenger's, src/client/messenger-ipc.ts). */
  readonly extension?: IpcExtension;
}

/** The connection as an extension's op sees it. */
export interface ExtensionConnection {
  /** Writes one line; false when the socket's buffer is full. */
  write(message: IpcMessage): boolean;
  /** Ends the connection once what was written is sent. */
  finish(): void;
}

/** Ops served beside the built-in ones: an op answers and finishes, or streams until the peer closes. */
export interface IpcExtension {
  handles(op: string): boolean;
  /** Serves `request`; throws a BackchannelError to answer an error. Later lines of the peer go to `line`; `close` runs when the connection ends. */
  open(request: IpcMessage, connection: ExtensionConnection): { line?: (message: IpcMessage) => void; close?: () => void };
}

export interface IpcServer {
  readonly path: string;
  /** Stops listening, drops every connection and removes the socket file. Idempotent. */
  close(): Promise<void>;
}

function ipcError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_IPC', `client ipc: ${message}`);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (padded, standard alphabet). */
function decodeBase64(field: string, text: string): Uint8Array {
  if (!BASE64.test(text)) throw ipcError(`"${field}" must be base64`);
  const b = Buffer.from(text, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

function only(request: IpcMessage, allowed: readonly string[]): void {
  for (const key of Object.keys(request)) if (!allowed.includes(key)) throw ipcError(`unknown field "${key.slice(0, 32)}" for op "${String(request['op'])}"`);
}

function optionalBoolean(request: IpcMessage, field: string): boolean {
  const v = request[field];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw ipcError(`"${field}" must be true or false`);
  return v;
}

/**
 * The inbox message that `prefix` (hex digits) names, for a reply: it must match exactly one, and
 * that one must have SURBs left. Errors name no id.
 */
function resolveReply(api: ClientApi, prefix: string): Uint8Array {
  const matches = api.findInbox(prefix);
  if (matches.length === 0) {
    throw new BackchannelError('ERR_CLIENT_NO_MESSAGE', 'no received message has an id that starts with those digits (client recv and client inbox show the ids)');
  }
  if (matches.length > 1) throw new BackchannelError('ERR_CLIENT_AMBIGUOUS_ID', 'more than one received message has an id that starts with those digits; give more of them');
  const m = matches[0]!;
  if (m.replySurbs === 0) {
    throw new BackchannelError(
      'ERR_CLIENT_NO_SURBS',
      "that message has no reply blocks (SURBs) left, so it cannot be answered anonymously: ask its sender to attach some ('send --reply-surbs N'), or write to the sender's address with --to",
    );
  }
  return m.id;
}

function parseSend(request: IpcMessage, api: ClientApi): { send: SendRequest; wait: boolean } {
  only(request, ['op', 'to', 'in_reply_to', 'body_base64', 'reply_surbs', 'file_name', 'wait']);
  const { to, in_reply_to: inReplyTo, body_base64: body, reply_surbs: replySurbs, file_name: fileName } = request;
  if (to !== undefined && typeof to !== 'string') throw ipcError('"to" must be an address string');
  if (typeof body !== 'string') throw ipcError('"body_base64" must be a base64 string');
  if (replySurbs !== undefined && (typeof replySurbs !== 'number' || !Number.isSafeInteger(replySurbs) || replySurbs < 0)) throw ipcError('"reply_surbs" must be a whole number');
  if (fileName !== undefined && (typeof fileName !== 'string' || fileName.length === 0 || fileName.length > 1024)) throw ipcError('"file_name" must be a file name');
  if (inReplyTo !== undefined && (typeof inReplyTo !== 'string' || inReplyTo.length < MIN_ID_PREFIX_HEX || inReplyTo.length > 2 * MAX_ID_LENGTH || !/^[0-9a-fA-F]+$/.test(inReplyTo))) {
    throw ipcError(`"in_reply_to" must be a message id in hex, or its first ${MIN_ID_PREFIX_HEX} or more digits`);
  }
  const decoded = decodeBase64('body_base64', body);
  const replyId = inReplyTo === undefined ? undefined : resolveReply(api, inReplyTo);
  const send: SendRequest = {
    body: decoded,
    ...(to === undefined ? {} : { to }),
    ...(replyId === undefined ? {} : { inReplyTo: replyId }),
    ...(replySurbs === undefined ? {} : { replySurbs }),
    ...(fileName === undefined ? {} : { fileName }),
  };
  return { send, wait: optionalBoolean(request, 'wait') };
}

function messageLine(m: InboxMessage, withConsumed = false): IpcMessage {
  return {
    event: 'message',
    seq: m.seq,
    id: toHex(m.id),
    body_base64: base64(m.body),
    received_at: m.receivedAt,
    sent_at: m.sentAt ?? null,
    file_name: m.fileName ?? null,
    reply_surbs: m.replySurbs,
    in_reply_to: m.inReplyTo === null ? null : toHex(m.inReplyTo),
    ...(withConsumed ? { consumed: m.consumed === true } : {}),
    mailbox: m.mailbox === null ? null : toHex(m.mailbox),
  };
}

/** A mailbox id in hex (32 bytes). */
function mailboxId(request: IpcMessage): Uint8Array {
  const id = request['id'];
  if (typeof id !== 'string' || !/^[0-9a-fA-F]{64}$/.test(id)) throw ipcError('"id" must be a mailbox id: 64 hex digits');
  return fromHex(id.toLowerCase());
}

/** JSON without bigints (as numbers when exact, else strings) and without byte arrays (as hex). */
function plainJson(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
      if (v instanceof Uint8Array) return toHex(v);
      return v;
    }),
  ) as unknown;
}

/** One connection's life: its request, then what that request streams. */
class ServedConnection {
  readonly #socket: Socket;
  readonly #api: ClientApi;
  readonly #log: Logger;
  readonly #invites: InviteManager | undefined;
  readonly #extension: IpcExtension | undefined;
  #extensionLine: ((message: IpcMessage) => void) | undefined;
  readonly #reader = new LineReader(MAX_REQUEST_LINE);
  #phase: 'request' | 'reply' | 'recv' | 'extension' | 'done' = 'request';
  #cleanups: Array<() => void> = [];
  #timer: ReturnType<typeof setTimeout> | null;
  #closed = false;
  // recv
  #follow = false;
  #highest = 0;
  #outstanding = new Set<number>();
  #events: InboxMessage[] = [];
  #pumping = false;
  #again = false;
  #endSent = false;

  constructor(socket: Socket, api: ClientApi, log: Logger, invites?: InviteManager, extension?: IpcExtension) {
    this.#socket = socket;
    this.#api = api;
    this.#log = log;
    this.#invites = invites;
    this.#extension = extension;
    this.#timer = setTimeout(() => this.#fail(ipcError(`no request within ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS);
    this.#timer.unref();
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (e: NodeJS.ErrnoException) => this.#log.debug('connection error', { code: e.code ?? 'error' }));
    socket.on('close', () => this.#onClose());
  }

  /** Drops the connection (daemon stopping). */
  destroy(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (!this.#reading()) return; // nothing more is read: nothing is buffered
    let lines: Buffer[];
    try {
      lines = this.#reader.push(chunk);
    } catch (e) {
      this.#fail(e);
      return;
    }
    for (const line of lines) {
      if (!this.#reading()) return;
      if (line.toString('latin1').trim() === '') continue;
      try {
        this.#onLine(parseLine(line));
      } catch (e) {
        this.#fail(e);
        return;
      }
    }
  }

  /** Whether lines are still read: while the request is awaited, and during recv (consumes). */
  #reading(): boolean {
    return this.#phase === 'request' || this.#phase === 'recv' || this.#phase === 'extension';
  }

  #onLine(message: IpcMessage): void {
    if (this.#phase === 'recv') {
      this.#onConsume(message);
      return;
    }
    if (this.#phase === 'extension') {
      if (this.#extensionLine === undefined) throw ipcError('no more lines are expected on this connection');
      this.#extensionLine(message);
      return;
    }
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const op = message['op'];
    if (typeof op !== 'string') throw ipcError('a request needs an "op" string');
    this.#log.debug('request', { op: op.length <= 16 ? op : 'other' });
    switch (op) {
      case 'status':
        only(message, ['op']);
        this.#phase = 'reply';
        this.#write({ ok: true, status: plainJson(this.#api.status()) });
        this.#finish();
        return;
      case 'send': {
        const { send, wait } = parseSend(message, this.#api);
        this.#phase = 'reply';
        this.#send(send, wait);
        return;
      }
      case 'mailbox':
        this.#phase = 'reply';
        this.#mailbox(message);
        return;
      case 'recv':
        only(message, ['op', 'follow']);
        this.#follow = optionalBoolean(message, 'follow');
        this.#phase = 'recv';
        this.#recv();
        return;
      case 'inbox': {
        only(message, ['op', 'last']);
        const last = message['last'];
        if (last !== undefined && (typeof last !== 'number' || !Number.isSafeInteger(last) || last < 1 || last > MAX_INBOX_LAST)) {
          throw ipcError(`"last" must be a whole number from 1 to ${MAX_INBOX_LAST}`);
        }
        this.#phase = 'reply';
        void this.#inbox(last ?? null);
        return;
      }
      default: {
        if (INVITE_OPS.includes(op)) {
          this.#phase = 'reply';
          serveInviteOp(this.#invites, message, { write: (m) => void this.#write(m), finish: () => this.#finish(), onClose: (f) => this.#cleanups.push(f) });
          return;
        }
        if (this.#extension?.handles(op) === true) {
          this.#phase = 'extension';
          const served = this.#extension.open(message, { write: (m) => this.#write(m), finish: () => this.#finish() });
          this.#extensionLine = served.line;
          if (served.close !== undefined) {
            // Finished already (an answer without a stream): nothing will run the cleanups again.
            if ((this.#phase as string) === 'done') served.close();
            else this.#cleanups.push(served.close);
          }
          return;
        }
        throw ipcError(`unknown op ${JSON.stringify(op.slice(0, 24))}`);
      }
    }
  }

  // ---- send ----

  #send(request: SendRequest, wait: boolean): void {
    if (!wait) {
      const receipt = this.#api.send(request);
      this.#write({ ok: true, id: toHex(receipt.id), fragments: receipt.fragments });
      this.#finish();
      return;
    }
    // Subscribe first: the message may make progress (or fail) before send returns.
    let id: Uint8Array | null = null;
    let finished = false;
    let progressed = false;
    const early: ClientEvent[] = [];
    const onEvent = (e: ClientEvent): void => {
      if (finished || this.#closed) return;
      if (e.type !== 'attempt' && e.type !== 'progress' && e.type !== 'delivered' && e.type !== 'sent' && e.type !== 'failed') return;
      if (id === null) {
        early.push(e);
        return;
      }
      if (!equalBytes(e.id, id)) return;
      if (e.type === 'attempt') {
        this.#write({ event: 'attempt', index: e.index, attempt: e.attempt, total: e.total });
        return;
      }
      if (e.type === 'progress') {
        progressed = true;
        this.#write({ event: 'progress', done: e.done, total: e.total });
        return;
      }
      finished = true;
      unsubscribe();
      this.#write(e.type === 'failed' ? { event: 'failed', reason: e.reason } : { event: e.type });
      this.#finish();
    };
    const unsubscribe = this.#api.subscribe(onEvent);
    this.#cleanups.push(unsubscribe);
    const receipt = this.#api.send(request); // throws: answered as an error by the caller
    id = receipt.id;
    this.#write({ ok: true, id: toHex(receipt.id), fragments: receipt.fragments });
    for (const e of early.splice(0)) onEvent(e);
    if (finished) return;
    // It may have finished before we subscribed to it by id (or while send ran).
    const o = this.#api.outgoing(receipt.id);
    if (o === null || o.status === 'pending') {
      if (o !== null && o.done > 0 && !progressed) this.#write({ event: 'progress', done: o.done, total: o.fragments });
      return;
    }
    finished = true;
    unsubscribe();
    this.#write(o.status === 'failed' ? { event: 'failed', reason: 'the message could not be delivered' } : { event: o.status });
    this.#finish();
  }

  // ---- inbox ----

  /** Every inbox message (or the last `last`), oldest first, then "end"; consumes nothing. */
  async #inbox(last: number | null): Promise<void> {
    try {
      let held: InboxMessage[] = [];
      let after = 0;
      for (;;) {
        const page = this.#api.inboxPage(after, RECV_PAGE);
        for (const m of page) {
          after = m.seq;
          if (last === null) {
            if (this.#closed) return;
            if (!this.#write(messageLine(m, true))) await this.#drained();
          } else {
            held.push(m);
            if (held.length > 2 * last) held = held.slice(-last);
          }
        }
        if (page.length < RECV_PAGE) break;
      }
      for (const m of last === null ? [] : held.slice(-last)) {
        if (this.#closed) return;
        if (!this.#write(messageLine(m, true))) await this.#drained();
      }
      this.#write({ event: 'end' });
      this.#finish();
    } catch (e) {
      this.#fail(e);
    }
  }

  // ---- extra mailboxes ----

  #mailbox(request: IpcMessage): void {
    const action = request['action'];
    const info = (id: Uint8Array): unknown => plainJson(this.#api.mailboxes().find((m) => equalBytes(m.id, id)) ?? null);
    switch (action) {
      case 'list':
        only(request, ['op', 'action']);
        this.#write({ ok: true, mailboxes: plainJson(this.#api.mailboxes()) });
        this.#finish();
        return;
      case 'revoke':
        only(request, ['op', 'action', 'id']);
        this.#api.revokeMailbox(mailboxId(request));
        this.#write({ ok: true });
        this.#finish();
        return;
      case 'rotate': {
        only(request, ['op', 'action', 'id', 'grace_ms']);
        const grace = request['grace_ms'];
        if (grace !== undefined && (typeof grace !== 'number' || !Number.isSafeInteger(grace) || grace < 0)) throw ipcError('"grace_ms" must be a whole number');
        const fresh = this.#api.rotateMailbox(mailboxId(request), grace);
        this.#write({ ok: true, mailbox: info(fresh.id) });
        this.#finish();
        return;
      }
      case 'create': {
        only(request, ['op', 'action', 'wait']);
        const wait = optionalBoolean(request, 'wait');
        let id: Uint8Array | null = null;
        let done = false;
        const early: ClientEvent[] = [];
        const onEvent = (e: ClientEvent): void => {
          if (done || this.#closed || e.type !== 'mailbox') return;
          if (id === null) {
            early.push(e);
            return;
          }
          if (!equalBytes(e.id, id) || e.state === 'revoked') return;
          done = true;
          this.#write(e.state === 'registered' ? { event: 'registered' } : { event: 'refused', reason: e.reason });
          this.#finish();
        };
        if (wait) this.#cleanups.push(this.#api.subscribe(onEvent));
        const fresh = this.#api.createMailbox();
        id = fresh.id;
        this.#write({ ok: true, mailbox: info(fresh.id) });
        if (!wait) {
          this.#finish();
          return;
        }
        for (const e of early.splice(0)) onEvent(e);
        return;
      }
      default:
        throw ipcError('"action" must be create, list, revoke or rotate');
    }
  }

  // ---- recv ----

  #recv(): void {
    if (this.#follow) {
      this.#cleanups.push(
        this.#api.subscribe((e) => {
          if (e.type !== 'message' || this.#closed || e.message.seq <= this.#highest) return;
          if (this.#events.length < MAX_QUEUED_EVENTS) this.#events.push(e.message);
          else this.#events.length = 0; // too many to hold: the next pass rereads the store
          this.#again = true;
          void this.#pump();
        }),
      );
    }
    void this.#pump();
  }

  /** Sends what the peer has not seen, in seq order, from the store and then the events held. */
  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        for (;;) {
          const page = this.#api.unconsumed(this.#highest, RECV_PAGE);
          for (const m of page) if (!(await this.#sendMessage(m))) return;
          if (page.length < RECV_PAGE) break;
        }
        const held = this.#events.splice(0).sort((a, b) => a.seq - b.seq);
        for (const m of held) if (!(await this.#sendMessage(m))) return;
      } while (this.#again && !this.#closed);
      if (!this.#follow && !this.#endSent && !this.#closed) {
        this.#endSent = true;
        this.#write({ event: 'end' });
        if (this.#outstanding.size === 0) this.#finish();
      }
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#pumping = false;
    }
  }

  /** Writes one message unless seen; waits while the socket's buffer is full. False once closed. */
  async #sendMessage(m: InboxMessage): Promise<boolean> {
    if (this.#closed) return false;
    if (m.seq <= this.#highest) return true;
    this.#highest = m.seq;
    this.#outstanding.add(m.seq);
    if (!this.#write(messageLine(m))) await this.#drained();
    return !this.#closed;
  }

  #onConsume(message: IpcMessage): void {
    only(message, ['op', 'seq']);
    if (message['op'] !== 'consume') throw ipcError('during recv only {"op":"consume","seq":N} is accepted');
    const seq = message['seq'];
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) throw ipcError('"seq" must be a whole number');
    if (!this.#outstanding.has(seq)) throw ipcError('consume of a message not sent on this connection');
    this.#api.consume(seq);
    this.#outstanding.delete(seq);
    if (this.#endSent && !this.#follow && this.#outstanding.size === 0) this.#finish();
  }

  // ---- plumbing ----

  #write(message: IpcMessage): boolean {
    if (this.#closed || this.#socket.destroyed || this.#socket.writableEnded) return true;
    return this.#socket.write(encodeLine(message));
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
  }

  /** Ends the connection after what is written; destroys it if the peer does not take it in time. */
  #finish(): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    this.#stopListening();
    if (!this.#socket.destroyed && !this.#socket.writableEnded) this.#socket.end();
    setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  #fail(e: unknown): void {
    if (this.#phase === 'done') return;
    let error: BackchannelError;
    if (isBackchannelError(e)) {
      error = e;
      this.#log.debug('request failed', { code: e.code });
    } else {
      error = ipcError('internal error');
      this.#log.error('request failed', { code: e instanceof Error && 'code' in e ? String(e.code) : 'exception' });
    }
    this.#write({ ok: false, code: error.code, error: error.message });
    this.#finish();
  }

  #stopListening(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const f of this.#cleanups.splice(0)) {
      try {
        f();
      } catch {
        // an unsubscribe that throws changes nothing here
      }
    }
  }

  #onClose(): void {
    this.#closed = true;
    this.#phase = 'done';
    this.#stopListening();
    this.#events.length = 0;
  }
}

/**
 * Listens on `path` and serves `api`.
 * @throws {BackchannelError} ERR_CLIENT_IPC when the socket cannot be made (its code in the message).
 */
export async function startIpcServer(opts: IpcServerOptions): Promise<IpcServer> {
  const log = opts.log.child('ipc');
  const connections = new Set<ServedConnection>();
  const server: Server = createServer({ allowHalfOpen: false, pauseOnConnect: false }, (socket) => {
    const c = new ServedConnection(socket, opts.api, log, opts.invites, opts.extension);
    connections.add(c);
    socket.on('close', () => connections.delete(c));
  });
  server.maxConnections = MAX_IPC_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(new BackchannelError('ERR_CLIENT_IPC', `client ipc: cannot listen on ${opts.path} (${e.code ?? 'error'})`, { cause: e }));
    };
    server.once('error', onError);
    server.listen({ path: opts.path, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  try {
    chmodSync(opts.path, 0o600);
  } catch (e) {
    server.close();
    throw new BackchannelError('ERR_CLIENT_IPC', `client ipc: cannot restrict the socket's permissions (${(e as { code?: string }).code ?? 'error'})`, { cause: e });
  }
  server.on('error', (e: NodeJS.ErrnoException) => log.error('socket server error', { code: e.code ?? 'error' }));
  log.info('listening');
  let closing: Promise<void> | null = null;
  return {
    path: opts.path,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const c of connections) c.destroy();
        connections.clear();
      }).then(() => {
        rmSync(opts.path, { force: true });
        log.info('closed');
      });
      return closing;
    },
  };
}
