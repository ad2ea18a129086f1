/**
 * Authorities on real loopback sockets with the real clock and short epochs. Authority URLs are
 * names ("http://a0.test") that an injected fetch maps to the port each server got, so that every
 * authority can be listed before any is started, and one that never starts refuses connections.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { startAuthority } from '../../src/authority/index.js';
import type { RunningAuthority } from '../../src/authority/index.js';
import { systemClock } from '../../src/ops/clock.js';
import { jsonLogger, memoryLogger, silentLogger } from '../../src/ops/log.js';
import { readSample } from '../../src/ops/metrics.js';
import { uploadDescriptor } from '../../src/pki/client.js';
import { encodeSignedDocument, epochAt, epochStart, signDocumentHash, verifySignedDocument } from '../../src/pki/document.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import { DocumentFollower } from '../../src/pki/follower.js';
import type { AuthorityInfo, NetworkParameters } from '../../src/pki/types.js';
import { encodeSignatureMessage, signVote } from '../../src/pki/vote.js';
import { bytes32, params, range, testAuthorities, testNetwork, testNode } from '../pki/fixtures.js';
import type { TestAuthority, TestNode } from '../pki/fixtures.js';

interface Network {
  readonly auths: TestAuthority[];
  readonly infos: AuthorityInfo[];
  readonly nodes: TestNode[];
  readonly params: NetworkParameters;
  readonly running: Array<RunningAuthority | null>;
  readonly registries: Registry[];
  readonly fetch: typeof fetch;
  /** Starts authority i (one not started yet). */
  start(i: number): Promise<RunningAuthority>;
  /** Uploads every node's descriptor (keys for the current epoch and three more); returns that current epoch. */
  uploadAll(): Promise<number>;
  close(): Promise<void>;
}

let networks = 0;

async function startNetwork(opts: { n: number; start: readonly number[]; periodMs: number; threshold?: number }): Promise<Network> {
  const prefix = `a${networks++}x`;
  const auths = testAuthorities(opts.n, prefix);
  const infos = auths.map((a) => a.info);
  const nodes = testNetwork(prefix);
  const p = { ...params, epochPeriodMs: opts.periodMs };
  const ports = new Map<string, number>();
  const fetchFn = ((input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const port = ports.get(url.hostname);
    if (port === undefined) return Promise.reject(new TypeError('fetch failed'));
    url.hostname = '127.0.0.1';
    url.port = String(port);
    return fetch(url, init);
  }) as typeof fetch;
  const running: Array<RunningAuthority | null> = auths.map(() => null);
  const registries = auths.map(() => new Registry());
  const start = async (i: number): Promise<RunningAuthority> => {
    const a = await startAuthority(
      {
        name: infos[i]!.name,
        identitySeed: auths[i]!.seed,
        listen: { host: '127.0.0.1', port: 0 },
        authorities: infos,
        threshold: opts.threshold ?? Math.floor(opts.n / 2) + 1,
        params: p,
        nodes: nodes.map((x) => x.authorized),
      },
      { clock: systemClock, log: process.env.AUTHORITY_TEST_LOG ? jsonLogger({ level: 'debug', component: infos[i]!.name }) : silentLogger, registry: registries[i]!, ed: nodeEd25519, fetch: fetchFn },
    );
    running[i] = a;
    ports.set(new URL(infos[i]!.url).hostname, a.port);
    return a;
  };
  for (const i of opts.start) await start(i);
  return {
    start,
    auths,
    infos,
    nodes,
    params: p,
    running,
    registries,
    fetch: fetchFn,
    async uploadAll() {
      const cur = epochAt(Date.now(), p.epochPeriodMs);
      await Promise.all(nodes.map((x) => uploadDescriptor(infos, x.descriptor(range(cur, 4)).bytes, { fetch: fetchFn })));
      return cur;
    },
    async close() {
      for (const r of running) await r?.close();
    },
  };
}

async function waitFor<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The first epoch from `from` on for which every running authority has a published document. */
function commonEpoch(net: Network, from: number): number | null {
  const live = net.running.filter((r): r is RunningAuthority => r !== null);
  for (let e = from; e <= from + 3; e++) if (live.every((r) => r.document(e) !== null)) return e;
  return null;
}

