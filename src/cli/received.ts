/**
 * Received messages as `backchannel client recv` and `client inbox` show them: the daemon's
 * message lines (daemon.ts) parsed, formatted for a terminal or as JSON, and files saved.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Buffer } from 'node:buffer';
import { isSafeFileName } from '../client/frames.js';
import type { IpcMessage } from '../client/ipc.js';
import { BackchannelError } from '../errors.js';

export interface Received {
  readonly seq: number;
  readonly id: string;
  readonly body: Buffer;
  readonly bodyBase64: string;
  /** When our client fetched it (ms, our clock). */
  readonly receivedAt: number;
  /** When the sender's client accepted it (ms, the sender's clock, whole seconds); null: not said (an older sender). */
  readonly sentAt: number | null;
  /** The name of the file it is, or null for a plain message. */
  readonly fileName: string | null;
  readonly replySurbs: number;
  readonly inReplyTo: string | null;
  /** The id (hex) of the extra mailbox it came to, or null for the main one. */
  readonly mailbox: string | null;
  /** Whether it was read before (inbox only; recv shows unread messages). */
  readonly consumed: boolean | null;
}

function protocolError(what: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_IPC', `client ipc: unexpected answer from the client (${what})`);
}

/** @throws {BackchannelError} ERR_CLIENT_IPC for a line that is not a message. */
export function parseReceived(m: IpcMessage): Received {
  const { seq, id, body_base64: b64, received_at: at, reply_surbs: surbs, in_reply_to: irt } = m;
  if (typeof seq !== 'number' || typeof id !== 'string' || typeof b64 !== 'string' || typeof at !== 'number' || typeof surbs !== 'number' || (irt !== null && typeof irt !== 'string')) {
    throw protocolError('message');
  }
  // Absent from an older daemon: not said.
  const sentAt = typeof m['sent_at'] === 'number' ? m['sent_at'] : null;
  const fileName = typeof m['file_name'] === 'string' ? m['file_name'] : null;
  const consumed = typeof m['consumed'] === 'boolean' ? m['consumed'] : null;
  const mailbox = typeof m['mailbox'] === 'string' ? m['mailbox'] : null;
  return { seq, id, body: Buffer.from(b64, 'base64'), bodyBase64: b64, receivedAt: at, sentAt, fileName, replySurbs: surbs, inReplyTo: irt, mailbox, consumed };
}

/** The JSON object `--json` prints for a message. */
export function receivedJson(r: Received): Record<string, unknown> {
  return {
    id: r.id,
    seq: r.seq,
    sent_at: r.sentAt,
    received_at: r.receivedAt,
    file_name: r.fileName,
    body_base64: r.bodyBase64,
    reply_surbs: r.replySurbs,
    in_reply_to: r.inReplyTo,
    mailbox: r.mailbox,
    ...(r.consumed === null ? {} : { read: r.consumed }),
  };
}

/** Shows control characters (escape sequences a sender could use on our terminal) as U+FFFD. */
export function forTerminal(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '\ufffd');
}

/** A time in UTC to the second: 2026-12-06 13:14:15Z. */
function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The number of hex digits of an id shown, and accepted back by --reply-to. */
export const SHORT_ID_LENGTH = 16;

/**
 * A message for a terminal: a header line, then its text (or, for a file, where it was saved or
 * how to save it):
 *
 *   --- ID16 · N bytes · sent TIME · fetched TIME[ · file NAME][ · in reply to ID16][ · to mailbox ID16][ · reply with --reply-to ID16 (K SURBs)]
 *
 * `saved` is the path a file was written to. `terminal` replaces control characters.
 */
export function formatReceived(r: Received, terminal: boolean, saved?: string): string {
  const parts = [`--- ${r.id.slice(0, SHORT_ID_LENGTH)}`];
  if (r.consumed !== null) parts.push(r.consumed ? 'read' : 'new');
  parts.push(`${r.body.length} bytes`, r.sentAt === null ? 'sent at an unknown time' : `sent ${when(r.sentAt)}`, `fetched ${when(r.receivedAt)}`);
  if (r.fileName !== null) parts.push(`file ${terminal ? forTerminal(r.fileName) : r.fileName}`);
  if (r.inReplyTo !== null) parts.push(`in reply to ${r.inReplyTo.slice(0, SHORT_ID_LENGTH)}`);
  if (r.mailbox !== null) parts.push(`to mailbox ${r.mailbox.slice(0, SHORT_ID_LENGTH)}`);
  if (r.replySurbs > 0) parts.push(`reply with --reply-to ${r.id.slice(0, SHORT_ID_LENGTH)} (${r.replySurbs} SURB${r.replySurbs === 1 ? '' : 's'})`);
  let text: string;
  if (r.fileName !== null) {
    text = saved !== undefined ? `(saved as ${saved})` : `(a file of ${r.body.length} bytes; write it to a folder with --save DIR)`;
  } else {
    try {
      text = strictUtf8.decode(r.body);
      if (terminal) text = forTerminal(text);
    } catch {
      text = `(binary, ${r.body.length} bytes; use --json)`;
    }
  }
  return `${parts.join(' · ')}\n${text.endsWith('\n') ? text : `${text}\n`}`;
}

function saveError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_SAVE', message);
}

/**
 * Makes `dir` (and its parents) if missing, mode 0700; it must be a folder.
 * @throws {BackchannelError} ERR_CLIENT_SAVE when it cannot be.
 */
export function prepareSaveDir(dir: string): string {
  const abs = resolve(dir);
  try {
    mkdirSync(abs, { recursive: true, mode: 0o700 });
    if (!statSync(abs).isDirectory()) throw saveError(`--save: ${abs} is not a folder`);
  } catch (e) {
    if (e instanceof BackchannelError) throw e;
    throw saveError(`--save: cannot use ${abs} as a folder (${(e as { code?: string }).code ?? 'error'})`);
  }
  return abs;
}

/**
 * Writes a received file into `dir` under the name the sender gave, mode 0600, flushed to disk;
 * returns its path. Never leaves `dir` (the name must be a plain name: frames.ts isSafeFileName)
 * and never replaces anything (O_EXCL: neither an existing file nor a symbolic link is followed).
 * @throws {BackchannelError} ERR_CLIENT_SAVE for an unsafe name, a file that exists, or a failed write.
 */
export function saveReceivedFile(dir: string, fileName: string, body: Uint8Array): string {
  if (!isSafeFileName(fileName)) throw saveError('not saved: the sender gave a file name that is not a plain name (client inbox --json has the content)');
  const path = join(dir, fileName);
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EEXIST') throw saveError(`not saved: ${path} exists and is not replaced; move it away or give another --save folder`);
    throw saveError(`not saved: cannot create ${path} (${code ?? 'error'})`);
  }
  try {
    let off = 0;
    while (off < body.length) off += writeSync(fd, body, off, body.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true }); // no half file left to block the next try
    throw saveError(`not saved: writing ${path} failed (${(e as { code?: string }).code ?? 'error'})`);
  }
  closeSync(fd);
  return path;
}
