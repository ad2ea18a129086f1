/**
 * Documents for tests that build packets by hand: a consensus of the current epoch that names the
 * nodes a test routes through, taken early enough that every hop still holds the epoch's key when
 * the test's packets arrive. A test that used the document from start-up instead could find, by
 * the time it sent, that the epoch had moved on and the nodes had dropped that key (the packets
 * then fail their MAC at the first hop), or that the first document lacked a node that had
 * started late.
 */
import { epochStart } from '../../src/pki/document.js';
import type { DocumentNode, SignedDocument } from '../../src/pki/types.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { waitForDocument } from '../../src/local/up.js';
import { KEY_GRACE_FRACTION } from '../../src/server/epochs.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for a document of the current epoch that lists `names`, with at least `minRemainingMs`
 * before the nodes stop accepting its keys (a quarter epoch after it ends).
 * @throws Error when none comes within `timeoutMs`, saying what was missing.
 */
export async function usableDocument(
  net: RunningLocalNetwork,
  names: readonly string[],
  opts: { readonly minRemainingMs: number; readonly timeoutMs?: number },
): Promise<SignedDocument> {
  const period = net.networkFile.params.epochPeriodMs;
  if (opts.minRemainingMs >= period) throw new RangeError('"minRemainingMs" expected less than one epoch');
  const deadline = Date.now() + (opts.timeoutMs ?? 3 * period + 10_000);
  for (;;) {
    const doc = await waitForDocument(net.networkFile, deadline, names);
    if (keysUsableUntil(doc, period) - Date.now() >= opts.minRemainingMs) return doc;
    if (Date.now() >= deadline) throw new Error(`test: no document with ${opts.minRemainingMs} ms of its keys left in time`);
    // Too late in this epoch: wait for the next one's document.
    await sleep(Math.max(0, epochStart(doc.document.epoch + 1, period) - Date.now()) + 50);
  }
}

/**
 * Builds packets with a usable document (see usableDocument) and returns them once at least
 * `minRemainingMs` of their keys' lifetime is left after building: on a loaded machine building
 * many packets takes seconds, and packets sent after their keys expire are dropped as bad_packet.
 * Builds again from a newer document when too little is left, at most `attempts` times.
 * @throws Error when no attempt leaves enough time.
 */
export async function buildInTime<T>(
  net: RunningLocalNetwork,
  names: readonly string[],
  minRemainingMs: number,
  build: (doc: SignedDocument) => T,
  attempts = 3,
): Promise<{ readonly doc: SignedDocument; readonly built: T; readonly keysUntil: number }> {
  const period = net.networkFile.params.epochPeriodMs;
  for (let i = 1; ; i++) {
    const doc = await usableDocument(net, names, { minRemainingMs: Math.min(period - 1, 2 * minRemainingMs) });
    const built = build(doc);
    const keysUntil = keysUsableUntil(doc, period);
    if (keysUntil - Date.now() >= minRemainingMs) return { doc, built, keysUntil };
    if (i >= attempts) throw new Error(`test: building the packets left less than ${minRemainingMs} ms of their keys' lifetime, ${attempts} times`);
  }
}

/** When the nodes stop accepting packets built with `doc`'s keys: a grace period after its epoch ends. */
export function keysUsableUntil(doc: SignedDocument, periodMs: number): number {
  return epochStart(doc.document.epoch + 1, periodMs) + KEY_GRACE_FRACTION * periodMs;
}

/**
 * The node named `name` in `doc`.
 * @throws Error when the document does not list it.
 */
export function nodeNamed(doc: SignedDocument, name: string): DocumentNode {
  const n = doc.document.nodes.find((x) => x.name === name);
  if (n === undefined) throw new Error(`test: the document for epoch ${doc.document.epoch} does not list ${name}`);
  return n;
}
