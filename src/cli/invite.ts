/**
 * `backchannel client invite | accept | invites`: contacts by code, through the daemon's socket
 * (src/client/invite-ipc.ts). Neither side needs the other's address or gateway: the code names a
 * rendezvous channel and is the PAKE's password (docs/messaging.md, "Contacts by code").
 */
import { parseArgs } from 'node:util';
import { clientSocketPath, ipcCall, ipcRequest } from '../client/ipc.js';
import type { IpcConnection, IpcMessage } from '../client/ipc.js';
import { DEFAULT_CLIENT_DIR } from '../client/node-client.js';
import { BackchannelError } from '../errors.js';
import { parseCode } from '../messaging/code.js';
import { parseOptions, requireInt, stopSignal, usageError } from './args.js';
import { argHint, dirHintOf, dirOf } from './client-command.js';
import type { Values } from './client-command.js';

export const INVITE_HELP = `Usage: backchannel client invite [--name NAME] [--expires MIN] [--dir DIR]

Opens an invite and prints its code, for example 412-purple-sausage-anchor-lemon. Read it to the
person you invite (in person, or on a call); they run 'backchannel client accept CODE --name NAME'.
Neither of you needs the other's address. This command then waits, showing progress, until the
contact is made, the code fails, or the invite expires.

The code works once. A wrong code fails on both sides ("the code did not match: ask for a new
one") and burns the invite: whoever tries the code next is refused, so an attacker gets one guess.

Ctrl-C stops waiting but leaves the invite open in the client (it goes on in the background);
'backchannel client invites' lists invites, and 'backchannel client invites --cancel ID' ends one.

Options:
  --name NAME     the name the new contact gets here (default: contact-XXXXXX)
  --expires MIN   minutes the code stays valid, 1 to 1440 (default 60)
  --dir DIR       the client's state directory (default ${DEFAULT_CLIENT_DIR})
`;

export const ACCEPT_HELP = `Usage: backchannel client accept CODE --name NAME [--expires MIN] [--dir DIR]

Accepts the code someone read to you (a number and four words; case, spaces and dashes do not
matter) and makes them your contact NAME. Waits, showing progress, until the contact is made or
the code fails: a wrong code says "the code did not match: ask for a new one", and the code is
then burned on both sides. Ctrl-C stops waiting; the client goes on in the background.

Options:
  --name NAME     the name you give this contact (required)
  --expires MIN   minutes to keep trying, 1 to 1440 (default 60)
  --dir DIR       the client's state directory (default ${DEFAULT_CLIENT_DIR})
`;

export const INVITES_HELP = `Usage: backchannel client invites [--cancel ID] [--json] [--dir DIR]

Lists the client's open and recent invites (yours and the codes you accepted), or with --cancel
ends an open invite (its code is burned).
`;

const STAGES: Record<string, string> = {
  claiming: 'claiming a rendezvous channel',
  open: 'waiting for the other side to enter the code',
  finding: 'looking for the invite',
  replying: 'sending our half of the exchange',
  confirming: 'waiting for the other side to confirm',
  finishing: 'code confirmed; sending our contact card',
  aborting: 'the code did not match; closing the invite',
};

function protocolError(): BackchannelError {
  return new BackchannelError('ERR_CLIENT_IPC', 'client ipc: unexpected answer from the client (invite)');
}

