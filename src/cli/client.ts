/**
 * `backchannel client ...`: the client daemon (`run`) and the commands that talk to it over its
 * local socket (`status`, `send`, `recv`, `inbox`), plus `init` and `address`, which read or write
 * its state directly.
 */
import { createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Buffer } from 'node:buffer';
import { decodeAddress } from '../client/address.js';
import { clientSocketPath, ipcCall, ipcRequest } from '../client/ipc.js';
import type { IpcConnection, IpcMessage } from '../client/ipc.js';
import { DEFAULT_CLIENT_DIR, initClient, notInitialisedError, readClientAddress, runClient, saveAdmissionToken } from '../client/node-client.js';
import { CLIENT_DB_FILE } from '../client/sqlite-store.js';
import { nodeBackend } from '../crypto/node.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import { DEFAULT_DATA_DIR } from '../local/up.js';
import { jsonLogger } from '../ops/log.js';
import { MIN_ID_PREFIX_HEX } from '../client/api.js';
import { isSafeFileName, MAX_MESSAGE_LENGTH } from '../client/frames.js';
import { parseOptions, requireInt, requireString, stopSignal, usageError } from './args.js';
import { formatReceived, parseReceived, prepareSaveDir, receivedJson, saveReceivedFile } from './received.js';
import type { Received } from './received.js';
import { failureExplanation, SendReporter } from './send-progress.js';
import { runMailboxCommand } from './client-mailbox.js';
import { accept, invite, invites } from './invite.js';
import { introduceCommand, introductionCommand, introductionsCommand } from './introduce.js';
import { SEND_NAME_HELP, chatCommand, contactCommand, contactsCommand, historyCommand, recvFromContacts, sendToContact } from './messenger.js';

export { formatReceived } from './received.js';

/** The largest message `send` accepts: the engine's limit (frames.ts), 1 MiB. */
export const MAX_SEND_BODY = MAX_MESSAGE_LENGTH;
const CLIENT_LOG_FILE = 'client.log';
/** Messages `client inbox` shows without --all. */
const INBOX_DEFAULT_LAST = 20;

export const CLIENT_HELP = `Usage: backchannel client <command> [options]

The Backchannel client. 'client run' is a long-lived process: it keeps a link to your gateway,
sends your messages and cover traffic at a steady random rate whether or not you write, and
fetches your mailbox. The other commands talk to it over its socket DIR/client.sock.

Commands:
  init      make a new identity in DIR: a link key, a gateway, the authorities to trust
  run       run the client until Ctrl-C
  address   print your address, to give to the people who will write to you
  status    show whether the client is connected, its epoch and its traffic
  send      send a message to a contact by name, or a message or file to an address, or reply to a message
  recv      print the messages received (from contacts and anonymous) and not read yet, and mark them read
  inbox     print the anonymous messages received, read or not (recv's are kept)
  contacts  list your contacts
  contact   add (export/import a card), rename, remove, verify a contact
  history   print your conversation with a contact
  chat      talk with a contact interactively
  invite    print a short code to read to someone, and wait until they become your contact
  accept    accept a code someone read to you: CODE --name NAME
  invites   list open and recent invites (--cancel ID ends one)
  introduce introduce two of your contacts to each other: NAME1 NAME2
  introductions  list introductions made and offered to you
  introduction   accept or decline one offered to you: accept|decline ID [--name NAME]
  mailbox   extra mailboxes (one per contact): create, list, revoke, rotate
  token     keep an invitation token for a gateway that admits by token: --token HEX

Every command takes --dir DIR, the client's state directory (default ${DEFAULT_CLIENT_DIR}).

From the repository, run the commands as 'npx backchannel ...' ('npm link' once puts
'backchannel' itself on your PATH). Example, with 'npm start' running in another terminal (two
users on one machine):
  npx backchannel client init --dir alice       # reads ${DEFAULT_DATA_DIR}/network.json
  npx backchannel client init --dir bob
  npx backchannel client run --dir alice &      # or each in its own terminal
  npx backchannel client run --dir bob &
  npx backchannel client send --dir alice --to "$(npx backchannel client address --dir bob)" hello bob
  npx backchannel client recv --dir bob

Run 'npx backchannel client <command> --help' for a command's options.
`;

