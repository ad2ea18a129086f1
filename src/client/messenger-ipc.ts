/**
 * The messenger's ops on the daemon's socket (served through daemon.ts's extension hook). Same
 * framing as the rest: one request per connection, JSON lines, `{"ok":false,"code","error"}` for
 * an error.
 *
 *   {"op":"contacts"}                                   -> {"ok":true,"contacts":[CONTACT...]}
 *   {"op":"contact_export"}                             -> {"ok":true,"card":BASE64URL}
 *   {"op":"contact_import","name":N,"card":BASE64URL}   -> {"ok":true,"contact":CONTACT}
 *   {"op":"contact_add","name":N,"our_card":B64U,"their_card":B64U} -> {"ok":true,"contact":CONTACT}
 *   {"op":"contact_new_card"}                           -> {"ok":true,"card":BASE64URL}
 *   {"op":"contact_rename","name":N,"new_name":M}       -> {"ok":true,"contact":CONTACT}
 *   {"op":"contact_remove","name":N}                    -> {"ok":true}
 *   {"op":"contact_verify","name":N,"verified"?:BOOL}   -> {"ok":true,"contact":CONTACT,"safety_number":TEXT}
 *   {"op":"contact_block","name":N}                     -> {"ok":true,"contact":CONTACT,"mailbox_revoked":BOOL}
 *   {"op":"contact_unblock","name":N}                   -> {"ok":true,"contact":CONTACT,"mailbox_renewed":BOOL}
 *   {"op":"msg_send","name":N,"text"?:T,"file_name"?:F,"file_base64"?:B64,"wait"?:BOOL}
 *       -> {"ok":true,"entry":ENTRY}; with wait, {"event":"state","entry":ENTRY} at each change
 *          until delivered or failed, and between them the progress of the client message that
 *          carries it (the file's, or a text's own): {"event":"carrier","fragments":N} once it
 *          exists (it waits for the session), then the daemon's send events for it,
 *          {"event":"attempt","index","attempt","total"} and {"event":"progress","done","total"}
 *   {"op":"history","name":N,"limit"?:K}                -> {"ok":true,"entries":[ENTRY...]}
 *   {"op":"msg_file","id":ID}                           -> {"ok":true,"name":F,"data_base64":B64}
 *   {"op":"msg_recv","name"?:N,"follow"?:BOOL,"states"?:BOOL,"introductions"?:BOOL,"receiving"?:BOOL}
 *       -> {"event":"message","entry":ENTRY}* for each unread incoming message (the peer answers
 *          {"op":"read","id":ID} once it has shown it); without follow {"event":"end"} after the
 *          backlog; with follow new messages as they come, and with states every outgoing state
 *          change as {"event":"state","entry":ENTRY}, until the peer closes. With introductions,
 *          also {"event":"introduction","kind":"offer"|"outcome","introduction":INTRO} for each
 *          introduction notice not shown yet (answered {"op":"intro_shown","id":ID,"kind":K});
 *          with receiving (and follow), {"event":"receiving","contact":N,"have":K,"total":T} as
 *          the fragments of a large message from a contact (of NAME, with name) come in.
 *
 *   {"op":"contact_rotate","name":N,"grace_ms"?:MS}    -> {"ok":true,"contact":CONTACT}
 *   {"op":"introduce","name1":N,"name2":M}            -> {"ok":true,"introduction":INTRO}
 *   {"op":"introductions"}                              -> {"ok":true,"introductions":[INTRO...]}
 *   {"op":"introduction_accept","id":ID,"name"?:N}     -> {"ok":true,"introduction":INTRO}
 *   {"op":"introduction_decline","id":ID}               -> {"ok":true,"introduction":INTRO}
 *
 * INTRO = {"id","role":"made"|"received","from","names","answers","state","created_at","expires_at"}.
 * CONTACT = {"name","identity_key","verified","blocked","created_at","session"}; ENTRY = {"id",
 * "contact","direction","kind","text","file_name","file_length","sent_at","received_at","state"}.
 */