const sample = async (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> => readSample(await registry.metrics(), name, labels);

describe('directory authorities on loopback', () => {
  test('three authorities agree on the same document bytes, in bootstrap and then on schedule', async () => {
    const net = await startNetwork({ n: 3, start: [0, 1, 2], periodMs: 3000 });
    try {
      const from = await net.uploadAll();
      const uploadsDone = Date.now();
      const e = await waitFor('a common document', () => commonEpoch(net, from), 8000);
      const docs = net.running.map((r) => r!.document(e)!);
      for (const d of docs) assert.deepEqual(d.bytes, docs[0]!.bytes);
      // The bootstrap vote waits for the uploads only for a while (a quarter epoch here, 750 ms):
      // on a loaded machine some may come later, so this document lists the nodes heard from by
      // then, and the next one (voted on schedule, after every upload) lists them all.
      assert.ok(docs[0]!.document.nodes.length >= 1 && docs[0]!.document.nodes.length <= net.nodes.length);
      // Everyone signed, and what GET serves verifies against the configured authorities.
      const res = await net.fetch(`${net.infos[1]!.url}/v1/document/${e}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/octet-stream');
      const body = new Uint8Array(await res.arrayBuffer());
      const verified = verifySignedDocument(body, { authorities: net.infos, threshold: 2, ed: nodeEd25519, epoch: e });
      assert.deepEqual(verified.bytes, docs[0]!.bytes);
      // Signatures that come after the threshold are added to the published document. With 3 s
      // epochs a loaded machine can take longer than the two epochs an authority keeps a
      // document for, so any document from e on with all three counts.
      const signedByAll = (x: number): boolean => net.running.every((r) => r!.document(x)?.signatures.length === 3);
      await waitFor('a document with all three signatures', () => [e, e + 1, e + 2, e + 3].some(signedByAll), 10_000);
      // Later documents come from the normal schedule (the vote for E at 1/2 of E - 1, compute at
      // 3/4); the first whose vote came after every upload lists every node.
      const period = net.params.epochPeriodMs;
      let scheduled = e + 1;
      while (epochStart(scheduled - 1, period) + period / 2 <= uploadsDone) scheduled++;
      const next = await waitFor('a scheduled document', () => (net.running.every((r) => r!.document(scheduled) !== null) ? scheduled : null), 3 * period + 5000);
      const nextDocs = net.running.map((r) => r!.document(next)!);
      for (const d of nextDocs) assert.deepEqual(d.bytes, nextDocs[0]!.bytes);
      assert.equal(nextDocs[0]!.document.epoch, scheduled);
      assert.equal(nextDocs[0]!.document.nodes.length, net.nodes.length);
      for (const reg of net.registries) {
        assert.ok(((await sample(reg, 'backchannel_authority_documents_total')) ?? 0) >= 2);
        assert.equal(await sample(reg, 'backchannel_authority_descriptors_total', { result: 'accepted' }), net.nodes.length);
        assert.ok(((await sample(reg, 'backchannel_authority_votes_total', { result: 'accepted' })) ?? 0) >= 2);
        assert.ok(((await sample(reg, 'backchannel_epoch')) ?? 0) >= e);
      }
    } finally {
      await net.close();
    }
  });

  test('a fresh network with 60-second epochs publishes the current epoch by its bootstrap vote, without waiting for the schedule', async () => {
    const net = await startNetwork({ n: 3, start: [0, 1, 2], periodMs: 60_000 });
    try {
      const cur = await net.uploadAll();
      // A document for the epoch current at start can only come from the bootstrap vote: the
      // schedule votes for epoch E in the middle of E - 1, before these authorities ran. So its
      // existence, not a stopwatch, shows that they did not wait for the schedule.
      await waitFor('the bootstrap document', () => net.running.every((r) => r!.document(cur) !== null), 20_000);
      const current = net.running[0]!.current();
      assert.ok(current !== null && current.document.epoch === cur);
      assert.equal(current.document.nodes.length, net.nodes.length);
    } finally {
      await net.close();
    }
  });

  test('with one authority never started, the other two still publish a valid document', async () => {
    const net = await startNetwork({ n: 3, start: [0, 2], periodMs: 3000 });
    try {
      const from = await net.uploadAll();
      const uploadsDone = Date.now();
      const e = await waitFor('a common document', () => commonEpoch(net, from), 8000);
      const a = net.running[0]!.document(e)!;
      const c = net.running[2]!.document(e)!;
      assert.deepEqual(a.bytes, c.bytes);
      assert.equal(a.signatures.length, 2);
      const body = encodeSignedDocument(a.bytes, a.signatures);
      assert.deepEqual(verifySignedDocument(body, { authorities: net.infos, threshold: 2, ed: nodeEd25519 }).bytes, a.bytes);
      // The bootstrap document lists the nodes heard from within its wait (fewer on a loaded
      // machine); the first document voted on schedule after every upload lists them all.
      const period = net.params.epochPeriodMs;
      let scheduled = e + 1;
      while (epochStart(scheduled - 1, period) + period / 2 <= uploadsDone) scheduled++;
      await waitFor('a scheduled document signed by both', () => [0, 2].every((i) => (net.running[i]!.document(scheduled)?.signatures.length ?? 0) === 2), 3 * period + 5000);
      const next = net.running[0]!.document(scheduled)!;
      assert.deepEqual(next.bytes, net.running[2]!.document(scheduled)!.bytes);
      assert.equal(verifySignedDocument(encodeSignedDocument(next.bytes, next.signatures), { authorities: net.infos, threshold: 2, ed: nodeEd25519 }).document.nodes.length, net.nodes.length);
    } finally {
      await net.close();
    }
  });

  test('an authority started after its peers published takes their document', async () => {
    const net = await startNetwork({ n: 3, start: [0, 1], periodMs: 60_000 });
    try {
      const cur = await net.uploadAll();
      await waitFor('the document of the first two', () => net.running[0]!.document(cur) !== null && net.running[1]!.document(cur) !== null, 5000);
      const late = await net.start(2);
      // The document of the epoch current when it started (an epoch may have ended meanwhile).
      const got = await waitFor('the document at the late authority', () => late.current(), 6000);
      assert.deepEqual(got.bytes, net.running[0]!.document(got.document.epoch)?.bytes);
      assert.ok(got.signatures.length >= 2);
      assert.ok(((await sample(net.registries[2]!, 'backchannel_authority_documents_total')) ?? 0) >= 1);
    } finally {
      await net.close();
    }
  });

  test('refuses bad input with typed errors, counts it, and keeps serving', async () => {
    const net = await startNetwork({ n: 3, start: [0], periodMs: 60_000 });
    const reg = net.registries[0]!;
    const url = net.running[0]!.url;
    const post = async (path: string, body: Uint8Array | string): Promise<{ status: number; json: unknown }> => {
      const res = await fetch(`${url}${path}`, { method: 'POST', body });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, json };
    };
    try {
      const cur = epochAt(Date.now(), 60_000);
      const good = net.nodes[0]!.descriptor(range(cur, 2));
      assert.deepEqual(await post('/v1/descriptor', good.bytes), { status: 200, json: { epochs: [cur, cur + 1] } });

      // Not in the authorized list, or authorized in another layer: 403, counted.
      const stranger = testNode('stranger', 'mix', 1).descriptor(range(cur, 2)).bytes;
      assert.deepEqual(await post('/v1/descriptor', stranger), { status: 403, json: { error: 'ERR_PKI_UNAUTHORIZED' } });
      const mix = net.nodes.find((x) => x.role === 'mix' && x.layer === 1)!;
      const moved = mix.descriptor(range(cur, 2), { layer: 2 }).bytes;
      assert.deepEqual(await post('/v1/descriptor', moved), { status: 403, json: { error: 'ERR_PKI_UNAUTHORIZED' } });
      assert.equal(await sample(reg, 'backchannel_authority_descriptors_total', { result: 'unauthorized' }), 2);

      // Malformed, badly signed, out of the epochs kept: 400.
      assert.deepEqual(await post('/v1/descriptor', 'garbage'), { status: 400, json: { error: 'ERR_PKI_ENCODING' } });
      const badSig = good.bytes.slice();
      badSig[badSig.length - 1]! ^= 1;
      assert.deepEqual(await post('/v1/descriptor', badSig), { status: 400, json: { error: 'ERR_PKI_SIGNATURE' } });
      assert.deepEqual(await post('/v1/descriptor', net.nodes[1]!.descriptor([cur - 2, cur - 1]).bytes), { status: 400, json: { error: 'ERR_PKI_EPOCH' } });
      assert.deepEqual(await post('/v1/descriptor', net.nodes[1]!.descriptor([cur + 9]).bytes), { status: 400, json: { error: 'ERR_PKI_EPOCH' } });
      assert.equal(await sample(reg, 'backchannel_authority_descriptors_total', { result: 'malformed' }), 1);
      assert.equal(await sample(reg, 'backchannel_authority_descriptors_total', { result: 'bad_signature' }), 1);
      assert.equal(await sample(reg, 'backchannel_authority_descriptors_total', { result: 'epoch' }), 2);

      // Oversized bodies: 413, declared or streamed.
      assert.equal((await post('/v1/descriptor', new Uint8Array(70 * 1024))).status, 413);
      const streamed = await fetch(`${url}/v1/signature`, {
        method: 'POST',
        body: new ReadableStream({
          start(c) {
            for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(8 * 1024));
            c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      assert.equal(streamed.status, 413);
      assert.equal(await sample(reg, 'backchannel_authority_descriptors_total', { result: 'too_large' }), 1);

      // Votes and signatures: only from listed peers, verified.
      const outsider = testAuthorities(1, 'outsider')[0]!;
      assert.deepEqual(await post('/v1/vote', signVote(cur, [], outsider.seed, nodeEd25519)), { status: 403, json: { error: 'ERR_PKI_UNAUTHORIZED' } });
      assert.deepEqual(await post('/v1/vote', signVote(cur, [], net.auths[0]!.seed, nodeEd25519)), { status: 403, json: { error: 'ERR_PKI_UNAUTHORIZED' } }); // itself
      assert.deepEqual(await post('/v1/vote', 'x'), { status: 400, json: { error: 'ERR_PKI_ENCODING' } });
      assert.deepEqual(await post('/v1/vote', signVote(cur + 5, [], net.auths[1]!.seed, nodeEd25519)), { status: 400, json: { error: 'ERR_PKI_EPOCH' } });
      const hash = bytes32('some document');
      const fakeSig = (seedOf: TestAuthority, signer: TestAuthority) => encodeSignatureMessage({ epoch: cur, documentHash: hash, authority: seedOf.info.identityKey, signature: signDocumentHash(hash, signer.seed, nodeEd25519) });
      assert.deepEqual(await post('/v1/signature', fakeSig(outsider, outsider)), { status: 403, json: { error: 'ERR_PKI_UNAUTHORIZED' } });
      assert.deepEqual(await post('/v1/signature', fakeSig(net.auths[1]!, outsider)), { status: 400, json: { error: 'ERR_PKI_SIGNATURE' } });
      assert.deepEqual(await post('/v1/signature', 'short'), { status: 400, json: { error: 'ERR_PKI_ENCODING' } });
      assert.equal(await sample(reg, 'backchannel_authority_votes_total', { result: 'unauthorized' }), 2);
      assert.equal(await sample(reg, 'backchannel_authority_signatures_total', { result: 'bad_signature' }), 1);

      // Routes and methods.
      assert.equal((await fetch(`${url}/v1/document/abc`)).status, 400);
      assert.equal((await fetch(`${url}/v1/document/0123`)).status, 400);
      assert.equal((await fetch(`${url}/v1/document/99999999999999999`)).status, 400);
      assert.equal((await fetch(`${url}/v1/document/${cur}`)).status, 404);
      assert.equal((await fetch(`${url}/v1/document/current`)).status, 404);
      assert.equal((await fetch(`${url}/nope`)).status, 404);
      assert.equal((await fetch(`${url}/v1/descriptor`)).status, 405);
      assert.equal((await fetch(`${url}/v1/document/current`, { method: 'POST', body: 'x' })).status, 405);

      // Random bodies on every endpoint: always a typed answer, never a crash.
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('/v1/descriptor', '/v1/vote', '/v1/signature'), fc.uint8Array({ maxLength: 2000 }), async (path, body) => {
          const r = await post(path, body);
          assert.ok([400, 403].includes(r.status), `${path} ${r.status}`);
          assert.equal(typeof (r.json as { error?: unknown }).error, 'string');
        }),
        { numRuns: 60 },
      );
      // Still alive and still accepting.
      assert.equal((await post('/v1/descriptor', good.bytes)).status, 200);
    } finally {
      await net.close();
    }
  });

  test('a failed consensus is counted and the last valid document is still served', async () => {
    const net = await startNetwork({ n: 3, start: [0, 1, 2], periodMs: 2000 });
    try {
      const from = await net.uploadAll();
      const e = await waitFor('a common document', () => commonEpoch(net, from), 6000);
      // Let the normal schedule publish the next one, so that a valid document outlives the failure.
      await waitFor('the next document', () => net.running.every((r) => r!.document(e + 1) !== null), 6000);
      await net.running[1]!.close();
      await net.running[2]!.close();
      net.running[1] = null;
      net.running[2] = null;
      const reg = net.registries[0]!;
      await waitFor('a counted failure', async () => ((await sample(reg, 'backchannel_authority_consensus_failures_total')) ?? 0) >= 1, 8000);
      const current = net.running[0]!.current();
      assert.ok(current !== null, 'still serving a document');
      assert.ok(current.document.epoch >= e && current.document.epoch >= epochAt(Date.now(), 2000) - 1);
      const res = await net.fetch(`${net.infos[0]!.url}/v1/document/current`);
      assert.equal(res.status, 200);
    } finally {
      await net.close();
    }
  });

  test('a follower keeps the last valid document and counts staleness when the authorities go away', async () => {
    const net = await startNetwork({ n: 3, start: [0, 1, 2], periodMs: 2000 });
    const registry = new Registry();
    const log = memoryLogger();
    const follower = new DocumentFollower(
      { authorities: net.infos, threshold: 2, onDocument: () => undefined, timeoutMs: 500 },
      { clock: systemClock, log, registry, ed: nodeEd25519, fetch: net.fetch },
    );
    try {
      await net.uploadAll();
      follower.start();
      await waitFor('a document at the follower', () => follower.current(), 6000);
      await net.close();
      await waitFor('a stale document', async () => ((await sample(registry, 'backchannel_pki_stale_document_total')) ?? 0) >= 1, 7000);
      const inUse = follower.current();
      assert.ok(inUse !== null, 'the last document is still in use');
      assert.equal(inUse.document.epoch, epochAt(Date.now(), 2000) - 1);
    } finally {
      follower.stop();
      await net.close();
    }
  });

  test('refuses a configuration that does not include itself or has a bad threshold', async () => {
    const auths = testAuthorities(3, 'cfg');
    const base = {
      name: 'cfg0',
      identitySeed: auths[0]!.seed,
      listen: { host: '127.0.0.1', port: 0 },
      authorities: auths.map((a) => a.info),
      threshold: 2,
      params,
      nodes: [],
    };
    const components = { clock: systemClock, log: silentLogger, registry: new Registry(), ed: nodeEd25519 };
    const configError = (e: unknown): boolean => e instanceof Error && 'code' in e && e.code === 'ERR_CONFIG';
    await assert.rejects(startAuthority({ ...base, authorities: auths.slice(1).map((a) => a.info) }, components), configError);
    await assert.rejects(startAuthority({ ...base, threshold: 4 }, components), configError);
    await assert.rejects(startAuthority({ ...base, nodes: [testNode('deep', 'mix', 4).authorized] }, components), configError);
    // Two authorities on one registry: the metrics are shared, not registered twice.
    const a = await startAuthority(base, components);
    const b = await startAuthority({ ...base, name: 'cfg1', identitySeed: auths[1]!.seed }, components);
    await a.close();
    await b.close();
  });
});
