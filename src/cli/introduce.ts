/**
 * `backchannel client introduce NAME1 NAME2`, `client introductions` and `client introduction
 * accept|decline ID [--name NAME]`: introductions by a mutual contact, talking to the running
 * client over its socket (src/client/messenger-ipc.ts).
 */
import type { IpcMessage } from '../client/ipc.js';
import { DEFAULT_CLIENT_DIR } from '../client/node-client.js';
import { INTRODUCTION_GRACE_MS, INTRODUCTION_RETENTION_MS, INTRODUCTION_TTL_MS } from '../messaging/messenger.js';
import { usageError } from './args.js';

const DAYS = (ms: number): number => ms / 86_400_000;
import { argHint, call, dirOf, help, out, parse, time } from './client-command.js';
import type { Values } from './client-command.js';

export const INTRODUCE_HELP = `Usage: backchannel client introduce NAME1 NAME2 [--dir DIR]

Introduces two of your contacts to each other. Each is told, inside your encrypted session with
it, that you offer an introduction to the other (under the name you gave the other). Each sees
it in 'client introductions' and accepts or declines. When both have accepted, each one's fresh
contact card goes to the other through you, and they become contacts: they can then write to
each other by name, without you.

What you learn: whether each accepted, and the one-time key and the mailbox each made for the
other (not what they say afterwards). They should compare safety numbers ('client contact verify')
as for any contact: an introducer who swapped in a card of its own would show up there.

Options:
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help      print this help
`;

export const INTRODUCTIONS_HELP = `Usage: backchannel client introductions [--dir DIR] [--json]

Lists the introductions you made and those offered to you, oldest first, with their id (for
'client introduction accept|decline ID'), who offered them or whom they introduce, and their
state:

  offered    waiting for an answer (yours, for one offered to you)
  accepted   you accepted; waiting for the other's card, which comes once they accept too
  declined   declined (by you; or, for one you made, by either of the two)
  done       the two are contacts now (for one offered to you: under the name shown)
  expired    not answered by both in time (7 days; then 1 more day for the card to come)
  failed     the card that came could not be used (it was yours, or someone already a contact)

A finished introduction (done, declined, expired, failed) is deleted from this list ${DAYS(INTRODUCTION_RETENTION_MS)} days
after its answer window closed (${DAYS(INTRODUCTION_TTL_MS + INTRODUCTION_GRACE_MS + INTRODUCTION_RETENTION_MS)} days after it was made or offered); the contacts it made stay.
'client recv' and 'client chat' show each offer and each outcome once as it happens.

Options:
  --json      one JSON array
  --dir DIR   the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help      print this help
`;

export const INTRODUCTION_HELP = `Usage: backchannel client introduction accept ID [--name NAME] [--dir DIR]
       backchannel client introduction decline ID [--dir DIR]

Answers an introduction offered to you by a contact (see 'client introductions' for its ID).

  accept ID [--name NAME]   accept it: a fresh contact card of yours goes to the contact who
                            offered it, to forward once the other accepts too; the other then
                            becomes your contact NAME (default: the name the introducer gave)
  decline ID                decline it: the introducer is told; the other learns nothing from you

Once the other is your contact, compare safety numbers with them ('client contact verify NAME'):
the introducer carried your cards and could have swapped them.

Options:
  --name NAME  the name the other gets in your contacts
  --dir DIR    the client's state directory (default ${DEFAULT_CLIENT_DIR})
  --help       print this help
`;

/** Control characters (a contact chooses names we print) shown as U+FFFD. */
function safe(text: unknown): string {
  // eslint-disable-next-line no-control-regex
  return String(text).replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd');
}

/** " --dir DIR" for a hint, when the command was given one (a hint without it would name the default client). */
function dirHint(v: Values): string {
  return typeof v['dir'] === 'string' && v['dir'] !== '' ? ` --dir ${/^[\w./-]+$/.test(v['dir']) ? v['dir'] : JSON.stringify(v['dir'])}` : '';
}

/** One line for an introduction. */
export function introductionLine(i: IpcMessage): string {
  const names = (i['names'] as unknown[]).map(safe);
  const answers = i['answers'] as unknown[];
  const from = safe(i['from']);
  const other = names[0] === '' ? '(no name given)' : names[0];
  let what: string;
  if (i['role'] === 'made') what = `you introduced ${names[0]} (${String(answers[0])}) and ${names[1]} (${String(answers[1])})`;
  else if (i['state'] === 'offered') what = `${from} offers to introduce you to ${other}`;
  else if (i['state'] === 'accepted') what = `${from}'s introduction to ${other}: you accepted; waiting for their answer`;
  else if (i['state'] === 'done') what = `${from} introduced you to ${other}, now your contact "${other}"`;
  else if (i['state'] === 'declined') what = `${from}'s introduction to ${other}: you declined`;
  else if (i['state'] === 'expired') what = `${from}'s introduction to ${other}: not answered by both in time`;
  else what = `${from}'s introduction to ${other}: the card that came could not be used`;
  const until = i['state'] === 'offered' || i['state'] === 'accepted' ? `, until ${time(i['expires_at'])}` : '';
  return `${String(i['id']).padStart(4)}  ${String(i['state']).padEnd(8)}  ${what}${until}`;
}