/** Follows an invite or accept request to its end; returns the exit code. */
async function follow(dir: string, request: IpcMessage, role: 'invite' | 'accept'): Promise<number> {
  const abort = new AbortController();
  let interrupted = false;
  void stopSignal().then(() => {
    interrupted = true;
    abort.abort();
  });
  const terminal = process.stderr.isTTY === true;
  let id: string | null = null;
  let end: IpcMessage | null = null;
  const progress = (text: string): void => {
    process.stderr.write(terminal ? `\r\x1b[K${text}` : `${text}\n`);
  };
  const onLine = (m: IpcMessage, connection: IpcConnection): void => {
    if (id === null) {
      if (m['ok'] !== true || typeof m['id'] !== 'string') throw protocolError();
      id = m['id'];
      if (role === 'accept') progress(STAGES['finding']!);
      return;
    }
    switch (m['event']) {
      case 'code': {
        const expires = typeof m['expires_at'] === 'number' ? new Date(m['expires_at']).toISOString().slice(11, 16) : '?';
        if (terminal) process.stderr.write('\r\x1b[K');
        process.stdout.write(`${String(m['code'])}\n`);
        process.stderr.write(`Read this code to the person you invite; it works once, until ${expires} UTC.\n`);
        progress(STAGES['open']!);
        return;
      }
      case 'progress':
        progress(STAGES[String(m['stage'])] ?? String(m['stage']));
        return;
      case 'done':
      case 'failed':
        end = m;
        connection.end();
        return;
      default:
        throw protocolError();
    }
  };
  await ipcRequest(clientSocketPath(dir), request, onLine, { dir, signal: abort.signal });
  if (terminal) process.stderr.write('\r\x1b[K');
  if (end === null) {
    if (interrupted) {
      process.stderr.write(role === 'invite' ? `Stopped waiting; the invite stays open in the client ("npx backchannel client invites${dirHintOf(dir)}" lists it).\n` : 'Stopped waiting; the client goes on with the code in the background.\n');
      return 130;
    }
    throw new BackchannelError('ERR_CLIENT_NOT_RUNNING', `the client for ${dir} stopped before the invite ended; it goes on when the client runs again`);
  }
  const last: IpcMessage = end;
  if (last['event'] === 'done') {
    process.stdout.write(`contact "${String(last['name'])}" added\n`);
    const name = argHint(String(last['name']));
    process.stderr.write(`Talk with: npx backchannel client chat ${name}${dirHintOf(dir)}   Compare safety numbers (in person or on a call): npx backchannel client contact verify ${name}${dirHintOf(dir)}\n`);
    return 0;
  }
  process.stderr.write(`failed: ${String(last['error'] ?? 'the invite failed')}\n`);
  return 1;
}

export async function invite(argv: string[]): Promise<number> {
  const v = parseOptions(argv, { dir: { type: 'string' }, name: { type: 'string' }, expires: { type: 'string' } });
  if (v['help'] === true) {
    process.stdout.write(INVITE_HELP);
    return 0;
  }
  const request: IpcMessage = { op: 'invite' };
  if (typeof v['name'] === 'string') request['name'] = v['name'];
  if (v['expires'] !== undefined) request['expires_min'] = requireInt(v, 'expires', 1, 1440);
  return follow(dirOf(v), request, 'invite');
}

export async function accept(argv: string[]): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: argv,
      options: { dir: { type: 'string' }, name: { type: 'string' }, expires: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (e) {
    throw usageError(e instanceof Error ? e.message.split('\n')[0]! : String(e));
  }
  if (values['help'] === true) {
    process.stdout.write(ACCEPT_HELP);
    return 0;
  }
  if (positionals.length === 0) throw usageError('accept needs the CODE you were given; see backchannel client accept --help');
  const code = parseCode(positionals.join(' ')).text; // a malformed code fails here, before the client is asked
  if (typeof values['name'] !== 'string' || values['name'].trim() === '') throw usageError('accept needs --name NAME: the name you give this contact');
  const request: IpcMessage = { op: 'accept', code, name: values['name'] };
  if (values['expires'] !== undefined) request['expires_min'] = requireInt(values, 'expires', 1, 1440);
  return follow(dirOf(values), request, 'accept');
}

export async function invites(argv: string[]): Promise<number> {
  const v = parseOptions(argv, { dir: { type: 'string' }, cancel: { type: 'string' }, json: { type: 'boolean' } });
  if (v['help'] === true) {
    process.stdout.write(INVITES_HELP);
    return 0;
  }
  const dir = dirOf(v);
  if (typeof v['cancel'] === 'string') {
    await ipcCall(clientSocketPath(dir), { op: 'invite_cancel', id: v['cancel'] }, { dir });
    process.stdout.write('cancelled\n');
    return 0;
  }
  const answer = await ipcCall(clientSocketPath(dir), { op: 'invites' }, { dir });
  const list = answer['invites'];
  if (!Array.isArray(list)) throw protocolError();
  if (v['json'] === true) {
    process.stdout.write(`${JSON.stringify(list)}\n`);
    return 0;
  }
  if (list.length === 0) process.stdout.write('no invites\n');
  for (const i of list as IpcMessage[]) {
    const failure = i['failure'] as { message?: string } | null;
    const what = i['stage'] === 'failed' ? `failed: ${failure?.message ?? ''}` : i['stage'] === 'done' ? 'done' : String(i['stage']);
    const code = typeof i['code'] === 'string' ? ` ${i['code']}` : '';
    process.stdout.write(`${String(i['id'])}  ${i['role'] === 'inviter' ? 'invite' : 'accept'}  ${String(i['name'])}${code}  ${what}\n`);
  }
  return 0;
}
