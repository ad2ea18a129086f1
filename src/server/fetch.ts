/**
 * A gateway's client sessions: the commands its clients send besides packets. A client links with
 * Noise XK; its static key names its mailbox. The node hands every command from a client link
 * here and gets back what to do with it; a fetch is answered here, on the client's own link.
 *
 * A client fetches with `retrieve_message{n}`, and the answer is exactly one `message`, an entry or
 * an empty one, so that every fetch looks the same on the link.
 *
 * Fair fetch: a client has several addresses (its main mailbox, known to anyone it ever wrote to,
 * and one extra mailbox per contact), all stored in one queue. A fetch is answered round-robin
 * over the addresses that hold an entry not yet handed out on this link (oldest first within an
 * address), so that junk queued at one address takes at most its share of the fetches and mail
 * to the others flows at its normal pace (docs/network.md, "Intake limits").
 *
 * So the answers are not in sequence order, and n no longer means "everything below n": n - 1 is
 * the entry the client last took (stored, or recognised as one it had). The gateway keeps, per
 * link, the entries it handed out and the client has not confirmed, in the order it sent them; a
 * link delivers in order, and the client takes answers in order, so naming one confirms it and
 * every one handed before it on the same link: those are deleted. Entries handed and never
 * confirmed (the link closed first) are handed again on the next link; an entry is only deleted
 * once confirmed, so an answer lost with its link loses nothing, and a deleted entry is never
 * answered again (the mailbox hides it at once). Within an address the answers come in sequence
 * order, which lets the client recognise an entry it already took (client.ts). A confirmation
 * for an entry handed on a link that is gone (the client reconnected) finds that link's list too.
 *
 * Answering only reads: the deletion is recorded in memory and committed later, off this thread
 * (gateway-mailbox.ts), so that an answer takes the same time whether the mailbox holds mail, the
 * fetch deleted some, or deliveries are committing.
 * Nor does the answer's own work depend on the mailbox: the answer to a client's next fetch is
 * read and encoded ahead, in a later turn of the event loop after each answer (and again after a
 * delivery to a mailbox whose prepared answer was empty), so that a fetch only hands a prepared
 * frame to the link. An entry read from SQLite and a full `message` encoded, against nothing read
 * and an empty one, no longer fall between a fetch and its answer. The answer is built afresh
 * only when the fetch is not the one expected (the client lost an answer, or its first fetch).
 *
 * A client gets the directory here too, never from the authorities: `get_document{epoch, chunk}`
 * (sent in place of a fetch, on the same clock) is answered with exactly one `document` frame,
 * a chunk of the signed document the gateway's own follower fetched and verified, or "not
 * available" when it holds none for that epoch.
 *
 * And a client registers and revokes its extra mailboxes here: `mailbox_request{action, mailbox}`
 * (sent in place of a fetch too) is answered with exactly one `mailbox_reply`. The link's static
 * key names the owner; the gateway decides from its mailbox store and what waits to be committed
 * (gateway-mailbox.ts), and says `ok` only once the change is durable.
 */
import type { Counter } from 'prom-client';
import type { MessageLink } from '../link/message-link.js';
import type { DropReason } from '../ops/metrics.js';
import { encodeSignedDocument } from '../pki/document.js';
import type { SignedDocument } from '../pki/types.js';
import { MAX_DOCUMENT_CHUNKS } from '../wire/commands.js';
import type { WireCodec, WireCommand } from '../wire/commands.js';
import type { FetchMailbox } from './gateway-mailbox.js';
import type { PeekedEntry } from './mailbox.js';
import type { RateLimiter } from './rate-limit.js';
import { idKey } from '../util/bytes.js';

/**
 * Entries handed out on one link and not yet confirmed, at most. An honest client confirms each
 * within a store commit (a few fetches); past this the link's list starts again (its entries are
 * handed out again, and the client recognises the ones it took), so a client that never confirms
 * holds no more than this in the gateway's memory.
 */