const INIT_HELP = `Usage: backchannel client init [--dir DIR] [--network DIR | URL#KEY,...] [--threshold N] [--gateway NAME]

Makes a new client identity in DIR: a fresh link key (its public key is your mailbox), the
gateway that keeps your mailbox and how to reach it, and the directory authorities to trust.
Prints your address. Refuses a DIR that already holds an identity. This is the only command that
may contact an authority: 'client run' gets the directory through your gateway.

Options:
  --dir DIR         the client's state directory (default ${DEFAULT_CLIENT_DIR}), created 0700
  --network DIR     a network's data directory holding network.json, as 'backchannel up' or
                    'backchannel genconfig' write it (default ${DEFAULT_DATA_DIR}); works offline
  --network URL#KEY,...
                    the authorities instead: each one's URL and Ed25519 identity key in hex,
                    separated by commas; the current directory is fetched from them to list the
                    gateways (the network must be running)
  --threshold N     signatures a directory needs (default: network.json's, or a majority)
  --gateway NAME    the gateway to use (default: one chosen at random)
  --help            print this help

Examples:
  npx backchannel client init
  npx backchannel client init --dir alice --network ./backchannel-data --gateway gateway-2
  npx backchannel client init --network http://10.0.0.1:30000#3b6a...,http://10.0.0.2:30000#9f1c...
`;

const RUN_HELP = `Usage: backchannel client run [--dir DIR]

Runs the client of DIR (default ${DEFAULT_CLIENT_DIR}) until Ctrl-C: follows the network's
directory, keeps a link to the gateway, sends queued messages and cover traffic at the network's
Poisson rates, fetches the mailbox, and serves the other commands on DIR/client.sock.

Prints the address and the socket's path at start, and a line on stderr each time the link to
the gateway comes up or goes down. Logs go to DIR/${CLIENT_LOG_FILE}. Only one client runs per DIR.

Options:
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help      print this help

Example:
  npx backchannel client run --dir alice
`;

const ADDRESS_HELP = `Usage: backchannel client address [--dir DIR]

Prints the address of the client in DIR (default ${DEFAULT_CLIENT_DIR}): give it to the people who
will write to you. It names your gateway and your mailbox there. Works whether or not the client runs.

Options:
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help      print this help
`;

const STATUS_HELP = `Usage: backchannel client status [--dir DIR] [--json]

Asks the running client of DIR (default ${DEFAULT_CLIENT_DIR}) for its state: the address, the
gateway and whether the link to it is up, the epoch, the messages still on their way, and the
packets sent and mailbox entries received since it started.

Options:
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --json      one JSON object instead of the table
  --help      print this help
`;

const SEND_HELP = `Usage: backchannel client send NAME TEXT... | NAME --file PATH [--no-wait] [--dir DIR]
       backchannel client send --to ADDRESS | --reply-to ID [--file PATH] [--reply-surbs N] [--no-wait] [--dir DIR] [TEXT...]

To a contact (see 'backchannel client contacts'), inside your encrypted session:
${SEND_NAME_HELP}
It waits until the contact's client confirms it has the message ("delivered to NAME"); with
--no-wait it returns once the client has it. A file to a contact keeps its name. While it waits
it says on stderr what happens: "queued" when your session with NAME is not up yet (their client
has not answered), then for a file its progress (fragments sent and stored at NAME's gateway,
percentage, bytes, time since the start; redrawn in place on a terminal, a line per tenth
otherwise), "stored at NAME's gateway", and retries. Ctrl-C stops the waiting (exit status 130),
not the sending: the message stays queued in the client, and 'client history NAME' shows its state.

To an address or as a reply (anonymous, no session, no contact needed):

Hands a message to the running client of DIR (default ${DEFAULT_CLIENT_DIR}), which sends it in
fragments at its steady rate. The message is the TEXT words joined by spaces; without TEXT, the
file --file (sent with its name); without either, everything read from stdin.

Size limit: 1 MiB (${MAX_SEND_BODY} bytes), text or file. At the default network rates that is
about 545 fragments and half a minute of your client's send slots, during which your other
messages wait; and it is about 545 of the 10,000 entries a gateway keeps per mailbox for a
recipient who is offline. Larger files would crowd out everything else, so they are refused.

What send prints, on stderr as it happens (the message's states):
  sent                   every fragment left this client, into the network
  retry N                no acknowledgement came in time; a fragment goes again (up to 12 attempts)
  sending: ...           for a message of several fragments: how many left, how many are stored
and at the end, on stdout:
  stored at the recipient's gateway: ID
                         every fragment was acknowledged by the recipient's gateway, which keeps
                         the message until the recipient's client fetches it (it says nothing of
                         whether the recipient has read it)
  sent: ID               a reply (through SURBs, never acknowledged) that has left
or on stderr "failed ID: REASON", with the likely cause, and exit status 1. The client has the
message before send waits: Ctrl-C stops the waiting, not the sending.

Options:
  --to ADDRESS      the recipient's address (see 'npx backchannel client address')
  --reply-to ID     answer the received message ID anonymously, through the reply blocks (SURBs)
                    it came with; you never learn the sender's address. ID is the id that recv
                    and inbox print, or any part of its start of at least ${MIN_ID_PREFIX_HEX} hex digits that
                    no other message shares. A message that came without SURBs cannot be
                    answered this way: ask its sender to attach some, or write to their address
  --file PATH       send this file, with its name (the recipient saves it with recv --save DIR)
  --reply-surbs N   attach N reply blocks so that the recipient can answer without learning your
                    address: each lets them send one fragment back (default 0)
  --no-wait         print "queued ID" and return as soon as the client has the message
  --dir DIR         the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help            print this help

Put -- before TEXT that starts with "-".

Examples:
  npx backchannel client send --to bc1Qm... hello, are you there
  npx backchannel client send --to bc1Qm... --reply-surbs 4 --file note.txt
  echo thanks | npx backchannel client send --reply-to 5f0c3a9e
`;

