/**
 * The intake limits: how many entries a gateway stores for one mailbox address, per second and in
 * a burst, derived from the network's rates (document parameters), so that every gateway and
 * every client reads the same rule from the document.
 *
 * A gateway refuses an entry past its address's bucket (src/server/rate-limit.ts, `intake_limited`,
 * not acknowledged), so that a flooded address's queue stays short. A client has three kinds of
 * address at its gateway, each with its own bucket:
 * - its *main mailbox* (its link public key: the address anyone it ever wrote to or gave it to
 *   knows) takes half the fetch rate (15/s at the defaults), with 10 s of that as a burst (150);
 * - an *extra mailbox* (one contact's) a third of it (10/s), with 20 s of it (200). Those rates sit
 *   below the fetch rate: a client's fetches are shared round-robin by its addresses that hold
 *   entries (src/server/fetch.ts), so an address gets at least half of them while at most one
 *   other is busy;
 * - its *own mailbox* (`ownMailbox`, below), the recipient of every SURB it makes: the
 *   acknowledgements of its fragments and of its loops, its rendezvous answers, and anonymous
 *   replies through the SURBs it gave out. The gateway takes SURB replies only there (forward
 *   mail for it is dropped as `unknown_recipient`), so nobody can fill it beyond the SURBs the
 *   client made (a SURB is used once: the mixes refuse a replay), and the id routes to its owner
 *   before any extra mailbox (a gateway answers `taken` to anyone who registers it). Its bucket is
 *   send rate + 2 × loop rate (30/s at the defaults) with 10 s of it (300): an acknowledgement or
 *   answer per send tick, a loop's acknowledgement per loop tick, and room for replies.
 *
 * The loops themselves still come to the main mailbox: there they are forward mail like a first
 * contact's, so the gateway cannot count its client's first-contact mail exactly (the loops are
 * a Poisson process beside it). What the own mailbox separates (SURB replies from forward mail)
 * the gateway sees in each entry anyway.
 *
 * The cost (docs/network.md, "Flood limits"): whoever knows an address can use up its intake,
 * never more. An honest sender never meets them: the client engine paces all its real fragments
 * by `senderPace` (src/client/client.ts), so that only a flood is refused. That matters beyond
 * speed: a refused entry is not acknowledged, so the acknowledgement that would have taken the
 * place of the gateway's cover packet (to a random gateway) is missing, and the gateways' counts
 * of packets from layer 3 then move with real mail (docs/anonymity.md, "Runs O to S").
 */
import type { CryptoBackend } from '../crypto/types.js';

export const INTAKE_MAILBOX_SHARE = 1 / 2;
export const INTAKE_MAILBOX_BURST_S = 10;
export const INTAKE_ALIAS_SHARE = 1 / 3;
export const INTAKE_ALIAS_BURST_S = 20;
export const INTAKE_OWN_BURST_S = 10;
/** The least intake burst, whatever the rate. */
export const MIN_INTAKE_BURST = 20;

export interface IntakeBucket {
  /** Entries a second. */
  readonly perSecond: number;
  /** Entries taken at once after a quiet spell. */
  readonly burst: number;
}

/** The document's rates the intake rule reads. */
export interface IntakeParams {
  readonly fetchRatePerS: number;
  readonly sendRatePerS: number;
  readonly loopRatePerS: number;
}

export interface IntakeRates {
  readonly mailbox: IntakeBucket;
  readonly alias: IntakeBucket;
  readonly own: IntakeBucket;
}

/** The intake buckets of a network with these rates: the main mailbox's, an extra mailbox's and the own mailbox's. */
export function intakeRates(params: IntakeParams): IntakeRates {
  const bucket = (perS: number, burstS: number): IntakeBucket => {
    const perSecond = Math.max(1, perS);
    return { perSecond, burst: Math.max(MIN_INTAKE_BURST, Math.ceil(burstS * perSecond)) };
  };
  return {
    mailbox: bucket(INTAKE_MAILBOX_SHARE * params.fetchRatePerS, INTAKE_MAILBOX_BURST_S),
    alias: bucket(INTAKE_ALIAS_SHARE * params.fetchRatePerS, INTAKE_ALIAS_BURST_S),
    own: bucket(params.sendRatePerS + 2 * params.loopRatePerS, INTAKE_OWN_BURST_S),
  };
}

/** The share of a recipient's intake that a sender takes: a margin for chance. */
export const SENDER_PACE_SHARE = 0.9;

/**
 * What a sender allows itself in real fragments, per second and at once, whatever their
 * addresses: SENDER_PACE_SHARE of the least room a recipient's address has (a sender cannot tell
 * a main mailbox from an extra one): an extra mailbox's intake, or a main one's less its owner's
 * loops (0.9 × min(10, 15 − 5) = 9/s at the defaults), with half the smaller burst (75) at once,
 * which a bucket refilling while it is spent takes with room to spare. Each fragment's
 * acknowledgement comes to the sender's own mailbox, whose bucket has room for one per send tick.
 * At least one a second (a network whose loops fill the main intake refuses some of them whatever
 * the sender does).
 */
export function senderPace(params: IntakeParams): IntakeBucket {
  const { mailbox, alias } = intakeRates(params);
  const room = Math.min(alias.perSecond, mailbox.perSecond - params.loopRatePerS);
  return { perSecond: Math.max(1, SENDER_PACE_SHARE * room), burst: Math.max(1, Math.floor(Math.min(mailbox.burst, alias.burst) / 2)) };
}

/** The key of the own mailbox's derivation. */
const OWN_MAILBOX_KEY = new TextEncoder().encode('backchannel own mailbox v1');

/**
 * A client's own mailbox id: HMAC-SHA-256, keyed with a fixed label, of its main mailbox id (its
 * link public key). The gateway derives it when the client registers, so no request names it;
 * anyone can compute it, which gives nothing: it takes only SURB replies, which only SURBs its
 * owner made can produce, and nobody can register it as an extra mailbox.
 */
export function ownMailbox(crypto: Pick<CryptoBackend, 'hmacSha256'>, main: Uint8Array): Uint8Array {
  return crypto.hmacSha256(OWN_MAILBOX_KEY, main);
}
