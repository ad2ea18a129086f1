/**
 * `backchannel client contacts|contact|history|chat`, `client send NAME ...` and the contact part
 * of `client recv`: the messenger's commands, talking to the running client over its socket
 * (src/client/messenger-ipc.ts).
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Buffer } from 'node:buffer';
import { clientSocketPath, ipcRequest } from '../client/ipc.js';
import type { IpcConnection, IpcMessage } from '../client/ipc.js';
import { DEFAULT_CLIENT_DIR, notInitialisedError } from '../client/node-client.js';
import { CLIENT_DB_FILE } from '../client/sqlite-store.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import { MAX_FILE_LENGTH } from '../messaging/content.js';
import { stopSignal, usageError } from './args.js';
import { argHint, call, dirHintOf, dirOf, err, help, out, parse, time } from './client-command.js';
import { SendReporter } from './send-progress.js';
import { introductionNotice } from './introduce.js';

export const CONTACTS_HELP = `Usage: backchannel client contacts [--dir DIR] [--json]

Lists your contacts: name, whether you compared safety numbers (verified), the state of the
session (starting: you opened it and wait for the first answer; waiting: the contact opens it;
up), and when you added them.

Options:
  --json      one JSON array
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help      print this help
`;

export const CONTACT_HELP = `Usage: backchannel client contact <command> [--dir DIR]

Commands:
  export              print your contact card (one line of text) to give to someone
  import NAME CARD    make the holder of CARD your contact NAME
  rename OLD NEW      rename a contact
  remove NAME         forget a contact, its session and its history, and revoke the mailbox NAME
                      writes to (what NAME still sends stops at your gateway)
  verify NAME [--done | --undo]
                      print the safety number you and NAME share: compare it in person or on a
                      call; when it matches, run again with --done to mark NAME verified
  block NAME          drop NAME's messages from now on and revoke the mailbox NAME writes to at
                      your gateway (their mail stops there, and takes none of your fetches)
  unblock NAME        take NAME's messages again: NAME gets a new mailbox to write to, told inside
                      your session (what NAME sent while blocked is lost)
  rotate NAME [--grace SECONDS]
                      give NAME a new mailbox to write to (when the old address leaked or
                      draws spam): NAME is told inside your session and switches at once; the
                      old mailbox keeps receiving for SECONDS (default 7 days), then is revoked

Exchanging cards by hand (export, send the text to the other person over a channel you trust,
import theirs) is for people who can do that safely, and for tests. The short-code flow
('client invite' / 'client accept') is the better way: it needs no channel you trust, and a
wrong code fails cleanly. Both people must import each other's card; either may go first.
A card is for one person (it carries a one-time key): export a new one for each contact.

Example (Alice and Bob):
  alice$ npx backchannel client contact export --dir alice > alice.card
  bob$   npx backchannel client contact export --dir bob > bob.card
  alice$ npx backchannel client contact import --dir alice bob "$(cat bob.card)"
  bob$   npx backchannel client contact import --dir bob alice "$(cat alice.card)"
  alice$ npx backchannel client send --dir alice bob hello
`;

export const HISTORY_HELP = `Usage: backchannel client history NAME [--dir DIR] [--json] [--limit N] [--save DIR2]

Prints your conversation with contact NAME, oldest first: for each message the time it was sent
(as its sender's clock stated it), who wrote it, the text or file, and for your own messages
their state:

  queued     waiting to go (the session is not up yet, or the contact's gateway has not yet
             acknowledged every fragment)
  sent       the contact's gateway has stored it
  delivered  the contact's client confirmed, inside your encrypted session, that it has it
  failed     the network gave up on it

Options:
  --json        one JSON object per message
  --limit N     the last N messages (default 1000)
  --save DIR2   also write the files NAME sent you into DIR2
  --dir DIR     the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help        print this help
`;

export const CHAT_HELP = `Usage: backchannel client chat NAME [--dir DIR]

An interactive conversation with contact NAME: what NAME writes appears as it arrives; each line
you type is sent. Your messages show their state (queued, sent, delivered, failed; see 'client
history --help'), updated in place on a terminal, printed again as a line otherwise. A large
message coming in from NAME shows its progress ("receiving from NAME: 40 % ..."). Introductions
offered to you, and their outcomes, show once as event lines with the commands to answer them.
Ctrl-C or Ctrl-D ends the chat (messages already typed are still sent: the client has them).

Options:
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help      print this help
`;

export const SEND_NAME_HELP = `  backchannel client send NAME TEXT...        send TEXT to contact NAME
  backchannel client send NAME --file PATH    send a file (at most ${MAX_FILE_LENGTH} bytes) to contact NAME`;

/** Shows control characters (escape sequences a sender could use on our terminal) as U+FFFD. */
function safe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '\ufffd');
}

