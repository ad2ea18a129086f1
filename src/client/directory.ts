/**
 * The client's directory, through its gateway (docs/client.md): which signed document to ask for
 * on a fetch tick, and the reassembly and verification of the chunks that come back.
 *
 * The client never talks to an authority: it sends `get_document{epoch, chunk}` in place of one
 * `retrieve_message` on its fetch clock (the engine decides the tick, this decides the request),
 * one request in flight at a time, and the gateway answers each with one `document` frame. So the
 * link carries the same frames at the same times whether the client needs a document or not. The
 * gateway is not trusted with the document: the whole of it is verified against the authorities
 * the client trusts (a threshold of their signatures), as a document fetched from them would be.
 *
 * Which epochs are wanted, as the server's follower does with the authorities (pki/follower.ts):
 * the current epoch's (or, with no usable document, the previous one's, which stays usable to the
 * end of the current epoch), and the next epoch's from 3/4 of the epoch, when authorities publish
 * it. An epoch the gateway has no document for, or whose chunks were bad, is asked for again after
 * a poll interval, not on every tick.
 *
 * Portable: no `node:` imports.
 */
import { BackchannelError, isBackchannelError } from '../errors.js';
import { MAX_SIGNED_DOCUMENT_LENGTH, epochAt, epochStart, verifySignedDocument } from '../pki/document.js';
import type { Ed25519 } from '../pki/ed25519.js';
import type { AuthorityInfo, SignedDocument } from '../pki/types.js';
import { concatBytes } from '../util/bytes.js';
import type { WireCommand } from '../wire/commands.js';

/** The authorities whose signatures a document needs, and how many. */
export interface DirectoryTrust {
  readonly authorities: readonly AuthorityInfo[];
  /** Valid signatures by distinct listed authorities a document needs. */
  readonly threshold: number;
  readonly ed: Ed25519;
}

/** The next epoch's document is published from 3/4 of an epoch (docs/directory.md); ask for it from then. */
export const NEXT_DOCUMENT_FROM = 3 / 4;
/**
 * How long a request may go unanswered before it counts as lost: the gateway answers at once, so
 * this only waits out a link that is slow or a gateway that does not relay the directory; the
 * server's follower gives an authority as long (pki/client.ts DEFAULT_TIMEOUT_MS).
 */
export const ANSWER_TIMEOUT_MS = 5_000;
/** Retries of an epoch, as the follower polls the authorities: period/20, kept within [500 ms, 10 s]. */
const RETRIES_PER_EPOCH = 20;
const MIN_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;

/** The delay before an epoch that failed is asked for again. */
export function retryDelayMs(periodMs: number): number {
  return Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, Math.floor(periodMs / RETRIES_PER_EPOCH)));
}

/** What one `document` answer did. */
export type DirectoryAnswer =
  /** A whole document, verified: use it (the engine decides when). */
  | { readonly kind: 'document'; readonly signed: SignedDocument }
  /** A good chunk; more to come. */
  | { readonly kind: 'partial' }
  /** The gateway holds no document for that epoch. */
  | { readonly kind: 'unavailable'; readonly epoch: number }
  /** Not the answer to the request in flight (a late one): ignored. */
  | { readonly kind: 'ignored' }
  /** A bad chunk or a document that fails verification: dropped, counted, asked for again later. */
  | { readonly kind: 'invalid'; readonly error: BackchannelError };

/** Counters of the directory's traffic, for status. */
export interface DirectoryCounts {
  /** Verified documents received. */
  documents: number;
  /** "Not available" answers. */
  unavailable: number;
  /** Bad chunks and documents that failed verification. */
  invalid: number;
  /** Requests that got no answer in time. */
  timeouts: number;
}

interface Reassembly {
  readonly epoch: number;
  readonly total: number;
  readonly parts: Uint8Array[];
  length: number;
}

function directoryError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_DIRECTORY', `client: directory: ${message}`);
}

/**
 * The client's side of getting documents from its gateway.
 * @example
 *   const dir = new GatewayDirectory({ authorities, threshold, ed });
 *   const ask = dir.request(now, inUse, upcoming, periodMs); // on a fetch tick: send get_document instead of a fetch
 *   const r = dir.answer(cmd, now, periodMs, codec.documentChunkLength); // for each `document` received
 */
export class GatewayDirectory {
  readonly counts: DirectoryCounts = { documents: 0, unavailable: 0, invalid: 0, timeouts: 0 };
  readonly #trust: DirectoryTrust;
  /** Epochs not to ask for before the time given (they failed). */
  readonly #retryAt = new Map<number, number>();
  #asked: { readonly epoch: number; readonly chunk: number; readonly at: number } | null = null;
  #partial: Reassembly | null = null;

