/**
 * The gateway's final stage: what becomes of a packet whose last hop is this gateway. It decides
 * and returns an action; the node carries it out (commit the entry, then send the
 * acknowledgement), so that nothing here reaches back into the node.
 *
 * - A packet for the all-zero mailbox is a client's drop cover (Loopix): it ends here, counted.
 * - A packet for one of a client's extra mailboxes goes into that client's queue, tagged with the
 *   extra mailbox; one for a revoked extra mailbox is dropped (`mailbox_revoked`), never
 *   acknowledged, so that its sender learns nothing was stored.
 * - A SURB reply is stored as it arrived, with its SURB id, for the client to decrypt.
 * - A forward payload is read (src/sphinx/payload.ts); its body is stored, and the SURB it carries
 *   becomes the acknowledgement, sent only once the entry is committed.
 * - A packet for the rendezvous recipient (src/messaging/rendezvous.ts) is a request to the
 *   gateway's rendezvous service: nothing is stored; the service's answer goes back through the
 *   request's SURB, in the emission slot the acknowledgement would have taken.
 */
import type { DropReason } from '../ops/metrics.js';
import type { PacketFormat } from '../sphinx/format.js';
import { decodeForwardPayload } from '../sphinx/payload.js';
import { RENDEZVOUS_RECIPIENT, encodeRendezvousAnswer } from '../messaging/rendezvous.js';
import { equalBytes, isZero } from '../util/bytes.js';
import type { MailboxEntry, MailboxStore } from './mailbox.js';
import type { RendezvousOutcome, RendezvousService } from './rendezvous.js';
import type { UnwrapOutcome } from './unwrap.js';

export type FinalOutcome = Extract<UnwrapOutcome, { kind: 'final' }>;

/** What follows a committed store: an acknowledgement to send into layer 1, or a drop to count. */
export type AfterStore = { readonly kind: 'ack'; readonly packet: Uint8Array; readonly firstHop: Uint8Array } | { readonly kind: 'drop'; readonly reason: DropReason };

/** What the node does with a final packet: drop it, store it (then perhaps acknowledge), or send a rendezvous answer. */
export type FinalAction =
  | { readonly kind: 'drop'; readonly reason: DropReason }
  | { readonly kind: 'store'; readonly entry: MailboxEntry; readonly then: AfterStore | null }
  | { readonly kind: 'answer'; readonly then: Extract<AfterStore, { kind: 'ack' }> };

/** The rendezvous service as the final stage uses it, with a counter of what became of each request. */
export interface FinalRendezvous {
  readonly service: Pick<RendezvousService, 'handle'>;
  readonly counted?: (outcome: RendezvousOutcome) => void;
}

/** Most packets that end at a gateway are drop cover: one action for all of them. */
const DROP_COVER: FinalAction = Object.freeze({ kind: 'drop', reason: 'drop_cover' });

/** The final stage of a gateway: reads a final outcome against the mailboxes it keeps. */
export function finalStage(
  format: PacketFormat,
  mailbox: Pick<MailboxStore, 'route'>,
  rendezvous?: FinalRendezvous,
  /** The per-mailbox intake limit (src/pki/intake.ts), by the kind of address: false drops the entry (`intake_limited`, never acknowledged). */
  intake?: (addressed: Uint8Array, kind: 'client' | 'alias' | 'own') => boolean,
): (outcome: FinalOutcome) => FinalAction {
  const g = format.geometry;
  return (outcome) => {
    const recipient = outcome.recipient;
    if (isZero(recipient)) return DROP_COVER;
    if (rendezvous !== undefined && equalBytes(recipient, RENDEZVOUS_RECIPIENT)) return rendezvousAction(format, rendezvous, outcome);
    const route = mailbox.route(recipient);
    if (route.kind === 'unknown') return { kind: 'drop', reason: 'unknown_recipient' };
    if (route.kind === 'alias' && route.revoked) return { kind: 'drop', reason: 'mailbox_revoked' };
    // An own mailbox takes SURB replies only (src/pki/intake.ts): anyone can compute its id, so
    // forward mail for it would pass a bucket sized for its owner's own traffic.
    if (route.kind === 'own' && outcome.surbId === null) return { kind: 'drop', reason: 'unknown_recipient' };
    if (intake !== undefined && !intake(recipient, route.kind)) return { kind: 'drop', reason: 'intake_limited' };
    // The owner's queue, and the extra or own mailbox the entry came to (none for the main one).
    const queue = route.kind === 'client' ? recipient.slice() : route.owner.slice();
    const tag = route.kind === 'client' ? null : recipient.slice();
    if (outcome.surbId !== null) {
      return { kind: 'store', entry: { recipient: queue, surbId: outcome.surbId.slice(), payload: outcome.payload, mailbox: tag }, then: null };
    }
    let surb: Uint8Array | null;
    let body: Uint8Array;
    try {
      const p = decodeForwardPayload(g, outcome.payload);
      surb = p.surb;
      body = p.body.slice();
    } catch {
      return { kind: 'drop', reason: 'bad_payload' };
    }
    let then: AfterStore | null = null;
    if (surb !== null) {
      try {
        // The acknowledgement carries an all-zero payload: it says only "stored".
        then = { kind: 'ack', ...format.createPacketFromSurb(surb, new Uint8Array(g.forwardPayloadLength)) };
      } catch {
        // A SURB that does not open: the body is still stored; the sender will retransmit.
        then = { kind: 'drop', reason: 'bad_payload' };
      }
    }
    return { kind: 'store', entry: { recipient: queue, surbId: null, payload: body, mailbox: tag }, then };
  };
}

/** A rendezvous request: the service's answer, made into a packet through the request's SURB. */
function rendezvousAction(format: PacketFormat, rendezvous: FinalRendezvous, outcome: FinalOutcome): FinalAction {
  const g = format.geometry;
  if (outcome.surbId !== null) return { kind: 'drop', reason: 'rendezvous_bad' };
  let surb: Uint8Array | null;
  let body: Uint8Array;
  try {
    ({ surb, body } = decodeForwardPayload(g, outcome.payload));
  } catch {
    return { kind: 'drop', reason: 'bad_payload' };
  }
  if (surb === null) return { kind: 'drop', reason: 'rendezvous_bad' };
  const { answer, outcome: what } = rendezvous.service.handle(body);
  rendezvous.counted?.(what);
  try {
    return { kind: 'answer', then: { kind: 'ack', ...format.createPacketFromSurb(surb, encodeRendezvousAnswer(answer, g.forwardPayloadLength)) } };
  } catch {
    return { kind: 'drop', reason: 'bad_payload' };
  }
}