const RECEIVED_FORMAT = `Each message has a header line:

  --- ID · N bytes · sent TIME · fetched TIME[ · file NAME][ · in reply to ID][ · reply with --reply-to ID (K SURBs)]

then its text (a message that is not UTF-8 text is shown as "(binary, N bytes; use --json)"; a
file as where it was saved, or how to save it). ID is the first 16 hex digits of the message's
id. "sent" is the sender's clock when their client took the message (whole seconds; "an unknown
time" from older clients), "fetched" ours when our client got its last fragment; times are UTC.`;

const RECV_HELP = `Usage: backchannel client recv [--dir DIR] [--follow] [--json] [--save DIR]

Prints the messages the running client of DIR (default ${DEFAULT_CLIENT_DIR}) has received and you
have not read yet, oldest first, and marks each read once printed. Messages from your contacts
come first, each with the contact's name, the time it was sent (as the sender's clock stated it)
and the time your client received it:

  --- from NAME · sent TIME · received TIME

(they stay in 'client history NAME'). Then anonymous messages to your address (they stay in
the client: 'client inbox' shows them again), each with a header line:

${RECEIVED_FORMAT}

Introductions offered to you show once as an event line (who introduces whom, and the exact
commands to accept or decline), and so does their outcome (the new contact, and how to chat and
verify). With --follow, a large message coming in from a contact (a file or a long text, 8
fragments or more) is shown on stderr as it comes: "receiving from NAME: 40 % ...".

Options:
  --follow    keep printing new messages as they arrive, until Ctrl-C
  --save DIR  write each file received into DIR (made 0700 if missing) under the name its sender
              gave, mode 0600. A name that would leave DIR is refused, and so is a name that
              exists there: nothing is replaced, the message stays unread, and recv exits with 1
  --json      one JSON object per message: {"id", "seq", "sent_at", "received_at", "file_name",
              "body_base64", "reply_surbs", "in_reply_to", "mailbox"} (times in ms since 1970,
              sent_at null when not said; mailbox: the id of the extra mailbox it came to, or null);
              a contact's message: {"from", "id", "kind", "sent_at", "received_at", "text",
              "file_name", "file_length"}; an introduction: {"notice": "offer"|"outcome",
              "introduction": {...as 'client introductions --json'}}
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help      print this help
`;

