/**
 * Runs the messenger (src/messaging/messenger.ts) on a client engine: the port it sends and
 * consumes through, the engine's events fed to it, and the ClientApi that the daemon's plain
 * `recv` serves, from which every inbox message the messenger took is hidden (it shows up in the
 * contact's history instead).
 *
 * The messenger adds no traffic of its own: what it sends are client messages like any other,
 * which leave on the engine's send clock in place of cover packets.
 */
import type { CryptoBackend } from '../crypto/types.js';
import { isBackchannelError } from '../errors.js';
import { type Contact, type MailAddress, Messenger, type MessengerInboxMessage, type MessengerPort } from '../messaging/index.js';
import type { Logger } from '../ops/logger.js';
import { encodeAddress } from './address.js';
import type { ClientApi, ClientEvent } from './api.js';
import type { SqliteClientStore } from './sqlite-store.js';
import { SqliteMessengerStore } from './messenger-store.js';
import type { InboxMessage } from './store.js';
import type { MessengerStore } from '../messaging/store.js';
import { equalBytes, toHex } from '../util/bytes.js';

/** How often what waits for the client to be able to send is tried again. */
export const MESSENGER_TICK_MS = 2000;

function inboxMessage(m: InboxMessage): MessengerInboxMessage {
  // Per-contact mailboxes may add the mailbox a message came to; use it when it is there.
  const mailbox = (m as { mailbox?: unknown }).mailbox;
  return { seq: m.seq, body: m.body, receivedAt: m.receivedAt, ...(mailbox instanceof Uint8Array ? { mailbox } : {}) };
}

export interface MessengerHost {
  readonly messenger: Messenger;
  /** The client's API with the messenger's inbox messages taken out (for the daemon's `recv`). */
  readonly api: ClientApi;
  /**
   * Blocks contact `name`: what it sends is dropped from now on, and the mailbox it writes to is
   * revoked at our gateway, so that its packets stop there (counted) instead of taking our fetches.
   * A contact that writes to our main address (an older card) is only blocked here
   * (`mailboxRevoked` false).
   */
  block(name: string): { readonly contact: Contact; readonly mailboxRevoked: boolean };
  /**
   * Unblocks contact `name`. When the block revoked the mailbox it writes to, it gets a new one,
   * told inside the session as a rotation is (`mailboxRenewed`): what it sent while blocked is lost,
   * what it sends once told arrives.
   * @throws {BackchannelError} ERR_CLIENT_MAILBOX_LIMIT when every extra mailbox is in use.
   */
  unblock(name: string): { readonly contact: Contact; readonly mailboxRenewed: boolean };
  /**
   * Forgets contact `name` (its session and history) and revokes the mailbox it writes to, so that
   * what it still sends is refused at our gateway instead of lying in our inbox as mail that no
   * session opens.
   */
  remove(name: string): void;
  stop(): void;
}

export interface MessengerHostOptions {
  readonly client: ClientApi;
  /** The client's SQLite store, whose file holds the messenger's tables too; or (the browser) the messenger's own store. */
  readonly store: SqliteClientStore | { readonly messengerStore: MessengerStore };
  readonly crypto: CryptoBackend;
  readonly now: () => number;
  /** Our address (gateway and mailbox): what a new contact writes to, until per-contact mailboxes. */
  readonly address: MailAddress;
  readonly log: Logger;
}