import { Buffer } from 'node:buffer';
import { BackchannelError } from '../errors.js';
import { type Contact, type HistoryEntry, type Introduction, type Messenger, cardFromText, cardToText } from '../messaging/index.js';
import type { ExtensionConnection, IpcExtension } from './daemon.js';
import type { IpcMessage } from './ipc.js';
import type { ClientApi, ClientEvent } from './api.js';
import type { MessengerHost } from './messenger-host.js';
import { equalBytes } from '../util/bytes.js';

/** What the messenger's send reports of the client engine (the ClientApi's part it needs). */
export type CarrierSource = Pick<ClientApi, 'subscribe' | 'outgoing'>;

const OPS = new Set(['contacts', 'contact_export', 'contact_import', 'contact_add', 'contact_new_card', 'contact_rename', 'contact_remove', 'contact_verify', 'contact_block', 'contact_unblock', 'msg_send', 'history', 'msg_file', 'msg_recv', 'introduce', 'introductions', 'introduction_accept', 'introduction_decline', 'contact_rotate']);
const RECV_PAGE = 32;

function ipcError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_IPC', `client ipc: ${message}`);
}

function str(m: IpcMessage, field: string): string {
  const v = m[field];
  if (typeof v !== 'string') throw ipcError(`"${field}" must be a string`);
  return v;
}

