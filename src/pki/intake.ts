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
 * and a client's own acknowledgements and loops come back to its main mailbox at up to 2 × loop
 * rate + its real fragments' rate, so that past the main burst of sending flat out some are
 * refused and the fragments they acknowledge are sent again.
 *
 * An honest sender never meets them: the client engine paces its real fragments to any one
 * address within `senderPace` (src/client/client.ts), the smaller of the two buckets, so that only
 * a flood is refused. That matters beyond speed: a refused entry is not acknowledged, so the
 * acknowledgement that would have taken the place of the gateway's cover packet (to a random
 * gateway) is missing, and the gateways' counts of packets from layer 3 then move with real mail
 * (docs/anonymity.md, run Q).
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

/**
 * What a sender allows itself to one address: the smaller rate and the smaller burst of the two
 * buckets (a sender cannot tell a main mailbox from an extra one). Its bucket then never holds
 * more than the gateway's for that address, which is taken later (a packet crosses the mixes
 * first) and refills at the same rate or faster.
 */
export function senderPace(fetchRatePerS: number): IntakeBucket {
  const { mailbox, alias } = intakeRates(fetchRatePerS);
  return { perSecond: Math.min(mailbox.perSecond, alias.perSecond), burst: Math.min(mailbox.burst, alias.burst) };
}