export const MAX_HANDED_PER_LINK = 256;
/** Clients whose closed link's unconfirmed list is kept for their next link, at most (the oldest is forgotten). */
export const MAX_LEFTOVER_LISTS = 10_000;
/** Addresses one pick visits at most (a client's main mailbox and its extra ones, with room). */
const MAX_ADDRESS_VISITS = 2 * 1_000 + 4;

/** What the node does with one command from a client. */
export type ClientAction = { readonly kind: 'unwrap'; readonly packet: Uint8Array } | { readonly kind: 'done' } | { readonly kind: 'drop'; readonly reason: DropReason };

/** The part of a gateway that serves its clients' links. */
export interface ClientSessions {
  /** A client's link opened: its mailbox exists from now on. */
  opened(link: MessageLink): void;
  /** Client links open now (the gateway's emission rate follows it; the wire shows it anyway). */
  linked(): number;
  /** The keys of the clients with a link open now or opened since the last call (seen, for the retention sweep). */
  linkedKeys(): Uint8Array[];
  /** One command from a client (not `noop` or `disconnect`, which the node handles for every link). */
  command(link: MessageLink, cmd: WireCommand): ClientAction;
  /** An entry for `recipient` was committed: a prepared empty answer is made again. */
  delivered(recipient: Uint8Array): void;
}

export interface ClientSessionsInit {
  readonly mailbox: FetchMailbox;
  readonly limiter: RateLimiter;
  /**
   * Fetches per client (`retrieve_message`, and `get_document` and `mailbox_request`, which ride in
   * their place on the same clock): one over it is a counted drop and gets no answer, never a queue.
   */
  readonly fetchLimiter?: RateLimiter;
  readonly codec: WireCodec;
  /** Fetches answered, by result (`message` or `empty`). */
  readonly fetches: Counter<'result'>;
  /**
   * The verified signed document this gateway holds for an epoch (its follower's current or next),
   * or null. Without it every `get_document` is answered "not available".
   */
  readonly documents?: (epoch: number) => SignedDocument | null;
  /** Document chunks answered, by result (`chunk`, `unavailable`). */
  readonly documentChunks?: Counter<'result'>;
  /** Extra-mailbox requests answered, by action and result. */
  readonly mailboxRequests?: Counter<'action' | 'result'>;
  /** Deletions refused because too many wait for a commit (the entries are handed out again; clients ignore what they hold). */
  readonly deletionsRefused: Counter;
  /** Runs `fn` in a later turn of the event loop (setImmediate by default; the simulator's clock). */
  readonly schedule?: (fn: () => void) => void;
}

/** The answer to a client's next fetch, read and encoded ahead. */
interface Prepared {
  /** The `retrieve_message` sequence it answers (an empty answer carries it). */
  readonly sequence: number;
  readonly frame: Uint8Array;
  /** The entry it hands out: its seq and its address ('' the main mailbox), or null (empty). */
  readonly entry: { readonly seq: number; readonly key: string; readonly mailbox: Uint8Array | null } | null;
}

/** One client link's state: its prepared answer, and whether one is being made. */
interface Session {
  readonly link: MessageLink;
  readonly key: string;
  prepared: Prepared | null;
  /** The sequence the next fetch is expected to carry (the answer to it is made ahead). */
  expected: number;
  scheduled: boolean;
  /** Entries handed out on this link and not confirmed, in the order sent. */
  handed: number[];
  /** Per address ('' the main mailbox): the last seq handed out on this link (entries up to it are not handed again here). */
  readonly floors: Map<string, number>;
  /** The address answered last (undefined: none yet), where the round-robin goes on from. */
  cursor: Uint8Array | null | undefined;
  /** The entry last confirmed on this link (a repeated fetch deletes nothing more). */
  confirmed: number;
}