function optBool(m: IpcMessage, field: string): boolean | undefined {
  const v = m[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw ipcError(`"${field}" must be true or false`);
  return v;
}

function only(m: IpcMessage, allowed: readonly string[]): void {
  for (const k of Object.keys(m)) if (k !== 'op' && !allowed.includes(k)) throw ipcError(`unknown field "${k.slice(0, 32)}"`);
}

export function contactJson(c: Contact): IpcMessage {
  return { name: c.name, identity_key: c.identityKey, verified: c.verified, blocked: c.blocked, created_at: c.createdAt, session: c.session };
}

export function entryJson(e: HistoryEntry): IpcMessage {
  return {
    id: e.id, contact: e.contact, direction: e.direction, kind: e.kind, text: e.text, file_name: e.fileName, file_length: e.fileLength,
    sent_at: e.sentAt, received_at: e.receivedAt, state: e.state,
  };
}

export function introductionJson(i: Introduction): IpcMessage {
  return { id: i.id, role: i.role, from: i.from, names: [...i.names], answers: [...i.answers], state: i.state, created_at: i.createdAt, expires_at: i.expiresAt };
}

function introId(m: IpcMessage): number {
  const id = m['id'];
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw ipcError('"id" must be a positive whole number');
  return id;
}

const FINAL = new Set(['delivered', 'failed']);

/** What the messenger's ops need beyond the messenger: the host's (src/client/messenger-host.ts). */
export interface MessengerIpcOptions {
  /** Blocking and unblocking with the mailbox the contact writes to (the host's block and unblock); without them, only the messenger's flag. */
  readonly block?: MessengerHost['block'];
  readonly unblock?: MessengerHost['unblock'];
  /** Removing with the revocation of the mailbox the contact wrote to (the host's remove); without it, only the messenger's. */
  readonly remove?: MessengerHost['remove'];
  /** Rotates one of our mailboxes (the host's, which tells the contacts that write to it). */
  readonly rotateMailbox?: (id: Uint8Array, graceMs?: number) => unknown;
  /** The client engine, for the progress of a message being sent (msg_send with wait). */
  readonly client?: CarrierSource;
}

/** The messenger's ops for `startIpcServer({ extension })`. */
export function messengerIpc(messenger: Messenger, opts: MessengerIpcOptions = {}): IpcExtension {
  return {
    handles: (op) => OPS.has(op),
    open(m: IpcMessage, conn: ExtensionConnection) {
      const reply = (answer: IpcMessage): Record<string, never> => {
        conn.write({ ok: true, ...answer });
        conn.finish();
        return {};
      };
      switch (m['op']) {
        case 'contacts':
          only(m, []);
          return reply({ contacts: messenger.contacts().map(contactJson) });
        case 'contact_export':
          only(m, []);
          return reply({ card: cardToText(messenger.exportCard()) });
        case 'contact_new_card':
          only(m, []);
          return reply({ card: cardToText(messenger.newCard()) });
        case 'contact_import':
          only(m, ['name', 'card']);
          return reply({ contact: contactJson(messenger.importContact(str(m, 'name'), cardFromText(str(m, 'card')))) });
        case 'contact_add':
          only(m, ['name', 'our_card', 'their_card']);
          return reply({ contact: contactJson(messenger.addContact(str(m, 'name'), cardFromText(str(m, 'our_card')), cardFromText(str(m, 'their_card')))) });
        case 'contact_rename':
          only(m, ['name', 'new_name']);
          return reply({ contact: contactJson(messenger.rename(str(m, 'name'), str(m, 'new_name'))) });
        case 'contact_remove':
          only(m, ['name']);
          (opts.remove ?? ((name: string) => messenger.remove(name)))(str(m, 'name'));
          return reply({});
        case 'contact_verify': {
          only(m, ['name', 'verified']);
          const name = str(m, 'name');
          const verified = optBool(m, 'verified');
          const contact = verified === undefined ? messenger.contact(name) : messenger.setVerified(name, verified);
          return reply({ contact: contactJson(contact), safety_number: messenger.safetyNumber(name) });
        }
        case 'contact_block': {
          // Their messages are dropped from now on, and the mailbox they write to is revoked at
          // our gateway (their mail then stops there, counted).
          only(m, ['name']);
          const name = str(m, 'name');
          if (opts.block === undefined) return reply({ contact: contactJson(messenger.setBlocked(name, true)), mailbox_revoked: false });
          const r = opts.block(name);
          return reply({ contact: contactJson(r.contact), mailbox_revoked: r.mailboxRevoked });
        }
        case 'contact_unblock': {
          // Accepted again; a revoked mailbox is replaced by a new one, told inside the session.
          only(m, ['name']);
          const name = str(m, 'name');
          if (opts.unblock === undefined) return reply({ contact: contactJson(messenger.setBlocked(name, false)), mailbox_renewed: false });
          const r = opts.unblock(name);
          return reply({ contact: contactJson(r.contact), mailbox_renewed: r.mailboxRenewed });
        }
        case 'history': {
          only(m, ['name', 'limit']);
          const limit = m['limit'] === undefined ? 1000 : m['limit'];
          if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) throw ipcError('"limit" must be a positive whole number');
          return reply({ entries: messenger.history(str(m, 'name'), limit).map(entryJson) });
        }
        case 'msg_file': {
          only(m, ['id']);
          const id = m['id'];
          if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw ipcError('"id" must be a whole number');
          const f = messenger.fileData(id);
          if (f === null) throw new BackchannelError('ERR_MSG_ATTACHMENT', 'messenger: no received file with that id');
          return reply({ name: f.name, data_base64: Buffer.from(f.data).toString('base64') });
        }
        case 'contact_rotate': {
          // A new mailbox for NAME to write to; NAME is told inside the session, and the old one
          // keeps receiving for the grace period.
          only(m, ['name', 'grace_ms']);
          const grace = m['grace_ms'];
          if (grace !== undefined && (typeof grace !== 'number' || !Number.isSafeInteger(grace) || grace < 0)) throw ipcError('"grace_ms" must be a whole number');
          if (opts.rotateMailbox === undefined) throw ipcError('this client cannot rotate mailboxes');
          const name = str(m, 'name');
          const contact = messenger.contact(name);
          if (contact.blocked) throw new BackchannelError('ERR_MSG_CONTACT', 'messenger: that contact is blocked');
          opts.rotateMailbox(messenger.ourMailboxOf(name), grace);
          return reply({ contact: contactJson(contact) });
        }
        case 'introduce':
          only(m, ['name1', 'name2']);
          return reply({ introduction: introductionJson(messenger.introduce(str(m, 'name1'), str(m, 'name2'))) });
        case 'introductions':
          only(m, []);
          return reply({ introductions: messenger.introductions().map(introductionJson) });
        case 'introduction_accept':
          only(m, ['id', 'name']);
          return reply({ introduction: introductionJson(messenger.acceptIntroduction(introId(m), m['name'] === undefined ? undefined : str(m, 'name'))) });
        case 'introduction_decline':
          only(m, ['id']);
          return reply({ introduction: introductionJson(messenger.declineIntroduction(introId(m))) });
        case 'msg_send':
          return send(messenger, m, conn, opts.client);
        case 'msg_recv':
          return recv(messenger, m, conn);
        default:
          throw ipcError('unknown op');
      }
    },
  };
}

