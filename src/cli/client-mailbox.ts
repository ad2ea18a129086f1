/**
 * `backchannel client mailbox ...`: the extra mailboxes of a running client (one per contact),
 * through the daemon's socket: create (and wait for the gateway to confirm), list, revoke,
 * rotate. The messenger makes and rotates them for its contacts; these commands show them and
 * let a user revoke one by hand.
 */
import { parseArgs } from 'node:util';
import { decodeAddress } from '../client/address.js';
import { clientSocketPath, ipcCall, ipcRequest } from '../client/ipc.js';
import type { IpcMessage } from '../client/ipc.js';
import { DEFAULT_CLIENT_DIR } from '../client/node-client.js';
import { nodeBackend } from '../crypto/node.js';
import { BackchannelError } from '../errors.js';
import { toHex } from '../util/bytes.js';
import { usageError } from './args.js';

export const MAILBOX_HELP = `Usage: backchannel client mailbox <create|list|revoke|rotate> [options]

Extra mailboxes: addresses of your own at your gateway, one for each contact, so that an address
that leaks or is abused can be revoked without touching the others. The client of DIR must be
running ('client run'); it registers a new mailbox with your gateway in the background.

  create [--wait]            make a new mailbox and print its address; with --wait, wait until
                             the gateway confirms it (or say why it refused)
  list                       list your mailboxes: state, when made, address
  revoke ID|ADDRESS          revoke a mailbox now: mail to it is refused by the gateway, and
                             anything still on its way to it is dropped
  rotate ID|ADDRESS [--grace SECONDS]
                             make a new mailbox to replace one; the old one keeps working for
                             the grace period (default 7 days), then is revoked

ID is the mailbox id that 'list' shows (any unique prefix of 8 or more hex digits), or its address.

Options:
  --json      print JSON instead of text
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help      print this help
`;

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function protocolError(): BackchannelError {
  return new BackchannelError('ERR_CLIENT_IPC', 'client ipc: unexpected answer from the client (mailbox)');
}

interface Listed {
  readonly id: string;
  readonly address: string;
  readonly createdAt: number;
  readonly registered: boolean;
  readonly refused: string | null;
  readonly revoked: boolean;
  readonly revokeConfirmed: boolean;
  readonly revokeAt: number | null;
}

function listed(m: unknown): Listed {
  if (typeof m !== 'object' || m === null) throw protocolError();
  const x = m as Record<string, unknown>;
  if (typeof x['id'] !== 'string' || typeof x['address'] !== 'string' || typeof x['createdAt'] !== 'number') throw protocolError();
  return {
    id: x['id'],
    address: x['address'],
    createdAt: x['createdAt'],
    registered: x['registered'] === true,
    refused: typeof x['refused'] === 'string' ? x['refused'] : null,
    revoked: x['revoked'] === true,
    revokeConfirmed: x['revokeConfirmed'] === true,
    revokeAt: typeof x['revokeAt'] === 'number' ? x['revokeAt'] : null,
  };
}

/** A mailbox's state in a word or three. */
export function mailboxState(m: Listed): string {
  if (m.revoked) return m.revokeConfirmed ? 'revoked' : 'revoking';
  if (m.refused !== null) return `refused (${m.refused})`;
  if (!m.registered) return 'registering';
  if (m.revokeAt !== null) return `rotating out ${new Date(m.revokeAt).toISOString()}`;
  return 'in use';
}

const REFUSALS: Record<string, string> = {
  limit: 'you hold as many extra mailboxes as your gateway allows; revoke one first',
  taken: 'the gateway holds this id for someone else',
  revoked: 'this id was revoked before',
  invalid: 'this id cannot be a mailbox',
};

async function list(dir: string): Promise<Listed[]> {
  const answer = await ipcCall(clientSocketPath(dir), { op: 'mailbox', action: 'list' }, { dir });
  if (answer['ok'] !== true || !Array.isArray(answer['mailboxes'])) throw protocolError();
  return (answer['mailboxes'] as unknown[]).map(listed);
}

/** The id of the one mailbox that `ref` names: an address, a whole id or a unique prefix of 8+ hex digits. */
async function resolveId(dir: string, ref: string | undefined): Promise<string> {
  if (ref === undefined || ref === '') throw usageError('name the mailbox: its id (or a prefix of 8+ hex digits) or its address');
  const t = ref.trim();
  if (t.startsWith('bc1')) return toHex(decodeAddress(nodeBackend, t).mailbox);
  if (!/^[0-9a-fA-F]{8,64}$/.test(t)) throw usageError('a mailbox id is hex digits (8 to 64 of them), or give its address');
  const lower = t.toLowerCase();
  const hits = (await list(dir)).filter((m) => m.id.startsWith(lower));
  if (hits.length === 0) throw new BackchannelError('ERR_CLIENT_MAILBOX', 'no mailbox of yours has that id');
  if (hits.length > 1) throw new BackchannelError('ERR_CLIENT_MAILBOX', 'more than one mailbox starts with that id; give more of it');
  return hits[0]!.id;
}

