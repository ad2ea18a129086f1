/**
 * A gateway's client sessions: the commands its clients send besides packets. A client links with
 * Noise XK; its static key names its mailbox. The node hands every command from a client link
 * here and gets back what to do with it; a fetch is answered here, on the client's own link.
 *
 * A client fetches with `retrieve_message{n}`: the entries below n are deleted (the client holds
 * them), and the answer is exactly one `message`, the oldest entry from n on or an empty one, so
 * that every fetch looks the same on the link. Answering only reads: the deletion is recorded in
 * memory and committed later, off this thread (gateway-mailbox.ts), so that an answer takes the
 * same time whether the mailbox holds mail, the fetch deleted some, or deliveries are committing.
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
import type { RateLimiter } from './rate-limit.js';
import { idKey } from '../util/bytes.js';

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
  /** The `retrieve_message` sequence it answers. */
  readonly sequence: number;
  readonly frame: Uint8Array;
  readonly empty: boolean;
  /** The sequence the client's next fetch will carry once it holds this answer. */
  readonly next: number;
}

/** One client link's state: its prepared answer, and whether one is being made. */
interface Session {
  readonly link: MessageLink;
  readonly key: string;
  prepared: Prepared | null;
  /** The sequence the next fetch is expected to carry (the answer to it is made ahead). */
  expected: number;
  scheduled: boolean;
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

  /** Reads and encodes the answer to `retrieve_message{sequence}` from the mailbox as it is now. */
  function makeAnswer(recipient: Uint8Array, sequence: number): Prepared {
    const entry = sequence > 0 ? mailbox.peek(recipient, sequence - 1) : mailbox.peek(recipient);
    const answer: WireCommand =
      entry === null
        ? { kind: 'message', sequence, queueHint: 0, empty: true, surbId: null, payload: new Uint8Array(0) }
        : { kind: 'message', sequence: entry.seq, queueHint: Math.min(entry.remaining, 0xffffffff), empty: false, surbId: entry.surbId, payload: entry.payload, mailbox: entry.mailbox ?? null };
    return { sequence, frame: codec.encode(answer), empty: entry === null, next: entry === null ? sequence : entry.seq + 1 };
  }

  /** Makes the session's next answer in a later turn, unless that is already asked for. */
  function prepareLater(s: Session): void {
    if (s.scheduled) return;
    s.scheduled = true;
    schedule(() => {
      s.scheduled = false;
      if (!s.link.isOpen) return;
      try {
        s.prepared = makeAnswer(s.link.remoteStatic, s.expected);
      } catch {
        // A read that failed: the fetch builds its answer itself (and meets the error there).
        s.prepared = null;
      }
    });
  }

  function session(link: MessageLink): Session {
    let s = sessions.get(link);
    if (s === undefined) {
      s = { link, key: idKey(link.remoteStatic), prepared: null, expected: -1, scheduled: false };
      sessions.set(link, s);
      let set = byRecipient.get(s.key);
      if (set === undefined) byRecipient.set(s.key, (set = new Set()));
      set.add(s);
    }
    return s;
  }

  function answerFetch(link: MessageLink, sequence: number): void {
    const recipient = link.remoteStatic;
    if (sequence > 0 && !mailbox.deleteBelow(recipient, sequence)) deletionsRefused.inc();
    const s = session(link);
    // The prepared answer read the mailbox after the previous answer: entries from `sequence` on
    // are the same now, unless one came since (then it was made again) or was deleted by an `ack`
    // (then it was dropped). Deleting below `sequence` does not change what it holds.
    const ready = s.prepared !== null && s.prepared.sequence === sequence ? s.prepared : null;
    s.prepared = null;
    const answer = ready ?? makeAnswer(recipient, sequence);
    fetches.inc({ result: answer.empty ? 'empty' : 'message' });
    sendFrame(link, answer.frame);
    // The client's next fetch asks from after the entry it now holds, or again from here.
    s.expected = answer.next;
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
        if (s.prepared !== null && s.prepared.empty) {
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