/** The sessions of a gateway's clients over its mailbox store. */
export function clientSessions(init: ClientSessionsInit): ClientSessions {
  const { mailbox, limiter, codec, fetches, deletionsRefused } = init;
  const schedule = init.schedule ?? ((fn: () => void) => void setImmediate(fn));
  /** A session per client link opened and not yet seen closed; closed ones are swept when counted. */
  const sessions = new Map<MessageLink, Session>();
  /** The sessions of each mailbox (a client may have more than one link open for a moment). */
  const byRecipient = new Map<string, Set<Session>>();
  // The container bytes of each document served, made once: the follower hands out the same
  // object for an epoch, and a document no longer held is collected with its bytes.
  const containers = new WeakMap<SignedDocument, Uint8Array>();
  /** Clients whose link opened since the last retention sweep (one entry per client: bounded by the cap on clients). */
  const seenSince = new Map<string, Uint8Array>();
  /** A client's unconfirmed list from its link that closed, for a confirmation on its next link. */
  const leftovers = new Map<string, number[]>();

  function reply(link: MessageLink, cmd: WireCommand): void {
    sendFrame(link, codec.encode(cmd));
  }

  function answerDocument(link: MessageLink, epoch: number, chunk: number): void {
    const signed = init.documents?.(epoch) ?? null;
    let bytes: Uint8Array | undefined;
    if (signed !== null && signed.document.epoch === epoch) {
      bytes = containers.get(signed);
      if (bytes === undefined) {
        bytes = encodeSignedDocument(signed.bytes, signed.signatures);
        containers.set(signed, bytes);
      }
    }
    const size = codec.documentChunkLength;
    const total = bytes === undefined ? 0 : Math.ceil(bytes.length / size);
    if (bytes === undefined || total === 0 || total > MAX_DOCUMENT_CHUNKS || chunk >= total) {
      init.documentChunks?.inc({ result: 'unavailable' });
      reply(link, { kind: 'document', epoch, available: false, chunk, total: 0, data: new Uint8Array(0) });
      return;
    }
    init.documentChunks?.inc({ result: 'chunk' });
    reply(link, { kind: 'document', epoch, available: true, chunk, total, data: bytes.subarray(chunk * size, Math.min(bytes.length, (chunk + 1) * size)) });
  }

  /** An empty answer to `retrieve_message{sequence}`. */
  function emptyAnswer(sequence: number): Prepared {
    return { sequence, frame: codec.encode({ kind: 'message', sequence, queueHint: 0, empty: true, surbId: null, payload: new Uint8Array(0) }), entry: null };
  }

  /**
   * The next entry to hand out on this link: round-robin over the client's addresses from the one
   * after the last answered, the oldest entry not handed out here within each. Reads only.
   */
  function pick(recipient: Uint8Array, s: Session): { entry: PeekedEntry; key: string; mailbox: Uint8Array | null } | null {
    if (mailbox.peekAddress === undefined || mailbox.nextAddress === undefined) {
      // A mailbox without addresses: one queue, oldest first.
      const entry = mailbox.peek(recipient, s.floors.get('') ?? 0);
      return entry === null ? null : { entry, key: '', mailbox: null };
    }
    const start = s.cursor;
    const startKey = start === undefined ? null : start === null ? '' : idKey(start);
    let wrapped = start === undefined;
    let addr = start === undefined ? mailbox.nextAddress(recipient, undefined) : mailbox.nextAddress(recipient, start);
    for (let visits = 0; visits < MAX_ADDRESS_VISITS; visits++) {
      if (addr === null) {
        if (wrapped) return null;
        wrapped = true;
        addr = mailbox.nextAddress(recipient, undefined);
        if (addr === null) return null;
      }
      const key = addr.mailbox === null ? '' : idKey(addr.mailbox);
      // Past the wrap, the addresses up to the one answered last (included) are what is left.
      if (wrapped && startKey !== null && key > startKey) return null;
      const entry = mailbox.peekAddress(recipient, addr.mailbox, s.floors.get(key) ?? 0);
      if (entry !== null) return { entry, key, mailbox: addr.mailbox };
      if (wrapped && key === startKey) return null;
      addr = mailbox.nextAddress(recipient, addr.mailbox);
    }
    return null;
  }

  /** Reads and encodes the answer to `retrieve_message{sequence}` from the mailbox as it is now. */
  function makeAnswer(recipient: Uint8Array, sequence: number, s: Session): Prepared {
    const found = pick(recipient, s);
    if (found === null) return emptyAnswer(sequence);
    const { entry } = found;
    const answer: WireCommand = { kind: 'message', sequence: entry.seq, queueHint: Math.min(entry.remaining, 0xffffffff), empty: false, surbId: entry.surbId, payload: entry.payload, mailbox: entry.mailbox ?? null };
    return { sequence, frame: codec.encode(answer), entry: { seq: entry.seq, key: found.key, mailbox: found.mailbox } };
  }

  /**
   * The client took `seq` (n - 1 of its fetch): it and every entry handed before it on the same
   * link are confirmed and deleted. The list is this link's, or a link of the same client that is
   * gone or going (the client reconnected); an entry in no list is deleted alone (with a read).
   */
  function confirm(recipient: Uint8Array, s: Session, seq: number): void {
    if (seq === s.confirmed) return;
    let list: number[] | undefined;
    let i = s.handed.indexOf(seq);
    if (i >= 0) list = s.handed;
    else {
      for (const o of byRecipient.get(s.key) ?? []) {
        if (o === s) continue;
        i = o.handed.indexOf(seq);
        if (i >= 0) {
          list = o.handed;
          break;
        }
      }
      if (list === undefined) {
        const left = leftovers.get(s.key);
        i = left?.indexOf(seq) ?? -1;
        if (i >= 0) list = left;
      }
    }
    const deleted = list === undefined ? [seq] : list.slice(0, i + 1);
    let ok: boolean;
    if (list === undefined || mailbox.deleteHanded === undefined) {
      ok = true;
      for (const d of deleted) ok = mailbox.deleteOne(recipient, d) && ok;
    } else {
      ok = mailbox.deleteHanded(recipient, deleted);
    }
    if (!ok) {
      // Too many deletions wait: the entries stay listed, and a later fetch confirms them again.
      deletionsRefused.inc();
      return;
    }
    s.confirmed = seq;
    list?.splice(0, i + 1);
    if (s.handed.length === 0) s.floors.clear();
    // A prepared answer holding what was just deleted (handed on a link that is gone) is made again.
    const held = s.prepared?.entry?.seq;
    if (held !== undefined && deleted.includes(held)) s.prepared = null;
  }

  /** Makes the session's next answer in a later turn, unless that is already asked for. */
  function prepareLater(s: Session): void {
    if (s.scheduled) return;
    s.scheduled = true;
    schedule(() => {
      s.scheduled = false;
      if (!s.link.isOpen) return;
      try {
        s.prepared = makeAnswer(s.link.remoteStatic, s.expected, s);
      } catch {
        // A read that failed: the fetch builds its answer itself (and meets the error there).
        s.prepared = null;
      }
    });
  }

  function session(link: MessageLink): Session {
    let s = sessions.get(link);
    if (s === undefined) {
      s = { link, key: idKey(link.remoteStatic), prepared: null, expected: -1, scheduled: false, handed: [], floors: new Map(), cursor: undefined, confirmed: 0 };
      sessions.set(link, s);
      let set = byRecipient.get(s.key);
      if (set === undefined) byRecipient.set(s.key, (set = new Set()));
      set.add(s);
    }
    return s;
  }

  function answerFetch(link: MessageLink, sequence: number): void {
    const recipient = link.remoteStatic;
    const s = session(link);
    if (sequence > 1) confirm(recipient, s, sequence - 1);
    // The prepared answer read the mailbox after the previous answer: its entry is still the next
    // one, unless one came since to an empty mailbox (then it was made again) or it was deleted (by
    // this fetch or an `ack`: then it was dropped). It is built afresh for a fetch other than the
    // one expected (the client's first, or one sent before the previous answer arrived).
    const ready = s.prepared !== null && s.prepared.sequence === sequence ? s.prepared : null;
    s.prepared = null;
    const answer = ready ?? makeAnswer(recipient, sequence, s);
    fetches.inc({ result: answer.entry === null ? 'empty' : 'message' });
    sendFrame(link, answer.frame);
    if (answer.entry !== null) {
      s.handed.push(answer.entry.seq);
      s.floors.set(answer.entry.key, answer.entry.seq);
      s.cursor = answer.entry.mailbox;
      if (s.handed.length > MAX_HANDED_PER_LINK) {
        // The client does not confirm: start the link's list again (what it holds it recognises).
        s.handed = [];
        s.floors.clear();
      }
    }
    // The client's next fetch names the entry it now holds, or the same as this one.
    s.expected = answer.entry === null ? sequence : answer.entry.seq + 1;
    prepareLater(s);
  }

  function sendFrame(link: MessageLink, frame: Uint8Array): void {
    try {
      if (!link.trySend(frame)) void link.send(frame).catch(() => undefined);
    } catch {
      // the link closed; the client fetches again
    }
  }

  return {
    opened(link) {
      mailbox.register(link.remoteStatic);
      const s = session(link);
      seenSince.set(s.key, link.remoteStatic);
    },
    linked() {
      for (const [l, s] of sessions) {
        if (l.isOpen) continue;
        sessions.delete(l);
        if (s.handed.length > 0) {
          leftovers.delete(s.key);
          if (leftovers.size >= MAX_LEFTOVER_LISTS) leftovers.delete(leftovers.keys().next().value!);
          leftovers.set(s.key, s.handed);
        }
        const set = byRecipient.get(s.key);
        set?.delete(s);
        if (set?.size === 0) byRecipient.delete(s.key);
      }
      return sessions.size;
    },
    linkedKeys() {
      for (const [l, s] of sessions) if (l.isOpen) seenSince.set(s.key, l.remoteStatic);
      const out = [...seenSince.values()];
      seenSince.clear();
      return out;
    },
    delivered(recipient) {
      const set = byRecipient.get(idKey(recipient));
      if (set === undefined) return;
      for (const s of set) {
        // A prepared entry is still the oldest from its sequence on (a new entry comes after it);
        // only its queue hint is one short. A prepared empty answer is wrong now.
        if (s.prepared !== null && s.prepared.entry === null) {
          s.prepared = null;
          prepareLater(s);
        }
      }
    },
    command(link, cmd) {
      if ((cmd.kind === 'retrieve_message' || cmd.kind === 'get_document' || cmd.kind === 'mailbox_request') && init.fetchLimiter?.take(link.remoteStatic) === false) {
        return { kind: 'drop', reason: 'fetch_rate_limited' };
      }
      switch (cmd.kind) {
        case 'send_packet':
          return limiter.take(link.remoteStatic) ? { kind: 'unwrap', packet: cmd.packet } : { kind: 'drop', reason: 'rate_limited' };
        case 'retrieve_message':
          answerFetch(link, cmd.sequence);
          return { kind: 'done' };
        case 'ack': {
          if (!mailbox.deleteOne(link.remoteStatic, cmd.sequence)) deletionsRefused.inc();
          // The prepared answer may hold the entry just deleted: make it again.
          const set = byRecipient.get(idKey(link.remoteStatic));
          for (const s of set ?? []) {
            if (s.prepared === null) continue;
            s.prepared = null;
            prepareLater(s);
          }
          return { kind: 'done' };
        }
        case 'get_document':
          answerDocument(link, cmd.epoch, cmd.chunk);
          return { kind: 'done' };
        case 'mailbox_request': {
          // A gateway whose mailboxes keep no aliases holds none: every registration is over its limit.
          const result = mailbox.requestMailbox?.(link.remoteStatic, cmd.action, cmd.mailbox) ?? (cmd.action === 'register' ? 'limit' : 'ok');
          init.mailboxRequests?.inc({ action: cmd.action, result });
          reply(link, { kind: 'mailbox_reply', action: cmd.action, mailbox: cmd.mailbox, result });
          return { kind: 'done' };
        }
        default:
          return { kind: 'drop', reason: 'unexpected_command' };
      }
    },
  };
}