const INBOX_HELP = `Usage: backchannel client inbox [--dir DIR] [--all | --last N] [--json] [--save DIR]

Prints the messages the running client of DIR (default ${DEFAULT_CLIENT_DIR}) has received, read
or not, oldest first: the last ${INBOX_DEFAULT_LAST} by default. Marks nothing read ('client recv' does).

${RECEIVED_FORMAT}
The header also says "new" (not read with recv yet) or "read".

Options:
  --all       every message received
  --last N    the last N messages (default ${INBOX_DEFAULT_LAST})
  --save DIR  write each file among them into DIR, as recv --save does (an existing name is
              refused, so a file saved before is not written twice)
  --json      one JSON object per message, as recv --json, with "read": true or false
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help      print this help
`;

type Values = Record<string, string | boolean | undefined>;

function dirOption(v: Values): string {
  return resolve(typeof v['dir'] === 'string' && v['dir'] !== '' ? v['dir'] : DEFAULT_CLIENT_DIR);
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function err(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Writes to stdout and resolves once the data is handed to the system. */
function writeStdout(text: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    process.stdout.write(text, (e) => (e ? reject(new BackchannelError('ERR_CLIENT_IPC', `cannot write to stdout (${(e as NodeJS.ErrnoException).code ?? 'error'})`)) : resolvePromise()));
  });
}

function protocolError(what: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_IPC', `client ipc: unexpected answer from the client (${what})`);
}

/** A daemon that does not answer, for a directory that holds no client at all, is "not initialised". */
async function daemonCall<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isBackchannelError(e, 'ERR_CLIENT_NOT_RUNNING') && !existsSync(join(dir, CLIENT_DB_FILE))) throw notInitialisedError(dir);
    throw e;
  }
}

// ---- init, address, run ----

async function init(argv: string[]): Promise<number> {
  const v = parseOptions(argv, { dir: { type: 'string' }, network: { type: 'string' }, threshold: { type: 'string' }, gateway: { type: 'string' } });
  if (v['help'] === true) return help(INIT_HELP);
  const dir = dirOption(v);
  const network = typeof v['network'] === 'string' && v['network'] !== '' ? v['network'] : DEFAULT_DATA_DIR;
  const threshold = v['threshold'] === undefined ? undefined : requireInt(v, 'threshold', 1, 64);
  const gatewayName = typeof v['gateway'] === 'string' ? v['gateway'] : undefined;
  const r = await initClient({ dir, network, ...(threshold === undefined ? {} : { threshold }), ...(gatewayName === undefined ? {} : { gatewayName }) });
  out(
    [
      `Initialised a client in ${r.dir}, with gateway ${r.gatewayName}.`,
      '',
      `Your address (give it to the people who will write to you):`,
      `  ${r.address}`,
      '',
      `Start the client with: npx backchannel client run --dir ${r.dir}`,
    ].join('\n'),
  );
  return 0;
}

function address(argv: string[]): number {
  const v = parseOptions(argv, { dir: { type: 'string' } });
  if (v['help'] === true) return help(ADDRESS_HELP);
  out(readClientAddress(dirOption(v)));
  return 0;
}

async function run(argv: string[]): Promise<number> {
  const v = parseOptions(argv, { dir: { type: 'string' } });
  if (v['help'] === true) return help(RUN_HELP);
  const dir = dirOption(v);
  clientSocketPath(dir); // a path too long fails before anything starts
  if (!existsSync(join(dir, CLIENT_DB_FILE))) throw notInitialisedError(dir);
  const logFile = join(dir, CLIENT_LOG_FILE);
  const logStream = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  logStream.on('error', () => undefined);
  const closeLog = (): Promise<void> => new Promise((r) => logStream.end(r));
  const log = jsonLogger({ write: (line) => logStream.write(line) });
  const stopping = stopSignal();
  let running;
  try {
    running = await runClient({
      dir,
      log,
      onEvent: (e) => {
        if (e.type === 'connected') err(`${new Date().toISOString()} connected to the gateway`);
        else if (e.type === 'disconnected') err(`${new Date().toISOString()} disconnected from the gateway; reconnecting`);
      },
    });
  } catch (e) {
    await closeLog();
    throw e;
  }
  out(
    [
      `The Backchannel client is running for ${dir}.`,
      `address: ${running.address}`,
      `socket:  ${running.socketPath}`,
      `log:     ${logFile}`,
      'Press Ctrl-C to stop.',
    ].join('\n'),
  );
  await stopping;
  err('stopping...');
  try {
    await running.stop();
  } finally {
    await closeLog();
  }
  err('stopped');
  return 0;
}

// ---- status ----

