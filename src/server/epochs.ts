/**
 * Which epochs' mix keys a node tries on a packet, and which it keeps loaded. A sender builds a
 * packet with the keys of the document it holds; near a boundary that may be the epoch just
 * ended or the one about to begin, so a node accepts its neighbour's key for a quarter epoch on
 * each side (Katzenpost's servers allow the same slack around an epoch change).
 */

/** How long into an epoch the previous epoch's key is still accepted, and how long before its end the next one's is, as a fraction of the period. */
export const KEY_GRACE_FRACTION = 1 / 4;

/** The epochs whose keys a packet arriving at `now` may use: the current one first, and a neighbour near a boundary. */
export function acceptedEpochs(now: number, periodMs: number): number[] {
  const e = Math.floor(now / periodMs);
  const into = now - e * periodMs;
  const grace = KEY_GRACE_FRACTION * periodMs;
  if (into < grace) return [e, e - 1];
  if (into > periodMs - grace) return [e, e + 1];
  return [e];
}

/** The epochs whose keys a node keeps loaded at `now`: those accepted, and the next one, ready before it is needed. */
export function loadedEpochs(now: number, periodMs: number): Set<number> {
  const want = new Set(acceptedEpochs(now, periodMs));
  want.add(Math.floor(now / periodMs) + 1);
  return want;
}