/** Makes the messenger, feeds it the engine's events and its inbox backlog, and ticks it. */
export function startMessenger(opts: MessengerHostOptions): MessengerHost {
  const { client, crypto } = opts;
  const log = opts.log.child('messenger');
  const port: MessengerPort = {
    ready: () => client.status().document !== 'none',
    // Plain: the contents carry their own time, and a padded ratchet message then fits one fragment.
    send: (to, body) => client.send({ to: encodeAddress(crypto, to), body, plain: true }).id,
    outgoing: (id) => client.outgoing(id)?.status ?? null,
    unconsumed: (afterSeq, limit) => client.unconsumed(afterSeq, limit).map(inboxMessage),
    consume: (seq) => client.consume(seq),
  };
  // In Node the messenger's tables are in the client's SQLite file, in the browser in the same
  // journal as the client's records: a transaction of either store covers both.
  const store = 'messengerStore' in opts.store ? opts.store.messengerStore : new SqliteMessengerStore(opts.store);
  const messenger = new Messenger({
    port,
    store,
    crypto,
    now: opts.now,
    // Each contact writes to a mailbox of its own at our gateway (docs/client.md, "Extra
    // mailboxes"), so that one that leaks or is abused can be revoked alone.
    ourAddressForNewContact: () => ({ gateway: opts.address.gateway.slice(), mailbox: client.createMailbox().id }),
    // A card made for an introduction that expired or failed: its mailbox will never be written to.
    releaseAddress: (a) => client.revokeMailbox(a.mailbox),
  });
  const guarded = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      log.error(`${what} failed`, { code: e instanceof Error && 'code' in e ? String(e.code) : 'exception' });
    }
  };
  const unsubscribe = client.subscribe((e: ClientEvent) => {
    if (e.type === 'message') {
      messenger.incomingDone(toHex(e.message.id));
      guarded('inbox message', () => void messenger.handleInbox(inboxMessage(e.message)));
    } else if (e.type === 'partial') guarded('incoming part', () => messenger.noteIncomingPart(toHex(e.id), e.mailbox, e.have, e.total));
    else if (e.type === 'delivered' || e.type === 'sent' || e.type === 'failed') guarded('outgoing state', () => messenger.onOutgoing(e.id));
    else if (e.type === 'connected') guarded('tick', () => void messenger.tick());
  });
  guarded('start', () => messenger.start());
  const timer = setInterval(() => guarded('tick', () => void messenger.tick()), MESSENGER_TICK_MS);
  timer.unref?.();

  const api: ClientApi = {
    get address() {
      return client.address;
    },
    status: () => client.status(),
    send: (r) => client.send(r),
    outgoing: (id) => client.outgoing(id),
    consume: (seq) => client.consume(seq),
    inboxPage: (afterSeq, limit) => client.inboxPage(afterSeq, limit),
    findInbox: (prefixHex) => client.findInbox(prefixHex),
    createMailbox: () => client.createMailbox(),
    revokeMailbox: (id) => client.revokeMailbox(id),
    // A contact that writes to the mailbox is told the new one inside its session, in the same
    // transaction (the old one keeps receiving for the grace period meanwhile).
    rotateMailbox: (id, graceMs) =>
      store.transaction(() => {
        const fresh = client.rotateMailbox(id, graceMs);
        messenger.mailboxRotated(id, { gateway: opts.address.gateway.slice(), mailbox: fresh.id });
        return fresh;
      }),
    mailboxes: () => client.mailboxes(),
    unconsumed: (afterSeq, limit) => {
      // Up to `limit` of the messages the messenger leaves (it consumes what it takes), so that a
      // short page still means the end of the inbox.
      const left: InboxMessage[] = [];
      let after = afterSeq;
      for (;;) {
        const page = client.unconsumed(after, limit);
        for (const m of page) {
          after = m.seq;
          if (messenger.handleInbox(inboxMessage(m))) continue;
          left.push(m);
          if (left.length === limit) return left;
        }
        if (page.length < limit) return left;
      }
    },
    subscribe: (listener) =>
      client.subscribe((e) => {
        if (e.type === 'message' && messenger.handleInbox(inboxMessage(e.message))) return;
        listener(e);
      }),
  };
  /** Revokes one of our extra mailboxes; false for our main one (or one already forgotten). */
  const revoke = (mailbox: Uint8Array): boolean => {
    try {
      client.revokeMailbox(mailbox);
      return true;
    } catch (e) {
      if (!isBackchannelError(e, 'ERR_CLIENT_MAILBOX')) throw e;
      return false;
    }
  };
  const block = (name: string): { contact: Contact; mailboxRevoked: boolean } =>
    store.transaction(() => {
      const contact = messenger.setBlocked(name, true);
      return { contact, mailboxRevoked: revoke(messenger.ourMailboxOf(name)) };
    });
  const unblock = (name: string): { contact: Contact; mailboxRenewed: boolean } =>
    store.transaction(() => {
      const mailbox = messenger.ourMailboxOf(name);
      const contact = messenger.setBlocked(name, false);
      const ours = client.mailboxes().find((m) => equalBytes(m.id, mailbox));
      if (ours === undefined || !ours.revoked) return { contact, mailboxRenewed: false };
      const fresh = client.createMailbox();
      messenger.mailboxRotated(mailbox, { gateway: opts.address.gateway.slice(), mailbox: fresh.id });
      return { contact: messenger.contact(name), mailboxRenewed: true };
    });
  const remove = (name: string): void =>
    store.transaction(() => {
      const mailbox = messenger.ourMailboxOf(name);
      messenger.remove(name);
      revoke(mailbox);
    });
  return {
    messenger,
    api,
    block,
    unblock,
    remove,
    stop: () => {
      clearInterval(timer);
      unsubscribe();
    },
  };
}