  constructor(trust: DirectoryTrust) {
    if (!Array.isArray(trust.authorities) || trust.authorities.length === 0) throw new RangeError('"authorities" expected a non-empty array');
    if (!Number.isInteger(trust.threshold) || trust.threshold < 1 || trust.threshold > trust.authorities.length) {
      throw new RangeError(`"threshold" expected an integer in [1, ${trust.authorities.length}]`);
    }
    this.#trust = trust;
  }

  /** The epochs wanted now, most wanted first. */
  #wanted(now: number, inUse: SignedDocument | null, upcoming: SignedDocument | null, periodMs: number): number[] {
    const cur = epochAt(now, periodMs);
    if (inUse === null) return cur > 0 ? [cur, cur - 1] : [cur];
    const have = inUse.document.epoch;
    if (upcoming !== null && upcoming.document.epoch === cur) return [];
    // An expired document (older than the previous epoch's) is worse than the previous epoch's.
    if (have < cur) return have < cur - 1 ? [cur, cur - 1] : [cur];
    if (have === cur && upcoming === null && now >= epochStart(cur, periodMs) + NEXT_DOCUMENT_FROM * periodMs) return [cur + 1];
    return [];
  }

  /**
   * The request to send on this fetch tick in place of a `retrieve_message`, or null (then the
   * tick fetches the mailbox as usual). At most one request is in flight.
   */
  request(now: number, inUse: SignedDocument | null, upcoming: SignedDocument | null, periodMs: number): { readonly epoch: number; readonly chunk: number } | null {
    const asked = this.#asked;
    if (asked !== null) {
      if (now - asked.at < ANSWER_TIMEOUT_MS) return null;
      this.counts.timeouts++;
      this.#asked = null;
      this.#retryAt.set(asked.epoch, now + retryDelayMs(periodMs));
    }
    const cur = epochAt(now, periodMs);
    for (const [e, at] of this.#retryAt) if (e < cur - 1 || at <= now) this.#retryAt.delete(e);
    const epoch = this.#wanted(now, inUse, upcoming, periodMs).find((e) => !this.#retryAt.has(e));
    if (epoch === undefined) return null;
    if (this.#partial !== null && this.#partial.epoch !== epoch) this.#partial = null;
    const chunk = this.#partial?.parts.length ?? 0;
    this.#asked = { epoch, chunk, at: now };
    return { epoch, chunk };
  }

  /** The link went down: the request in flight is lost (the chunks already had are kept). */
  linkLost(): void {
    this.#asked = null;
  }

  #fail(epoch: number, now: number, periodMs: number, error: BackchannelError): DirectoryAnswer {
    this.#partial = null;
    this.counts.invalid++;
    this.#retryAt.set(epoch, now + retryDelayMs(periodMs));
    return { kind: 'invalid', error };
  }

  /**
   * Takes one `document` answer. Never throws for what the gateway sent: a bad chunk or a document
   * that fails verification comes back as `invalid` (ERR_CLIENT_DIRECTORY, or the ERR_PKI_* code
   * of the verification).
   */
  answer(cmd: Extract<WireCommand, { kind: 'document' }>, now: number, periodMs: number, chunkLength: number): DirectoryAnswer {
    const asked = this.#asked;
    if (asked === null || asked.epoch !== cmd.epoch || asked.chunk !== cmd.chunk) return { kind: 'ignored' };
    this.#asked = null;
    const epoch = cmd.epoch;
    if (!cmd.available) {
      this.counts.unavailable++;
      this.#partial = null;
      this.#retryAt.set(epoch, now + retryDelayMs(periodMs));
      return { kind: 'unavailable', epoch };
    }
    let partial = this.#partial;
    if (cmd.chunk === 0) partial = this.#partial = { epoch, total: cmd.total, parts: [], length: 0 };
    if (partial === null || partial.epoch !== epoch || partial.parts.length !== cmd.chunk) return this.#fail(epoch, now, periodMs, directoryError('a chunk out of order'));
    if (partial.total !== cmd.total) return this.#fail(epoch, now, periodMs, directoryError('the chunk count changed between chunks'));
    const last = cmd.chunk === cmd.total - 1;
    if (!last && cmd.data.length !== chunkLength) return this.#fail(epoch, now, periodMs, directoryError('a chunk before the last is not full'));
    if (partial.length + cmd.data.length > MAX_SIGNED_DOCUMENT_LENGTH) return this.#fail(epoch, now, periodMs, directoryError('the document is longer than a signed document may be'));
    partial.parts.push(cmd.data.slice());
    partial.length += cmd.data.length;
    if (!last) return { kind: 'partial' };
    this.#partial = null;
    let signed: SignedDocument;
    try {
      signed = verifySignedDocument(concatBytes(...partial.parts), { ...this.#trust, epoch });
    } catch (err) {
      return this.#fail(epoch, now, periodMs, isBackchannelError(err) ? err : directoryError('the document cannot be verified'));
    }
    this.#retryAt.delete(epoch);
    this.counts.documents++;
    return { kind: 'document', signed };
  }
}