function num(status: IpcMessage, path: string[]): string {
  let x: unknown = status;
  for (const p of path) x = typeof x === 'object' && x !== null ? (x as Record<string, unknown>)[p] : undefined;
  return typeof x === 'number' ? String(x) : '?';
}

export function statusTable(s: IpcMessage): string {
  const gateway = typeof s['gateway'] === 'string' ? s['gateway'] : '(no directory yet)';
  const state = typeof s['document'] === 'string' && s['document'] !== 'none' ? ` (document ${s['document']})` : '';
  const epoch = typeof s['epoch'] === 'number' ? `${s['epoch']}${state}` : 'none yet';
  const rows: Array<[string, string]> = [
    ['address', typeof s['address'] === 'string' ? s['address'] : '?'],
    ['gateway', `${gateway}, ${s['connected'] === true ? 'connected' : 'not connected'}`],
    ['epoch', epoch],
    ...(typeof s['directory'] === 'object' && s['directory'] !== null
      ? [
          [
            'directory',
            `${num(s, ['directory', 'documents'])} documents from the gateway, ${num(s, ['directory', 'unavailable'])} not available, ` +
              `${num(s, ['directory', 'invalid'])} invalid, ${num(s, ['directory', 'timeouts'])} unanswered`,
          ] as [string, string],
        ]
      : []),
    ['pending', `${num(s, ['pendingMessages'])} messages on their way (not yet stored at the recipient's gateway, or replies not yet sent)`],
    ['sent', `${num(s, ['packetsSent', 'real'])} real, ${num(s, ['packetsSent', 'drop'])} drop, ${num(s, ['packetsSent', 'loop'])} loop packets`],
    [
      'received',
      `${num(s, ['entriesReceived', 'fragment'])} fragments, ${num(s, ['entriesReceived', 'ack'])} acks, ${num(s, ['entriesReceived', 'loop'])} loops, ` +
        `${num(s, ['entriesReceived', 'reply'])} replies, ${num(s, ['entriesReceived', 'invalid'])} invalid`,
    ],
  ];
  return rows.map(([k, val]) => `${k.padEnd(10)}${val}`).join('\n');
}

const TOKEN_HELP = `Usage: backchannel client token [--dir DIR] --token TOKEN

Keeps an invitation token (64 hex digits) that the operator of a gateway admitting by token gave
you. The client shows it the next time it links to its gateway; \`client status\` says whether the
gateway admitted it. A gateway admitting by proof of work needs no token: the client computes the
work itself, once.
`;

function token(argv: string[]): number {
  const v = parseOptions(argv, { dir: { type: 'string' }, token: { type: 'string' } });
  if (v['help'] === true) return help(TOKEN_HELP);
  saveAdmissionToken(dirOption(v), requireString(v, 'token').trim());
  out('Token kept; the client shows it to its gateway the next time it links.');
  return 0;
}

async function status(argv: string[]): Promise<number> {
  const v = parseOptions(argv, { dir: { type: 'string' }, json: { type: 'boolean' } });
  if (v['help'] === true) return help(STATUS_HELP);
  const dir = dirOption(v);
  const answer = await daemonCall(dir, () => ipcCall(clientSocketPath(dir), { op: 'status' }, { dir }));
  const st = answer['status'];
  if (answer['ok'] !== true || typeof st !== 'object' || st === null) throw protocolError('status');
  out(v['json'] === true ? JSON.stringify(st) : statusTable(st as IpcMessage));
  return 0;
}

// ---- send ----