interface Entry {
  id: number;
  contact: string;
  direction: 'in' | 'out';
  kind: 'text' | 'file';
  text: string | null;
  file_name: string | null;
  file_length: number | null;
  sent_at: number;
  received_at: number;
  state: string;
}

function entryOf(v: unknown): Entry {
  const e = v as Entry;
  if (typeof e !== 'object' || e === null || typeof e.id !== 'number' || typeof e.contact !== 'string') throw new BackchannelError('ERR_CLIENT_IPC', 'client ipc: unexpected answer from the client (entry)');
  return e;
}

function body(e: Entry): string {
  if (e.kind === 'file') return `[file "${safe(e.file_name ?? '')}", ${e.file_length ?? '?'} bytes]`;
  return safe(e.text ?? '');
}

// ---- contacts ----

export async function contactsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  if (values['help'] === true) return help(CONTACTS_HELP);
  if (positionals.length > 0) throw usageError('contacts takes no arguments; see backchannel client contacts --help');
  const r = await call(dirOf(values), { op: 'contacts' });
  const list = r['contacts'] as IpcMessage[];
  if (values['json'] === true) {
    out(JSON.stringify(list));
    return 0;
  }
  if (list.length === 0) {
    out('No contacts yet. Add one with: npx backchannel client contact export / import (see --help)');
    return 0;
  }
  const width = Math.max(4, ...list.map((c) => String(c['name']).length));
  out(`${'NAME'.padEnd(width)}  VERIFIED  SESSION   ADDED`);
  for (const c of list) out(`${safe(String(c['name'])).padEnd(width)}  ${c['verified'] === true ? 'yes' : 'no '}       ${String(c['session']).padEnd(8)}  ${time(c['created_at'])}`);
  return 0;
}