/** Runs `backchannel client mailbox <argv>`; returns the exit code. */
export async function runMailboxCommand(argv: string[], dirOf: (v: Record<string, string | boolean | undefined>) => string): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { dir: { type: 'string' }, json: { type: 'boolean' }, wait: { type: 'boolean' }, grace: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw usageError(e instanceof Error ? e.message.split('\n')[0]! : String(e));
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const [action, ref, ...extra] = parsed.positionals;
  if (v['help'] === true || action === undefined || action === 'help') {
    out(MAILBOX_HELP);
    return 0;
  }
  if (extra.length > 0) throw usageError('too many arguments');
  const dir = dirOf(v);
  const json = v['json'] === true;
  const socket = clientSocketPath(dir);
  switch (action) {
    case 'create': {
      if (ref !== undefined) throw usageError('create takes no argument');
      let made: Listed | null = null;
      let outcome: IpcMessage | null = null;
      await ipcRequest(
        socket,
        { op: 'mailbox', action: 'create', ...(v['wait'] === true ? { wait: true } : {}) },
        (m, connection) => {
          if (made === null) {
            if (m['ok'] !== true) throw protocolError();
            made = listed(m['mailbox']);
            if (v['wait'] !== true) connection.end();
            return;
          }
          outcome = m;
          connection.end();
        },
        { dir },
      );
      const m = made as Listed | null;
      if (m === null) throw protocolError();
      const result = outcome as IpcMessage | null;
      const refused = result !== null && result['event'] === 'refused' ? String(result['reason']) : null;
      if (json) out(JSON.stringify({ id: m.id, address: m.address, ...(result === null ? {} : { registered: refused === null, refused }) }));
      else out(`${m.address}\nid ${m.id}${result === null ? '' : refused === null ? '\nregistered at the gateway' : ''}`);
      if (refused !== null) throw new BackchannelError('ERR_CLIENT_MAILBOX', `the gateway refused the new mailbox: ${REFUSALS[refused] ?? refused}`);
      if (v['wait'] === true && result === null) throw new BackchannelError('ERR_CLIENT_NOT_RUNNING', `the client for ${dir} stopped before the gateway answered; the mailbox is kept and registered when it runs again`);
      return 0;
    }
    case 'list': {
      if (ref !== undefined) throw usageError('list takes no argument');
      const all = await list(dir);
      if (json) out(JSON.stringify(all));
      else if (all.length === 0) out('no extra mailboxes (make one with: backchannel client mailbox create)');
      else for (const m of all) out(`${m.id.slice(0, 16)}  ${mailboxState(m).padEnd(12)}  ${new Date(m.createdAt).toISOString()}  ${m.address}`);
      return 0;
    }
    case 'revoke': {
      const id = await resolveId(dir, ref);
      await ipcCall(socket, { op: 'mailbox', action: 'revoke', id }, { dir });
      out(json ? JSON.stringify({ id, revoked: true }) : `revoked ${id.slice(0, 16)}: its key is erased, and the gateway is told to refuse its mail`);
      return 0;
    }
    case 'rotate': {
      const id = await resolveId(dir, ref);
      let grace: number | undefined;
      if (v['grace'] !== undefined) {
        const g = String(v['grace']);
        if (!/^\d+$/.test(g) || Number(g) > 10 * 365 * 86_400) throw usageError('--grace is a whole number of seconds');
        grace = Number(g) * 1000;
      }
      const answer = await ipcCall(socket, { op: 'mailbox', action: 'rotate', id, ...(grace === undefined ? {} : { grace_ms: grace }) }, { dir });
      if (answer['ok'] !== true) throw protocolError();
      const m = listed(answer['mailbox']);
      out(json ? JSON.stringify({ id: m.id, address: m.address, replaces: id }) : `${m.address}\nid ${m.id} (replaces ${id.slice(0, 16)}, which is revoked after the grace period)`);
      return 0;
    }
    default:
      throw usageError(`unknown mailbox command "${action.slice(0, 32)}"; the commands are create, list, revoke, rotate`);
  }
}