function send(messenger: Messenger, m: IpcMessage, conn: ExtensionConnection, client?: CarrierSource): { close?: () => void } {
  only(m, ['name', 'text', 'file_name', 'file_base64', 'wait']);
  const name = str(m, 'name');
  const wait = optBool(m, 'wait') === true;
  let id = -1;
  let done = false;
  const early: HistoryEntry[] = [];
  const onState = (e: HistoryEntry): void => {
    if (done) return;
    if (id < 0) {
      early.push(e);
      return;
    }
    if (e.id !== id) return;
    conn.write({ event: 'state', entry: entryJson(e) });
    if (FINAL.has(e.state)) {
      done = true;
      conn.finish();
    }
  };
  const unsubscribeStates = wait ? messenger.subscribe((e) => e.type === 'state' && onState(e.entry)) : () => undefined;
  // The client message that carries it (the file's, else the content's), once it exists: its
  // fragments' attempts and acknowledgements are the progress shown.
  let carrier: Uint8Array | null = null;
  const findCarrier = (): void => {
    if (carrier !== null || id < 0 || client === undefined) return;
    const c = messenger.carriers(id);
    const found = c?.file ?? c?.content ?? null;
    if (found === null) return;
    carrier = found;
    const o = client.outgoing(found);
    conn.write({ event: 'carrier', fragments: o?.fragments ?? 1 });
    if (o !== null && o.done > 0) conn.write({ event: 'progress', done: o.done, total: o.fragments });
  };
  const onClientEvent = (e: ClientEvent): void => {
    if (done || id < 0 || (e.type !== 'attempt' && e.type !== 'progress')) return;
    findCarrier();
    if (carrier === null || !equalBytes(e.id, carrier)) return;
    conn.write(e.type === 'attempt' ? { event: 'attempt', index: e.index, attempt: e.attempt, total: e.total } : { event: 'progress', done: e.done, total: e.total });
  };
  const unsubscribeClient = wait && client !== undefined ? client.subscribe(onClientEvent) : () => undefined;
  const unsubscribe = (): void => {
    unsubscribeStates();
    unsubscribeClient();
  };
  let entry: HistoryEntry;
  try {
    if (m['file_base64'] !== undefined) {
      const b64 = str(m, 'file_base64');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw ipcError('"file_base64" must be base64');
      const data = Buffer.from(b64, 'base64');
      entry = messenger.sendFile(name, m['file_name'] === undefined ? '' : str(m, 'file_name'), new Uint8Array(data.buffer, data.byteOffset, data.length));
    } else entry = messenger.sendText(name, str(m, 'text'));
  } catch (e) {
    unsubscribe();
    throw e;
  }
  id = entry.id;
  conn.write({ ok: true, entry: entryJson(entry) });
  if (!wait) {
    conn.finish();
    return {};
  }
  findCarrier();
  // Nothing went: the contact has not opened the session yet (their client never answered).
  if (carrier === null && entry.state === 'queued' && messenger.contact(name).session === 'waiting') conn.write({ event: 'waiting' });
  for (const e of early.splice(0)) if (e.id === id && e.state !== entry.state) onState(e);
  if (!done && FINAL.has(entry.state)) {
    done = true;
    conn.finish();
  }
  return { close: unsubscribe };
}