export async function contactCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return help(CONTACT_HELP);
  const { values, positionals } = parse(rest, { done: { type: 'boolean' }, undo: { type: 'boolean' }, grace: { type: 'string' } });
  if (values['help'] === true) return help(CONTACT_HELP);
  const dir = dirOf(values);
  const want = (n: number, usage: string): void => {
    if (positionals.length !== n) throw usageError(`usage: backchannel client contact ${usage}`);
  };
  switch (sub) {
    case 'export': {
      want(0, 'export');
      out(String((await call(dir, { op: 'contact_export' }))['card']));
      if (process.stdout.isTTY === true) err('Give this card to your contact over a channel you trust; they run: npx backchannel client contact import YOURNAME CARD');
      return 0;
    }
    case 'import': {
      want(2, 'import NAME CARD');
      const r = await call(dir, { op: 'contact_import', name: positionals[0], card: positionals[1] });
      const c = r['contact'] as IpcMessage;
      out(`Added ${safe(String(c['name']))}. ${c['session'] === 'waiting' ? 'The session starts when they import your card too.' : 'You can write to them now; it goes once they import your card too.'}`);
      return 0;
    }
    case 'rename':
      want(2, 'rename OLD NEW');
      await call(dir, { op: 'contact_rename', name: positionals[0], new_name: positionals[1] });
      out(`Renamed ${safe(positionals[0]!)} to ${safe(positionals[1]!)}.`);
      return 0;
    case 'remove':
      want(1, 'remove NAME');
      await call(dir, { op: 'contact_remove', name: positionals[0] });
      out(`Removed ${safe(positionals[0]!)}, the session and the history; the mailbox they wrote to is revoked.`);
      return 0;
    case 'verify': {
      want(1, 'verify NAME [--done | --undo]');
      if (values['done'] === true && values['undo'] === true) throw usageError('give --done or --undo, not both');
      const verified = values['done'] === true ? true : values['undo'] === true ? false : undefined;
      const r = await call(dir, { op: 'contact_verify', name: positionals[0], ...(verified === undefined ? {} : { verified }) });
      const c = r['contact'] as IpcMessage;
      const digits = String(r['safety_number']).split(' ');
      out(`Safety number with ${safe(String(c['name']))}:\n\n  ${digits.slice(0, 6).join(' ')}\n  ${digits.slice(6).join(' ')}\n`);
      out(
        c['verified'] === true
          ? 'Marked verified.'
          : `Not verified. Compare it with theirs in person or on a call; if it matches, run: npx backchannel client contact verify ${safe(String(c['name']))} --done`,
      );
      return 0;
    }
    case 'block': {
      want(1, 'block NAME');
      const r = await call(dir, { op: 'contact_block', name: positionals[0] });
      out(
        r['mailbox_revoked'] === true
          ? `Blocked ${safe(positionals[0]!)}: their messages are dropped, and the mailbox they write to is revoked at your gateway.`
          : `Blocked ${safe(positionals[0]!)}: their messages are dropped. They write to your main address, which cannot be revoked.`,
      );
      return 0;
    }
    case 'unblock': {
      want(1, 'unblock NAME');
      const r = await call(dir, { op: 'contact_unblock', name: positionals[0] });
      out(
        r['mailbox_renewed'] === true
          ? `Unblocked ${safe(positionals[0]!)}: they get a new mailbox to write to, told inside your session; what they sent while blocked is lost.`
          : `Unblocked ${safe(positionals[0]!)}: their messages are taken again.`,
      );
      return 0;
    }
    case 'rotate': {
      want(1, 'rotate NAME [--grace SECONDS]');
      const grace = values['grace'];
      if (grace !== undefined && (typeof grace !== 'string' || !/^\d{1,9}$/.test(grace))) throw usageError('--grace takes a whole number of seconds');
      await call(dir, { op: 'contact_rotate', name: positionals[0], ...(typeof grace === 'string' ? { grace_ms: Number(grace) * 1000 } : {}) });
      out(`${safe(positionals[0]!)} gets a new mailbox to write to (told inside your session); the old one keeps receiving for ${typeof grace === 'string' ? `${grace} s` : '7 days'}.`);
      return 0;
    }
    default:
      throw usageError(`unknown contact command "${sub.slice(0, 32)}"; the commands are export, import, rename, remove, verify, block, unblock, rotate`);
  }
}

// ---- send NAME ----