async function readStdin(limit: number): Promise<Uint8Array> {
  if (process.stdin.isTTY === true) err('Type your message, then press Ctrl-D on a line of its own to send it (Ctrl-C cancels).');
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    total += b.length;
    if (total > limit) throw usageError(`the message is longer than ${limit} bytes (1 MiB)`);
    chunks.push(b);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function readBodyFile(path: string, limit: number): Uint8Array {
  try {
    const st = statSync(path);
    if (!st.isFile()) throw usageError(`--file: ${path} is not a file`);
    if (st.size > limit) throw usageError(`--file: ${path} is longer than ${limit} bytes (1 MiB)`);
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    if (e instanceof BackchannelError) throw e;
    const code = (e as { code?: unknown }).code;
    throw usageError(`--file: cannot read ${path} (${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : typeof code === 'string' ? code : 'read failed'})`);
  }
}

async function send(argv: string[]): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: argv,
      options: {
        to: { type: 'string' },
        'reply-to': { type: 'string' },
        file: { type: 'string' },
        'reply-surbs': { type: 'string' },
        'no-wait': { type: 'boolean' },
        dir: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (e) {
    throw usageError(e instanceof Error ? e.message.split('\n')[0]! : String(e));
  }
  if (values['help'] === true) return help(SEND_HELP);
  const dir = dirOption(values);
  const to = typeof values['to'] === 'string' ? values['to'].trim() : undefined;
  const replyTo = typeof values['reply-to'] === 'string' ? values['reply-to'].trim() : undefined;
  if (to === undefined && replyTo === undefined && positionals.length > 0) {
    if (values['reply-surbs'] !== undefined) throw usageError('--reply-surbs is for --to ADDRESS; a contact answers through your session');
    return sendToContact(dir, positionals, typeof values['file'] === 'string' ? values['file'] : undefined, values['no-wait'] !== true);
  }
  if (to === undefined && replyTo === undefined) throw usageError('send needs a contact\'s NAME, --to ADDRESS (a new message) or --reply-to ID (a reply); see npx backchannel client send --help');
  if (to !== undefined && replyTo !== undefined) throw usageError('give either --to or --reply-to, not both');
  if (to !== undefined) decodeAddress(nodeBackend, to); // a typo fails here, before the body is read
  if (replyTo !== undefined && !/^[0-9a-fA-F]{8,32}$/.test(replyTo)) {
    throw usageError(`--reply-to must be the id of a received message as recv prints it, or its first ${MIN_ID_PREFIX_HEX} or more hex digits`);
  }
  const replySurbs = values['reply-surbs'] === undefined ? undefined : requireInt(values, 'reply-surbs', 0, 10_000);
  const file = typeof values['file'] === 'string' ? values['file'] : undefined;
  if (file !== undefined && positionals.length > 0) throw usageError('give the message as TEXT or as --file, not both');
  const fileName = file === undefined ? undefined : basename(file);
  if (fileName !== undefined && !isSafeFileName(fileName)) throw usageError('--file: the file name cannot be sent (control characters, or too long); rename the file');
  const socketPath = clientSocketPath(dir);

  let body: Uint8Array;
  if (positionals.length > 0) {
    body = new TextEncoder().encode(positionals.join(' '));
    if (body.length > MAX_SEND_BODY) throw usageError(`the message is longer than ${MAX_SEND_BODY} bytes (1 MiB, the limit: see --help)`);
  } else if (file !== undefined) {
    body = readBodyFile(file, MAX_SEND_BODY);
  } else {
    // Do not have the user type a message for a client that is not there.
    await daemonCall(dir, () => ipcCall(socketPath, { op: 'status' }, { dir }));
    body = await readStdin(MAX_SEND_BODY);
  }
  if (body.length === 0) throw usageError('the message is empty');

  const wait = values['no-wait'] !== true;
  const request: IpcMessage = {
    op: 'send',
    ...(to === undefined ? {} : { to }),
    ...(replyTo === undefined ? {} : { in_reply_to: replyTo.toLowerCase() }),
    body_base64: Buffer.from(body).toString('base64'),
    ...(replySurbs === undefined ? {} : { reply_surbs: replySurbs }),
    ...(fileName === undefined ? {} : { file_name: fileName }),
    wait,
  };
  let id: string | undefined;
  let terminal: IpcMessage | undefined;
  let reporter: SendReporter | null = null;
  const onLine = (m: IpcMessage, connection: IpcConnection): void => {
    if (id === undefined) {
      if (m['ok'] !== true || typeof m['id'] !== 'string' || typeof m['fragments'] !== 'number') throw protocolError('send');
      id = m['id'];
      if (!wait) connection.end();
      else reporter = new SendReporter({ fragments: m['fragments'], reply: replyTo !== undefined, stream: process.stderr, length: body.length });
      return;
    }
    if (m['event'] === 'attempt') {
      if (typeof m['index'] === 'number' && typeof m['attempt'] === 'number') reporter?.attempt(m['index'], m['attempt']);
      return;
    }
    if (m['event'] === 'progress') {
      if (typeof m['done'] === 'number') reporter?.progress(m['done']);
      return;
    }
    if (m['event'] === 'delivered' || m['event'] === 'sent' || m['event'] === 'failed') {
      terminal = m;
      connection.end();
    }
  };
  try {
    await daemonCall(dir, () => ipcRequest(socketPath, request, onLine, { dir }));
  } catch (e) {
    // A reply longer than the SURBs left allow (one SURB per fragment): say what can be done.
    if (isBackchannelError(e, 'ERR_CLIENT_NO_SURBS') && !e.message.includes('--to')) {
      throw new BackchannelError('ERR_CLIENT_NO_SURBS', `${e.message}: send a shorter reply, or write to the sender's address with --to`);
    }
    throw e;
  } finally {
    (reporter as SendReporter | null)?.finish();
  }
  if (id === undefined) throw protocolError('no answer to send');
  if (!wait) {
    out(`queued ${id}`);
    return 0;
  }
  if (terminal === undefined) {
    throw new BackchannelError('ERR_CLIENT_IPC', `the client stopped before message ${id} was done; it stays queued and is sent when the client runs again`);
  }
  if (terminal['event'] === 'failed') {
    err(`failed ${id}: ${failureExplanation(typeof terminal['reason'] === 'string' ? terminal['reason'] : 'unknown reason')}`);
    return 1;
  }
  out(terminal['event'] === 'delivered' ? `stored at the recipient's gateway: ${id}` : `sent: ${id}`);
  return 0;
}

// ---- recv, inbox ----

/** Writes received messages to stdout (and files to --save), one at a time; counts the files not saved. */
class ReceivedWriter {
  readonly #json: boolean;
  readonly #terminal = process.stdout.isTTY === true;
  readonly #saveDir: string | null;
  notSaved = 0;
  count = 0;

  constructor(v: Values) {
    this.#json = v['json'] === true;
    this.#saveDir = typeof v['save'] === 'string' && v['save'] !== '' ? prepareSaveDir(v['save']) : null;
  }

  /** Shows one message; false when it is a file that --save could not write (it then stays unread). */
  async write(r: Received): Promise<boolean> {
    let saved: string | undefined;
    if (this.#saveDir !== null && r.fileName !== null) {
      try {
        saved = saveReceivedFile(this.#saveDir, r.fileName, r.body);
      } catch (e) {
        if (!isBackchannelError(e, 'ERR_CLIENT_SAVE')) throw e;
        this.notSaved++;
        err(`${r.id.slice(0, 16)}: ${e.message}`);
        return false;
      }
    }
    const line = this.#json ? `${JSON.stringify({ ...receivedJson(r), ...(saved === undefined ? {} : { saved_as: saved }) })}\n` : formatReceived(r, this.#terminal, saved);
    await writeStdout(line);
    this.count++;
    return true;
  }
}

async function recv(argv: string[]): Promise<number> {
  const v = parseOptions(argv, { dir: { type: 'string' }, follow: { type: 'boolean' }, json: { type: 'boolean' }, save: { type: 'string' } });
  if (v['help'] === true) return help(RECV_HELP);
  const dir = dirOption(v);
  const follow = v['follow'] === true;
  const writer = new ReceivedWriter(v);
  const socketPath = clientSocketPath(dir);
  const abort = new AbortController();
  let interrupted = false;
  if (follow) {
    void stopSignal().then(() => {
      interrupted = true;
      abort.abort();
    });
  }
  // A closed stdout (recv | head) fails the write, and the message stays unread.
  const onStdoutError = (): void => abort.abort();
  process.stdout.on('error', onStdoutError);
  let ended = false;
  // Contacts' messages first (without follow, all of them; with follow, alongside the rest).
  const fromContacts = daemonCall(dir, () => recvFromContacts(dir, { follow, json: v['json'] === true, signal: abort.signal }));
  if (!follow) writer.count += await fromContacts;
  else fromContacts.catch(() => abort.abort());
  const onLine = async (m: IpcMessage, connection: IpcConnection): Promise<void> => {
    if (m['event'] === 'end') {
      ended = true;
      connection.end();
      return;
    }
    if (m['event'] !== 'message') throw protocolError('recv');
    const r = parseReceived(m);
    // Only once it is written (and a file saved): a crash before this line leaves the message unread.
    if (await writer.write(r)) connection.send({ op: 'consume', seq: r.seq });
  };
  try {
    await daemonCall(dir, () => ipcRequest(socketPath, { op: 'recv', ...(follow ? { follow: true } : {}) }, onLine, { dir, signal: abort.signal }));
  } finally {
    process.stdout.off('error', onStdoutError);
  }
  if (follow) await fromContacts.catch(() => 0);
  if (follow) {
    if (interrupted) return writer.notSaved > 0 ? 1 : 0;
    throw new BackchannelError('ERR_CLIENT_NOT_RUNNING', `the client for ${dir} stopped`);
  }
  if (!ended) throw new BackchannelError('ERR_CLIENT_IPC', `the client for ${dir} closed the connection before the end of the inbox`);
  if (writer.count === 0 && writer.notSaved === 0 && process.stderr.isTTY === true) err('no new messages');
  return writer.notSaved > 0 ? 1 : 0;
}

async function inbox(argv: string[]): Promise<number> {
  const v = parseOptions(argv, { dir: { type: 'string' }, all: { type: 'boolean' }, last: { type: 'string' }, json: { type: 'boolean' }, save: { type: 'string' } });
  if (v['help'] === true) return help(INBOX_HELP);
  if (v['all'] === true && v['last'] !== undefined) throw usageError('give --all or --last N, not both');
  const last = v['all'] === true ? undefined : v['last'] === undefined ? INBOX_DEFAULT_LAST : requireInt(v, 'last', 1, 10_000);
  const dir = dirOption(v);
  const writer = new ReceivedWriter(v);
  const socketPath = clientSocketPath(dir);
  const abort = new AbortController();
  const onStdoutError = (): void => abort.abort();
  process.stdout.on('error', onStdoutError);
  let ended = false;
  try {
    await daemonCall(dir, () =>
      ipcRequest(
        socketPath,
        { op: 'inbox', ...(last === undefined ? {} : { last }) },
        async (m, connection) => {
          if (m['event'] === 'end') {
            ended = true;
            connection.end();
            return;
          }
          if (m['event'] !== 'message') throw protocolError('inbox');
          await writer.write(parseReceived(m));
        },
        { dir, signal: abort.signal },
      ),
    );
  } finally {
    process.stdout.off('error', onStdoutError);
  }
  if (!ended) throw new BackchannelError('ERR_CLIENT_IPC', `the client for ${dir} closed the connection before the end of the inbox`);
  if (writer.count === 0 && writer.notSaved === 0 && process.stderr.isTTY === true) err('no messages received yet');
  return writer.notSaved > 0 ? 1 : 0;
}

// ---- dispatch ----

/** The --dir of a mailbox command line (its other arguments are checked by the command). */
function parseMailboxDir(argv: string[]): Values {
  const i = argv.indexOf('--dir');
  return { dir: i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--dir='))?.slice(6) };
}

function help(text: string): number {
  out(text);
  return 0;
}

/** Runs `backchannel client <argv>`; returns the exit code. Errors are thrown for main to print. */
export async function runClientCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return help(CLIENT_HELP);
    case 'init':
      return init(rest);
    case 'run':
      return run(rest);
    case 'address':
      return address(rest);
    case 'token':
      return token(rest);
    case 'status':
      return status(rest);
    case 'send':
      return send(rest);
    case 'recv':
      return recv(rest);
    case 'inbox':
      return inbox(rest);
    case 'mailbox':
      return daemonCall(dirOption(parseMailboxDir(rest)), () => runMailboxCommand(rest, dirOption));
    case 'invite':
      return invite(rest);
    case 'accept':
      return accept(rest);
    case 'invites':
      return invites(rest);
    case 'contacts':
      return contactsCommand(rest);
    case 'contact':
      return contactCommand(rest);
    case 'history':
      return historyCommand(rest);
    case 'chat':
      return chatCommand(rest);
    case 'introduce':
      return introduceCommand(rest);
    case 'introductions':
      return introductionsCommand(rest);
    case 'introduction':
      return introductionCommand(rest);
    default:
      throw usageError(`unknown client command "${sub.slice(0, 32)}"; the commands are init, run, address, status, send, recv, inbox, contacts, contact, history, chat, invite, accept, invites, introduce, introductions, introduction, mailbox (see npx backchannel client --help)`);
  }
}
