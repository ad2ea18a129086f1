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
 *
 * A client gets the directory here too, never from the authorities: `get_document{epoch, chunk}`
 * (sent in place of a fetch, on the same clock) is answered with exactly one `document` frame,
 * a chunk of the signed document the gateway's own follower fetched and verified, or "not
 * available" when it holds none for that epoch.
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

/** What the node does with one command from a client. */
export type ClientAction = { readonly kind: 'unwrap'; readonly packet: Uint8Array } | { readonly kind: 'done' } | { readonly kind: 'drop'; readonly reason: DropReason };

/** The part of a gateway that serves its clients' links. */
export interface ClientSessions {
  /** A client's link opened: its mailbox exists from now on. */
  opened(link: MessageLink): void;
  /** Client links open now (the gateway's emission rate follows it; the wire shows it anyway). */
  linked(): number;
  /** One command from a client (not `noop` or `disconnect`, which the node handles for every link). */
  command(link: MessageLink, cmd: WireCommand): ClientAction;
}

export interface ClientSessionsInit {
  readonly mailbox: FetchMailbox;
  readonly limiter: RateLimiter;
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
  /** Deletions refused because too many wait for a commit (the entries are handed out again; clients ignore what they hold). */
  readonly deletionsRefused: Counter;
}

/** The sessions of a gateway's clients over its mailbox store. */
export function clientSessions(init: ClientSessionsInit): ClientSessions {
  const { mailbox, limiter, codec, fetches, deletionsRefused } = init;
  /** The client links opened and not yet seen closed; closed ones are swept when counted. */
  const links = new Set<MessageLink>();
  // The container bytes of each document served, made once: the follower hands out the same
  // object for an epoch, and a document no longer held is collected with its bytes.
  const containers = new WeakMap<SignedDocument, Uint8Array>();

  function reply(link: MessageLink, cmd: WireCommand): void {
    const frame = codec.encode(cmd);
    try {
      if (!link.trySend(frame)) void link.send(frame).catch(() => undefined);
    } catch {
      // the link closed; the client asks again
    }
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

  function answerFetch(link: MessageLink, sequence: number): void {
    const recipient = link.remoteStatic;
    if (sequence > 0 && !mailbox.deleteBelow(recipient, sequence)) deletionsRefused.inc();
    const entry = sequence > 0 ? mailbox.peek(recipient, sequence - 1) : mailbox.peek(recipient);
    const answer: WireCommand =
      entry === null
        ? { kind: 'message', sequence, queueHint: 0, empty: true, surbId: null, payload: new Uint8Array(0) }
        : { kind: 'message', sequence: entry.seq, queueHint: Math.min(entry.remaining, 0xffffffff), empty: false, surbId: entry.surbId, payload: entry.payload };
    fetches.inc({ result: entry === null ? 'empty' : 'message' });
    reply(link, answer);
  }

  return {
    opened(link) {
      mailbox.register(link.remoteStatic);
      links.add(link);
    },
    linked() {
      for (const l of links) if (!l.isOpen) links.delete(l);
      return links.size;
    },
    command(link, cmd) {
      switch (cmd.kind) {
        case 'send_packet':
          return limiter.take(link.remoteStatic) ? { kind: 'unwrap', packet: cmd.packet } : { kind: 'drop', reason: 'rate_limited' };
        case 'retrieve_message':
          answerFetch(link, cmd.sequence);
          return { kind: 'done' };
        case 'ack':
          if (!mailbox.deleteOne(link.remoteStatic, cmd.sequence)) deletionsRefused.inc();
          return { kind: 'done' };
        case 'get_document':
          answerDocument(link, cmd.epoch, cmd.chunk);
          return { kind: 'done' };
        default:
          return { kind: 'drop', reason: 'unexpected_command' };
      }
    },
  };
}
