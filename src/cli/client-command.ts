/**
 * What the client's sub-commands that talk to a running client share: option parsing with
 * `--dir` and `--help`, the client folder, one call on its local socket (saying "no client here"
 * rather than "not running" when the folder holds none), and output.
 */
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { clientSocketPath, ipcCall } from '../client/ipc.js';
import type { IpcMessage } from '../client/ipc.js';
import { DEFAULT_CLIENT_DIR, notInitialisedError } from '../client/node-client.js';
import { CLIENT_DB_FILE } from '../client/sqlite-store.js';
import { isBackchannelError } from '../errors.js';
import { usageError } from './args.js';

export type Values = Record<string, string | boolean | undefined>;

/** Writes `text` to stdout, ending it with a newline. */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Writes `text` to stderr, ending it with a newline. */
export function err(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Prints a help text; the exit code 0. */
export function help(text: string): number {
  out(text);
  return 0;
}

/**
 * Parses `argv` with `options` plus `--dir` and `--help`.
 * @throws {BackchannelError} ERR_USAGE with parseArgs's first line.
 */
export function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw usageError(e instanceof Error ? e.message.split('\n')[0]! : String(e));
  }
}

/** The client folder `--dir` names, or the default one, as an absolute path. */
export function dirOf(v: Values): string {
  return resolve(typeof v['dir'] === 'string' && v['dir'] !== '' ? v['dir'] : DEFAULT_CLIENT_DIR);
}

/**
 * One request to the client running for `dir`, and its answer.
 * @throws {BackchannelError} ERR_CLIENT_STATE when `dir` holds no client; the IPC's errors else.
 */
export async function call(dir: string, request: IpcMessage): Promise<IpcMessage> {
  try {
    return await ipcCall(clientSocketPath(dir), request, { dir });
  } catch (e) {
    if (isBackchannelError(e, 'ERR_CLIENT_NOT_RUNNING') && !existsSync(join(dir, CLIENT_DB_FILE))) throw notInitialisedError(dir);
    throw e;
  }
}

/** A time in ms since 1970 as `YYYY-MM-DD hh:mm:ssZ`; '?' for anything else. */
export function time(ms: unknown): string {
  return typeof ms === 'number' ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '?';
}

/** A contact name as one shell word, for a hint. */
export function argHint(name: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\w.@+-]+$/.test(name) ? name : `'${name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd').replace(/'/g, "'\\''")}'`;
}

/** " --dir DIR" for a hint when `dir` is not the default client's. */
export function dirHintOf(dir: string): string {
  if (dir === resolve(DEFAULT_CLIENT_DIR)) return '';
  const rel = relative(process.cwd(), dir);
  const shown = rel !== '' && !rel.startsWith('..') && rel.length < dir.length ? rel : dir;
  return ` --dir ${/^[\w./-]+$/.test(shown) ? shown : JSON.stringify(shown)}`;
}
