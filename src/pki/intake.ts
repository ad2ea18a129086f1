/**
 * The intake limits: how many entries a gateway stores for one mailbox address, per second and in
 * a burst, derived from the network's fetch rate (a document parameter), so that every gateway
 * and every client reads the same rule from the document.
 *
 * A gateway refuses an entry past its address's bucket (src/server/rate-limit.ts, `intake_limited`,
 * not acknowledged), so that a flooded address's queue stays short: the rates sit below the rate
 * at which the address's client fetches. A client's fetches are shared round-robin by its
 * addresses that hold entries (src/server/fetch.ts), so an address gets at least half of them
 * while at most one other is busy: the main mailbox (the address anyone it ever wrote to or gave
 * it to knows) takes half the fetch rate (15/s at the defaults), with 10 s of that as a burst
 * (150); an extra mailbox (one contact's) a third (10/s) with 20 s of it (200). The cost
 * (docs/network.md, "Flood limits"): whoever knows an address can use up its intake, never more;
 * and a client's own acknowledgements and loops come back to its main mailbox at 2 × loop rate +
 * its real fragments' rate, which bounds how fast it may send (below).
 *
 * An honest sender never meets them: the client engine paces all its real fragments by
 * `senderPace` (src/client/client.ts), so that only a flood is refused. That matters beyond
 * speed: a refused entry is not acknowledged, so the acknowledgement that would have taken the
 * place of the gateway's cover packet (to a random gateway) is missing, and the gateways' counts
 * of packets from layer 3 then move with real mail (docs/anonymity.md, "Runs O to S").
 */

export const INTAKE_MAILBOX_SHARE = 1 / 2;
export const INTAKE_MAILBOX_BURST_S = 10;
export const INTAKE_ALIAS_SHARE = 1 / 3;
export const INTAKE_ALIAS_BURST_S = 20;
/** The least intake burst, whatever the rate. */
export const MIN_INTAKE_BURST = 20;

export interface IntakeBucket {
  /** Entries a second. */
  readonly perSecond: number;
  /** Entries taken at once after a quiet spell. */
  readonly burst: number;
}

/** The intake buckets of a network with this fetch rate: the main mailbox's and an extra mailbox's. */
export function intakeRates(fetchRatePerS: number): { readonly mailbox: IntakeBucket; readonly alias: IntakeBucket } {
  const bucket = (share: number, burstS: number): IntakeBucket => {
    const perSecond = Math.max(1, share * fetchRatePerS);
    return { perSecond, burst: Math.max(MIN_INTAKE_BURST, Math.ceil(burstS * perSecond)) };
  };
  return { mailbox: bucket(INTAKE_MAILBOX_SHARE, INTAKE_MAILBOX_BURST_S), alias: bucket(INTAKE_ALIAS_SHARE, INTAKE_ALIAS_BURST_S) };
}

/** The share of the room left in a main mailbox's intake that a sender takes: a margin for chance. */
export const SENDER_PACE_SHARE = 0.9;

/**
 * What a sender allows itself in real fragments, per second and at once, whatever their
 * addresses. Two mailboxes bound it, and both are main mailboxes at their worst (a sender cannot
 * tell an extra mailbox from a main one): the recipient's, and the sender's own, where each
 * fragment's acknowledgement comes. Each also takes its owner's loops and their acknowledgements
 * (2 × loop rate), so a sender keeps to SENDER_PACE_SHARE of what the main intake leaves beyond
 * them (4.5/s at the defaults: 0.9 × (15 − 10)), with half the main burst (75) at once, which
 * a main bucket refilling while it is spent takes with room to spare. At least one a second
 * (a network whose loops alone fill the intake refuses some of them whatever the sender does).
 */
export function senderPace(params: { readonly fetchRatePerS: number; readonly loopRatePerS: number }): IntakeBucket {
  const { mailbox } = intakeRates(params.fetchRatePerS);
  const room = mailbox.perSecond - 2 * params.loopRatePerS;
  return { perSecond: Math.max(1, SENDER_PACE_SHARE * room), burst: Math.max(1, Math.floor(mailbox.burst / 2)) };
}