/**
 * The event line `recv --follow` and `chat` show once for an introduction notice (messenger-ipc's
 * "introduction" event): who introduces whom and the exact commands to answer an offer; for an
 * outcome, what it means now. `dir`: " --dir DIR" for the commands, or ''.
 */
export function introductionNotice(kind: unknown, i: IpcMessage, dir: string): string {
  const id = String(i['id']);
  const names = (i['names'] as unknown[]).map(safe);
  const answers = i['answers'] as unknown[];
  const from = safe(i['from']);
  const other = names[0] === '' || names[0] === undefined ? '(no name given)' : names[0];
  if (i['role'] === 'made') {
    const [a, b] = [names[0], names[1]];
    if (i['state'] === 'done') return `*** introduction ${id}: ${a} and ${b} both accepted your introduction; they are contacts now`;
    if (i['state'] === 'declined') {
      const who = answers[0] === 'declined' ? a : answers[1] === 'declined' ? b : 'one of them';
      return `*** introduction ${id}: ${who} declined your introduction of ${a} and ${b}`;
    }
    if (i['state'] === 'expired') return `*** introduction ${id}: your introduction of ${a} and ${b} expired (not accepted by both in time)`;
    return `*** introduction ${id}: your introduction of ${a} and ${b} failed (one of them is blocked or removed)`;
  }
  if (kind === 'offer') {
    const nameHint = names[0] === '' ? ' --name NAME' : '';
    return (
      `*** introduction ${id}: ${from} offers to introduce you to ${other}.
` +
      `    accept:  npx backchannel client introduction accept ${id}${nameHint}${dir}${nameHint === '' ? `   (add --name NAME to call them otherwise)` : ''}
` +
      `    decline: npx backchannel client introduction decline ${id}${dir}`
    );
  }
  if (i['state'] === 'done') {
    const name = argHint(String(names[0]));
    return (
      `*** introduction ${id}: ${other} (introduced by ${from}) is now your contact.
` +
      `    chat:    npx backchannel client chat ${name}${dir}
` +
      `    verify:  npx backchannel client contact verify ${name}${dir}   (compare the number with theirs: ${from} carried your cards)`
    );
  }
  if (i['state'] === 'expired') return `*** introduction ${id}: ${from}'s introduction to ${other} expired (not answered by both in time)`;
  return `*** introduction ${id}: ${from}'s introduction to ${other} failed: the card that came could not be used`;
}

export async function introduceCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {});
  if (values['help'] === true) return help(INTRODUCE_HELP);
  if (positionals.length !== 2) throw usageError('usage: backchannel client introduce NAME1 NAME2 (see --help)');
  const r = await call(dirOf(values), { op: 'introduce', name1: positionals[0], name2: positionals[1] });
  const i = r['introduction'] as IpcMessage;
  out(`Offered ${safe(positionals[0])} and ${safe(positionals[1])} an introduction to each other (id ${String(i['id'])}). They become contacts once both accept; see: npx backchannel client introductions${dirHint(values)}`);
  return 0;
}

export async function introductionsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  if (values['help'] === true) return help(INTRODUCTIONS_HELP);
  if (positionals.length > 0) throw usageError('introductions takes no arguments; see backchannel client introductions --help');
  const list = (await call(dirOf(values), { op: 'introductions' }))['introductions'] as IpcMessage[];
  if (values['json'] === true) {
    out(JSON.stringify(list));
    return 0;
  }
  if (list.length === 0) {
    out('No introductions. Introduce two contacts with: npx backchannel client introduce NAME1 NAME2');
    return 0;
  }
  out('  ID  STATE     INTRODUCTION');
  for (const i of list) out(introductionLine(i));
  if (list.some((i) => i['role'] === 'received' && i['state'] === 'offered')) out(`\nAnswer with: npx backchannel client introduction accept ID [--name NAME]${dirHint(values)}  (or decline ID)`);
  return 0;
}

export async function introductionCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return help(INTRODUCTION_HELP);
  const { values, positionals } = parse(rest, { name: { type: 'string' } });
  if (values['help'] === true) return help(INTRODUCTION_HELP);
  if (sub !== 'accept' && sub !== 'decline') throw usageError(`unknown introduction command "${sub.slice(0, 32)}"; the commands are accept and decline`);
  if (positionals.length !== 1 || !/^[1-9]\d{0,14}$/.test(positionals[0]!)) throw usageError(`usage: backchannel client introduction ${sub} ID${sub === 'accept' ? ' [--name NAME]' : ''} (ID as 'client introductions' shows it)`);
  const id = Number(positionals[0]);
  const dir = dirOf(values);
  if (sub === 'decline') {
    if (values['name'] !== undefined) throw usageError('--name is for accept');
    await call(dir, { op: 'introduction_decline', id });
    out(`Declined introduction ${id}.`);
    return 0;
  }
  const name = values['name'];
  const r = await call(dir, { op: 'introduction_accept', id, ...(typeof name === 'string' ? { name } : {}) });
  const i = r['introduction'] as IpcMessage;
  const who = safe((i['names'] as unknown[])[0]);
  out(`Accepted: ${who} becomes your contact once they accept too (see: npx backchannel client introductions${dirHint(values)}). Then compare safety numbers: npx backchannel client contact verify ${who}${dirHint(values)}`);
  return 0;
}