function recv(messenger: Messenger, m: IpcMessage, conn: ExtensionConnection): { line: (l: IpcMessage) => void; close: () => void } {
  only(m, ['name', 'follow', 'states', 'introductions', 'receiving']);
  const name = m['name'] === undefined ? undefined : str(m, 'name');
  if (name !== undefined) messenger.contact(name); // an unknown name fails now
  const follow = optBool(m, 'follow') === true;
  const states = optBool(m, 'states') === true;
  const intros = optBool(m, 'introductions') === true;
  const receiving = optBool(m, 'receiving') === true && follow;
  let highest = 0;
  // Messages (by id) and introduction notices ("intro:ID:KIND") written and not yet acknowledged.
  const outstanding = new Set<number | string>();
  const pumpIntros = (): void => {
    if (!intros) return;
    for (const n of messenger.introductionNotices()) {
      const key = `intro:${n.introduction.id}:${n.kind}`;
      if (outstanding.has(key)) continue;
      outstanding.add(key);
      conn.write({ event: 'introduction', kind: n.kind, introduction: introductionJson(n.introduction) });
    }
  };
  let endSent = false;
  let closed = false;
  const pump = (): void => {
    for (;;) {
      const page = messenger.unread(highest, RECV_PAGE, name);
      for (const e of page) {
        highest = Math.max(highest, e.id);
        outstanding.add(e.id);
        conn.write({ event: 'message', entry: entryJson(e) });
      }
      if (page.length < RECV_PAGE) break;
    }
  };
  const unsubscribe = follow
    ? messenger.subscribe((e) => {
        if (closed) return;
        if (e.type === 'introduction') {
          pumpIntros();
          return;
        }
        if (e.type === 'receiving') {
          if (receiving && (name === undefined || e.receiving.contact === name)) conn.write({ event: 'receiving', contact: e.receiving.contact, have: e.receiving.have, total: e.receiving.total });
          return;
        }
        if (name !== undefined && e.entry.contact !== name) return;
        if (e.type === 'message') pump();
        else if (states) conn.write({ event: 'state', entry: entryJson(e.entry) });
      })
    : () => undefined;
  pumpIntros();
  pump();
  if (receiving) for (const r of messenger.receiving(name)) conn.write({ event: 'receiving', contact: r.contact, have: r.have, total: r.total });
  if (!follow) {
    endSent = true;
    conn.write({ event: 'end' });
    if (outstanding.size === 0) conn.finish();
  }
  return {
    line: (l) => {
      if (l['op'] === 'intro_shown') {
        const kind = l['kind'];
        const key = `intro:${String(l['id'])}:${String(kind)}`;
        if ((kind !== 'offer' && kind !== 'outcome') || !outstanding.has(key)) throw ipcError('intro_shown of a notice not sent on this connection');
        messenger.markIntroductionShown(l['id'] as number, kind);
        outstanding.delete(key);
        if (endSent && outstanding.size === 0) conn.finish();
        return;
      }
      if (l['op'] !== 'read') throw ipcError('during msg_recv only {"op":"read","id":N} and {"op":"intro_shown","id":N,"kind":K} are accepted');
      const id = l['id'];
      if (typeof id !== 'number' || !outstanding.has(id)) throw ipcError('read of a message not sent on this connection');
      messenger.markRead(id);
      outstanding.delete(id);
      if (endSent && outstanding.size === 0) conn.finish();
    },
    close: () => {
      closed = true;
      unsubscribe();
    },
  };
}