/** `client send NAME TEXT...` / `client send NAME --file PATH`. */
export async function sendToContact(dir: string, positionals: string[], file: string | undefined, wait: boolean): Promise<number> {
  const [name, ...words] = positionals;
  if (name === undefined) throw usageError('send needs a contact NAME, --to ADDRESS or --reply-to ID; see backchannel client send --help');
  const request: IpcMessage = { op: 'msg_send', name, wait };
  if (file !== undefined) {
    if (words.length > 0) throw usageError('give the message as TEXT or as --file, not both');
    let data: Buffer;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw usageError(`--file: ${file} is not a file`);
      if (st.size > MAX_FILE_LENGTH) throw usageError(`--file: ${file} is longer than ${MAX_FILE_LENGTH} bytes, the most a file to a contact may be`);
      data = readFileSync(file);
    } catch (e) {
      if (e instanceof BackchannelError) throw e;
      throw usageError(`--file: cannot read ${file} (${String((e as { code?: unknown }).code ?? 'read failed')})`);
    }
    if (data.length === 0) throw usageError('--file: the file is empty');
    request['file_name'] = basename(file);
    request['file_base64'] = data.toString('base64');
  } else {
    if (words.length === 0) {
      throw usageError('send needs a contact NAME and TEXT (send NAME TEXT, or NAME --file PATH), --to ADDRESS (a new message) or --reply-to ID (a reply); see backchannel client send --help');
    }
    request['text'] = words.join(' ');
  }
  const hint = `npx backchannel client history ${argHint(name)}${dirHintOf(dir)}`;
  const start = Date.now();
  const tty = process.stderr.isTTY === true;
  let entry: Entry | undefined;
  let last = '';
  let reporter: SendReporter | null = null;
  const line = (text: string): void => {
    reporter?.finish();
    err(text);
  };
  const onState = (e: Entry): void => {
    if (e.state === last) return;
    last = e.state;
    if (e.state === 'sent') line(`stored at ${safe(name)}'s gateway; waiting for ${safe(name)}'s client to confirm it (delivered)`);
  };
  const abort = new AbortController();
  let stopped = false;
  const stop = stopSignal();
  void stop.then(() => {
    stopped = true;
    abort.abort();
  });
  try {
    await ipcRequest(clientSocketPath(dir), request, (m: IpcMessage, c: IpcConnection) => {
      if (entry === undefined) {
        entry = entryOf(m['entry']);
        last = entry.state;
        if (!wait) c.end();
        return;
      }
      switch (m['event']) {
        case 'state': {
          const e = entryOf(m['entry']);
          onState(e);
          if (e.state === 'delivered' || e.state === 'failed') c.end();
          return;
        }
        case 'waiting':
          line(`queued: your session with ${safe(name)} is not up yet (their client has not answered); the message goes once it is. Your client keeps it meanwhile.`);
          return;
        case 'carrier':
          if (typeof m['fragments'] === 'number' && reporter === null) {
            reporter = new SendReporter({ fragments: m['fragments'], reply: false, stream: process.stderr, recipient: safe(name), start, ...(entry.kind === 'file' && entry.file_length !== null ? { length: entry.file_length } : {}) });
          }
          return;
        case 'attempt':
          if (typeof m['index'] === 'number' && typeof m['attempt'] === 'number') reporter?.attempt(m['index'], m['attempt']);
          return;
        case 'progress':
          if (typeof m['done'] === 'number') reporter?.progress(m['done']);
          return;
        default:
      }
    }, { dir, signal: abort.signal }).catch((e: unknown) => {
      if (isBackchannelError(e, 'ERR_CLIENT_NOT_RUNNING') && !existsSync(join(dir, CLIENT_DB_FILE))) throw notInitialisedError(dir);
      throw e;
    });
  } finally {
    (reporter as SendReporter | null)?.finish();
    if (tty) process.stderr.write('\r\x1b[K');
  }
  if (entry === undefined) throw new BackchannelError('ERR_CLIENT_IPC', 'client ipc: no answer to send');
  if (!wait) {
    out(`${last} (to ${safe(name)})`);
    return 0;
  }
  if (stopped && last !== 'delivered' && last !== 'failed') {
    err(`Stopped waiting. The message stays ${last === 'sent' ? `stored at ${safe(name)}'s gateway` : 'queued'}: your client keeps sending it while it runs, and it shows as delivered once ${safe(name)}'s client confirms it. See its state with: ${hint}`);
    return 130;
  }
  if (last === 'failed') {
    err(`failed: the network gave up on the message to ${safe(name)} (is their client or gateway down for long?). It stays in ${hint}`);
    return 1;
  }
  if (last !== 'delivered') throw new BackchannelError('ERR_CLIENT_IPC', `the client stopped before the message was delivered; it stays queued and goes when the client runs again (see: ${hint})`);
  out(`delivered to ${safe(name)}`);
  return 0;
}

// ---- history ----

function historyLine(e: Entry): string {
  const who = e.direction === 'out' ? 'me' : safe(e.contact);
  const state = e.direction === 'out' ? `  (${e.state})` : e.state === 'receiving' ? '  (receiving)' : '';
  return `${time(e.sent_at)}  ${who}: ${body(e)}${state}`;
}

function saveName(dir: string, name: string): string {
  const clean = basename(name).replace(/[^\w.\- ]/g, '_').replace(/^\.+/, '') || 'file';
  let candidate = join(dir, clean);
  for (let i = 1; existsSync(candidate); i++) candidate = join(dir, `${i}-${clean}`);
  return candidate;
}

export async function historyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, limit: { type: 'string' }, save: { type: 'string' } });
  if (values['help'] === true) return help(HISTORY_HELP);
  if (positionals.length !== 1) throw usageError('usage: backchannel client history NAME [--json] [--limit N] [--save DIR]');
  const dir = dirOf(values);
  let limit = 1000;
  if (typeof values['limit'] === 'string') {
    if (!/^\d+$/.test(values['limit']) || Number(values['limit']) < 1) throw usageError('--limit must be a positive whole number');
    limit = Number(values['limit']);
  }
  const r = await call(dir, { op: 'history', name: positionals[0], limit });
  const entries = (r['entries'] as unknown[]).map(entryOf);
  for (const e of entries) out(values['json'] === true ? JSON.stringify(e) : historyLine(e));
  if (entries.length === 0 && values['json'] !== true) err('no messages yet');
  if (typeof values['save'] === 'string') {
    const to = resolve(values['save']);
    mkdirSync(to, { recursive: true });
    for (const e of entries) {
      if (e.direction !== 'in' || e.kind !== 'file' || e.state !== 'received') continue;
      const f = await call(dir, { op: 'msg_file', id: e.id });
      const path = saveName(to, String(f['name']));
      writeFileSync(path, Buffer.from(String(f['data_base64']), 'base64'), { mode: 0o600 });
      err(`saved ${path}`);
    }
  }
  return 0;
}

// ---- recv (the contacts' part) ----

/**
 * Prints the unread messages of contacts (the first part of `client recv`) and marks each read
 * once printed. With `follow`, keeps printing until `signal` fires. Returns how many it printed.
 */
export async function recvFromContacts(dir: string, opts: { follow: boolean; json: boolean; signal?: AbortSignal }): Promise<number> {
  let count = 0;
  const incoming = new IncomingProgress(process.stderr);
  const write = (text: string): Promise<void> => {
    incoming.clear();
    return new Promise<void>((res, rej) => process.stdout.write(text, (x) => (x ? rej(x) : res())));
  };
  await ipcRequest(
    clientSocketPath(dir),
    { op: 'msg_recv', introductions: true, ...(opts.follow ? { follow: true, receiving: true } : {}) },
    async (m: IpcMessage, c: IpcConnection) => {
      if (m['event'] === 'end') {
        c.end();
        return;
      }
      if (m['event'] === 'receiving') {
        if (!opts.json) incoming.update(m);
        return;
      }
      if (m['event'] === 'introduction') {
        const i = m['introduction'] as IpcMessage;
        await write(opts.json ? `${JSON.stringify({ notice: m['kind'], introduction: i })}\n` : `${introductionNotice(m['kind'], i, dirHintOf(dir))}\n`);
        c.send({ op: 'intro_shown', id: i['id'], kind: m['kind'] });
        return;
      }
      if (m['event'] !== 'message') return;
      const e = entryOf(m['entry']);
      const text = opts.json
        ? `${JSON.stringify({ from: e.contact, id: e.id, kind: e.kind, sent_at: e.sent_at, received_at: e.received_at, text: e.text, file_name: e.file_name, file_length: e.file_length })}\n`
        : `--- from ${safe(e.contact)} · sent ${time(e.sent_at)} · received ${time(e.received_at)}${e.kind === 'file' ? ` · save with: npx backchannel client history ${argHint(e.contact)}${dirHintOf(dir)} --save DIR` : ''}\n${body(e)}\n`;
      await write(text);
      count++;
      c.send({ op: 'read', id: e.id });
    },
    { dir, ...(opts.signal === undefined ? {} : { signal: opts.signal }) },
  );
  return count;
}

// ---- a large message coming in ----

/**
 * What `recv --follow` says on stderr while a large message (a file or a long text: several
 * fragments) comes in from a contact: on a terminal one line redrawn in place (cleared before a
 * message is printed), elsewhere a line per tenth.
 */
export class IncomingProgress {
  readonly #stream: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly #tenths = new Map<string, number>();
  #shown = false;

  constructor(stream: { write(text: string): unknown; readonly isTTY?: boolean }) {
    this.#stream = stream;
  }

  /** One "receiving" event; returns the line shown, if any. */
  update(m: IpcMessage): string | null {
    const have = m['have'];
    const total = m['total'];
    if (typeof have !== 'number' || typeof total !== 'number' || total < 2) return null;
    const key = `${String(m['contact'])}\u0000${total}`;
    const tenth = Math.floor((10 * have) / total);
    const text = incomingLine(String(m['contact']), have, total);
    if (this.#stream.isTTY === true) {
      this.#stream.write(`\r\x1b[K${text}`);
      this.#shown = true;
      return text;
    }
    if ((this.#tenths.get(key) ?? -1) >= tenth) return null;
    this.#tenths.set(key, tenth);
    if (this.#tenths.size > 64) this.#tenths.delete(this.#tenths.keys().next().value as string);
    this.#stream.write(`${text}\n`);
    return text;
  }

  /** Clears the line drawn on a terminal. */
  clear(): void {
    if (!this.#shown) return;
    this.#stream.write('\r\x1b[K');
    this.#shown = false;
  }
}

/** "receiving from NAME: 40 % of a large message (a file or a long text), 60/150 fragments". */
export function incomingLine(contact: string, have: number, total: number): string {
  return `receiving from ${safe(contact)}: ${Math.floor((100 * have) / total)} % of a large message (a file or a long text), ${have}/${total} fragments`;
}

// ---- chat ----

export async function chatCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {});
  if (values['help'] === true) return help(CHAT_HELP);
  if (positionals.length !== 1) throw usageError('usage: backchannel client chat NAME');
  const name = positionals[0]!;
  const dir = dirOf(values);
  await call(dir, { op: 'contact_verify', name }); // the contact exists and the client runs
  const tty = process.stdout.isTTY === true && process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty });
  // A terminal that does not say its width (0, as some ptys do) is taken as 80 wide.
  const columns = (): number => Math.max(20, (process.stdout.columns || 80) - 1);
  let lines = 0; // lines printed above the prompt
  const own = new Map<number, { line: number; entry: Entry }>();
  /** Prints a line above the prompt (cut to the terminal's width, unless `whole`: then it may wrap); its number. */
  const print = (text: string, whole = false): number => {
    const shown = tty && !whole ? text.slice(0, columns()) : text;
    if (tty) process.stdout.write('\r\x1b[K');
    process.stdout.write(`${shown}\n`);
    lines += tty ? Math.max(1, Math.ceil(shown.length / (columns() + 1))) : 1;
    if (tty) rl.prompt(true);
    return lines;
  };
  const ownLine = (e: Entry): string => `${time(e.sent_at)}  me: ${body(e)}  (${e.state})`;
  /** Rewrites the line printed as number `at`, when it is still on the screen; false when not. */
  const rewrite = (at: number, text: string): boolean => {
    const up = lines - at + 1;
    if (!tty || up > (process.stdout.rows ?? 24) - 1) return false;
    process.stdout.write(`\x1b[s\x1b[${up}A\r\x1b[K${text.slice(0, columns())}\x1b[u`);
    return true;
  };
  const onState = (e: Entry): void => {
    const o = own.get(e.id);
    if (o === undefined || o.entry.state === e.state) return;
    o.entry = e;
    if (!rewrite(o.line, ownLine(e))) print(ownLine(e));
  };
  // A large message coming in: one line, redrawn in place on a terminal, else a line per tenth.
  const coming = new Map<number, { line: number; tenth: number }>();
  const onReceiving = (m: IpcMessage): void => {
    const have = m['have'];
    const total = m['total'];
    if (typeof have !== 'number' || typeof total !== 'number' || total < 2) return;
    const text = incomingLine(String(m['contact']), have, total);
    const tenth = Math.floor((10 * have) / total);
    const c = coming.get(total);
    if (c !== undefined && (tty ? rewrite(c.line, text) : c.tenth >= tenth)) {
      c.tenth = Math.max(c.tenth, tenth);
      return;
    }
    coming.set(total, { line: print(text), tenth });
  };
  const onArrived = (): void => {
    for (const [total, c] of coming) rewrite(c.line, incomingLine(name, total, total));
    coming.clear();
  };
  rl.on('SIGINT', () => rl.close());
  if (tty) {
    rl.setPrompt('> ');
    print(`Chat with ${safe(name)}. Type a message and press Enter; Ctrl-C or Ctrl-D ends.`);
  }
  const abort = new AbortController();
  const incoming = ipcRequest(
    clientSocketPath(dir),
    { op: 'msg_recv', name, follow: true, states: true, introductions: true, receiving: true },
    (m: IpcMessage, c: IpcConnection) => {
      if (m['event'] === 'message') {
        const e = entryOf(m['entry']);
        if (e.kind === 'file' || (e.text ?? '').length > 1000) onArrived();
        print(`${time(e.sent_at)}  ${safe(e.contact)}: ${body(e)}${e.kind === 'file' ? `  (save with: npx backchannel client history ${argHint(e.contact)}${dirHintOf(dir)} --save DIR)` : ''}`, e.kind === 'file');
        c.send({ op: 'read', id: e.id });
      } else if (m['event'] === 'state') onState(entryOf(m['entry']));
      else if (m['event'] === 'receiving') onReceiving(m);
      else if (m['event'] === 'introduction') {
        const i = m['introduction'] as IpcMessage;
        for (const l of introductionNotice(m['kind'], i, dirHintOf(dir)).split('\n')) print(l, true);
        c.send({ op: 'intro_shown', id: i['id'], kind: m['kind'] });
      }
    },
    { dir, signal: abort.signal },
  );
  let sending = Promise.resolve();
  rl.on('line', (line) => {
    const text = line.trim();
    if (tty) process.stdout.write('\x1b[1A\r\x1b[K'); // the typed line gives way to the message line
    if (text === '') {
      if (tty) rl.prompt(true);
      return;
    }
    sending = sending.then(async () => {
      try {
        const r = await call(dir, { op: 'msg_send', name, text });
        const e = entryOf(r['entry']);
        own.set(e.id, { line: print(ownLine(e)), entry: e });
      } catch (e) {
        print(`(not sent: ${e instanceof Error ? e.message : String(e)})`);
      }
    });
  });
  if (tty) rl.prompt();
  const ended = new Promise<void>((res) => rl.on('close', () => res()));
  await Promise.race([ended, stopSignal(), incoming.then(() => undefined)]);
  // Let the lines typed so far reach the client before going.
  await sending;
  if (!tty) {
    // Reading a pipe: wait until the messages sent are delivered or failed, or the client stops.
    const open = (): boolean => [...own.values()].some((o) => o.entry.state !== 'delivered' && o.entry.state !== 'failed');
    const stop = stopSignal();
    let stopped = false;
    void stop.then(() => {
      stopped = true;
    });
    while (open() && !stopped) {
      const done = await Promise.race([incoming.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
      if (done) break;
    }
  }
  rl.close();
  abort.abort();
  await incoming.catch(() => undefined);
  if (tty) process.stdout.write('\n');
  return 0;
}
