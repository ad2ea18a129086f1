/** The document follower in virtual time: a manual clock and a fetch that answers from memory. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { memoryLogger } from '../../src/ops/log.js';
import { readSample } from '../../src/ops/metrics.js';
import { compareNodes, encodeDocument, encodeSignedDocument, epochStart, signDocument } from '../../src/pki/document.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import { DocumentFollower, pollIntervalMs } from '../../src/pki/follower.js';
import type { SignedDocument } from '../../src/pki/types.js';
import { ManualClock, params, range, testAuthorities, testNetwork } from './fixtures.js';

const P = params.epochPeriodMs;
const auths = testAuthorities(3, 'follow');
const infos = auths.map((a) => a.info);
const nodes = testNetwork('f');

function signedFor(epoch: number): Uint8Array {
  const bytes = encodeDocument({ epoch, params, nodes: nodes.map((n) => n.descriptor(range(epoch, 2)).desc).sort(compareNodes) });
  return encodeSignedDocument(bytes, [0, 1].map((i) => ({ authority: auths[i]!.info.identityKey, signature: signDocument(bytes, auths[i]!.seed, nodeEd25519) })));
}

/** What the fake authorities serve: documents by epoch; 'current' is the newest not past the clock's epoch. */
function fakeDirectory(clock: ManualClock) {
  const docs = new Map<number, Uint8Array>();
  const state = { up: true, requests: 0 };
  const fetchFn = (async (input: string | URL | Request) => {
    state.requests++;
    if (!state.up) throw new TypeError('fetch failed');
    const path = new URL(String(input)).pathname;
    const m = /^\/v1\/document\/(\w+)$/.exec(path);
    let body: Uint8Array | undefined;
    if (m?.[1] === 'current') {
      const cur = Math.floor(clock.now() / P);
      const epochs = [...docs.keys()].filter((e) => e <= cur && e >= cur - 1).sort((a, b) => b - a);
      body = epochs[0] === undefined ? undefined : docs.get(epochs[0]);
    } else if (m) {
      body = docs.get(Number(m[1]));
    }
    return body === undefined ? new Response('{"error":"ERR_NOT_FOUND"}', { status: 404 }) : new Response(body, { status: 200 });
  }) as typeof fetch;
  return { docs, state, fetchFn };
}

describe('the document follower', () => {
  test('follows epochs on time, keeps the last document when authorities go away, counts staleness, drops it on expiry', async () => {
    const E = 1000;
    const clock = new ManualClock(epochStart(E, P) + 1000);
    const dir = fakeDirectory(clock);
    dir.docs.set(E, signedFor(E));
    const registry = new Registry();
    const log = memoryLogger();
    const seen: Array<{ epoch: number; at: number }> = [];
    let expired = 0;
    const follower = new DocumentFollower(
      { authorities: infos, threshold: 2, onDocument: (d: SignedDocument) => seen.push({ epoch: d.document.epoch, at: clock.now() }), onExpired: () => expired++ },
      { clock, log, registry, ed: nodeEd25519, fetch: dir.fetchFn },
    );
    const stale = async (): Promise<number | undefined> => readSample(await registry.metrics(), 'backchannel_pki_stale_document_total');
    follower.start();
    await clock.advanceTo(clock.t + 10);
    assert.equal(follower.current()?.document.epoch, E);
    assert.equal(await stale(), 0);

    // Before 3/4 of the epoch it does not ask for the next one; after, it fetches it ahead of the boundary.
    const before = dir.state.requests;
    await clock.advanceTo(epochStart(E, P) + 0.7 * P);
    assert.equal(dir.state.requests, before);
    dir.docs.set(E + 1, signedFor(E + 1));
    await clock.advanceTo(epochStart(E, P) + 0.8 * P);
    assert.equal(follower.next()?.document.epoch, E + 1);
    assert.equal(follower.current()?.document.epoch, E);

    // Switches exactly at the boundary.
    await clock.advanceTo(epochStart(E + 1, P) + 5);
    assert.equal(follower.current()?.document.epoch, E + 1);
    assert.deepEqual(seen, [
      { epoch: E, at: epochStart(E, P) + 1000 },
      { epoch: E + 1, at: epochStart(E + 1, P) },
    ]);

    // The authorities go away: in E + 2 the document for E + 1 stays in use, counted once.
    dir.state.up = false;
    await clock.advanceTo(epochStart(E + 2, P) + 10 * pollIntervalMs(P));
    assert.equal(follower.current()?.document.epoch, E + 1);
    assert.equal(await stale(), 1);
    assert.ok(log.lines.some((l) => l.level === 'warn' && l.epoch === E + 1 && l.current === E + 2));

    // At the end of E + 2 it has expired.
    await clock.advanceTo(epochStart(E + 3, P) + 10);
    assert.equal(follower.current(), null);
    assert.equal(expired, 1);

    // They come back: the follower picks up the current document at its next poll.
    dir.state.up = true;
    dir.docs.set(E + 3, signedFor(E + 3));
    await clock.advanceTo(epochStart(E + 3, P) + 3000);
    assert.equal(follower.current()?.document.epoch, E + 3);
    assert.equal(seen.at(-1)?.epoch, E + 3);

    follower.stop();
    const after = dir.state.requests;
    await clock.advanceTo(epochStart(E + 5, P));
    assert.equal(dir.state.requests, after);
  });

  test('starting late with only the previous epoch available counts staleness at once', async () => {
    const E = 2000;
    const clock = new ManualClock(epochStart(E, P) + 5000);
    const dir = fakeDirectory(clock);
    dir.docs.set(E - 1, signedFor(E - 1));
    const registry = new Registry();
    const follower = new DocumentFollower({ authorities: infos, threshold: 2, onDocument: () => undefined }, { clock, log: memoryLogger(), registry, ed: nodeEd25519, fetch: dir.fetchFn });
    follower.start();
    await clock.advanceTo(clock.t + 10);
    assert.equal(follower.current()?.document.epoch, E - 1);
    assert.equal(readSample(await registry.metrics(), 'backchannel_pki_stale_document_total'), 1);
    dir.docs.set(E, signedFor(E));
    await clock.advanceTo(clock.t + pollIntervalMs(P) + 10);
    assert.equal(follower.current()?.document.epoch, E);
    follower.stop();
  });

  test('documents below the threshold are never used', async () => {
    const E = 3000;
    const clock = new ManualClock(epochStart(E, P) + 1);
    const dir = fakeDirectory(clock);
    const bytes = encodeDocument({ epoch: E, params, nodes: [] });
    dir.docs.set(E, encodeSignedDocument(bytes, [{ authority: auths[0]!.info.identityKey, signature: signDocument(bytes, auths[0]!.seed, nodeEd25519) }]));
    const follower = new DocumentFollower({ authorities: infos, threshold: 2, onDocument: () => assert.fail('used') }, { clock, log: memoryLogger(), registry: new Registry(), ed: nodeEd25519, fetch: dir.fetchFn });
    follower.start();
    await clock.advanceTo(clock.t + 5000);
    assert.equal(follower.current(), null);
    follower.stop();
  });

  test('the poll interval is period/20 within [500 ms, 10 s]', () => {
    assert.equal(pollIntervalMs(60_000), 3000);
    assert.equal(pollIntervalMs(2000), 500);
    assert.equal(pollIntervalMs(20 * 60_000), 10_000);
  });
});
