// The client's directory through its gateway: the requests and reassembly on their own (every bad
// answer a typed, counted error), then the engine in virtual time over the gateway's real client
// sessions: documents arrive on the fetch clock without changing its frames, the next epoch's is
// taken ahead, and a gateway that stops relaying leaves the client on its document until it
// expires, reported, and asked for again only at the retry interval.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { Client } from '../../src/client/client.js';
import type { GatewayLink } from '../../src/client/client.js';
import { ANSWER_TIMEOUT_MS, GatewayDirectory, NEXT_DOCUMENT_FROM, retryDelayMs } from '../../src/client/directory.js';
import { SqliteClientStore } from '../../src/client/sqlite-store.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { isBackchannelError } from '../../src/errors.js';
import type { MessageLink } from '../../src/link/message-link.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import { silentLogger } from '../../src/ops/log.js';
import { MAX_SIGNED_DOCUMENT_LENGTH, compareNodes, documentExpiresAt, encodeDocument, encodeSignedDocument, epochAt, epochStart, signDocument, verifySignedDocument } from '../../src/pki/document.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import type { NetworkParameters, SignedDocument } from '../../src/pki/types.js';
import { clientSessions } from '../../src/server/fetch.js';
import type { FetchMailbox } from '../../src/server/gateway-mailbox.js';
import type { RateLimiter } from '../../src/server/rate-limit.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { WireCodec } from '../../src/wire/commands.js';
import type { WireCommand } from '../../src/wire/commands.js';
import { seededBackend } from '../helpers/seeded.js';
import { ManualClock, bytes32, params as baseParams, range, testAuthorities, testNetwork } from '../pki/fixtures.js';

const auths = testAuthorities(3, 'gwdir');
const trust = { authorities: auths.map((a) => a.info), threshold: 2, ed: nodeEd25519 };
const nodes = testNetwork('gwdir');
// Slow send and loop clocks: these tests are about the fetch clock, and every packet costs a Sphinx build.
const P: NetworkParameters = { ...baseParams, sendRatePerS: 0.5, loopRatePerS: 0.5, fetchRatePerS: 4 };
const PERIOD = P.epochPeriodMs;
const E = epochAt(1_800_000_000_000, PERIOD);

/** The container a gateway relays: the document of `epoch` signed by `signers` (indices into auths, or other seeds). */
function container(epoch: number, signers: readonly Uint8Array[] = auths.map((a) => a.seed)): Uint8Array {
  const bytes = encodeDocument({ epoch, params: P, nodes: nodes.map((n) => n.descriptor(range(epoch, 2)).desc).sort(compareNodes) });
  return encodeSignedDocument(bytes, signers.map((seed) => ({ authority: nodeEd25519.publicKeyFromSeed(seed), signature: signDocument(bytes, seed, nodeEd25519) })));
}

function chunks(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

type DocumentCmd = Extract<WireCommand, { kind: 'document' }>;
const chunkCmd = (epoch: number, chunk: number, total: number, data: Uint8Array): DocumentCmd => ({ kind: 'document', epoch, available: true, chunk, total, data });

describe('client directory: requests and reassembly', () => {
  const SIZE = 200;
  const t0 = epochStart(E, PERIOD) + 1000;

  test('with no document it asks for the current epoch chunk by chunk, one request in flight, and verifies the whole', () => {
    const dir = new GatewayDirectory(trust);
    const parts = chunks(container(E), SIZE);
    assert.ok(parts.length > 3);
    for (let i = 0; i < parts.length; i++) {
      assert.deepEqual(dir.request(t0, null, null, PERIOD), { epoch: E, chunk: i });
      assert.equal(dir.request(t0, null, null, PERIOD), null, 'nothing more while a request is in flight');
      const r = dir.answer(chunkCmd(E, i, parts.length, parts[i]!), t0, PERIOD, SIZE);
      if (i < parts.length - 1) assert.deepEqual(r, { kind: 'partial' });
      else {
        assert.equal(r.kind, 'document');
        if (r.kind === 'document') assert.equal(r.signed.document.epoch, E);
      }
    }
    assert.deepEqual(dir.counts, { documents: 1, unavailable: 0, invalid: 0, timeouts: 0 });
  });

  test('"not available" is asked again only after the retry delay; meanwhile the previous epoch is asked for', () => {
    const dir = new GatewayDirectory(trust);
    dir.request(t0, null, null, PERIOD);
    assert.deepEqual(dir.answer({ kind: 'document', epoch: E, available: false, chunk: 0, total: 0, data: new Uint8Array(0) }, t0, PERIOD, SIZE), { kind: 'unavailable', epoch: E });
    assert.deepEqual(dir.request(t0 + 1, null, null, PERIOD), { epoch: E - 1, chunk: 0 });
    dir.answer({ kind: 'document', epoch: E - 1, available: false, chunk: 0, total: 0, data: new Uint8Array(0) }, t0 + 1, PERIOD, SIZE);
    assert.equal(dir.request(t0 + 2, null, null, PERIOD), null, 'both epochs wait');
    assert.equal(dir.request(t0 + retryDelayMs(PERIOD) - 1, null, null, PERIOD), null);
    assert.deepEqual(dir.request(t0 + retryDelayMs(PERIOD), null, null, PERIOD), { epoch: E, chunk: 0 });
    assert.equal(dir.counts.unavailable, 2);
  });

  test('with an expired document the previous epoch is asked for too, while the current one is not available', () => {
    const dir = new GatewayDirectory(trust);
    const old = verifySignedDocument(container(E - 2), { ...trust, epoch: E - 2 });
    assert.deepEqual(dir.request(t0, old, null, PERIOD), { epoch: E, chunk: 0 });
    dir.answer({ kind: 'document', epoch: E, available: false, chunk: 0, total: 0, data: new Uint8Array(0) }, t0, PERIOD, SIZE);
    assert.deepEqual(dir.request(t0 + 1, old, null, PERIOD), { epoch: E - 1, chunk: 0 });
    const prev = verifySignedDocument(container(E - 1), { ...trust, epoch: E - 1 });
    dir.linkLost();
    assert.equal(dir.request(t0 + 2, prev, null, PERIOD), null, 'the previous epoch is usable: only the current one is wanted, and it waits');
  });

  test('the next epoch is asked for from 3/4 of the epoch, not before, and not once it is held', () => {
    const dir = new GatewayDirectory(trust);
    const cur = verifySignedDocument(container(E), { ...trust, epoch: E });
    const from = epochStart(E, PERIOD) + NEXT_DOCUMENT_FROM * PERIOD;
    assert.equal(dir.request(from - 1, cur, null, PERIOD), null);
    assert.deepEqual(dir.request(from, cur, null, PERIOD), { epoch: E + 1, chunk: 0 });
    const next = verifySignedDocument(container(E + 1), { ...trust, epoch: E + 1 });
    dir.linkLost();
    assert.equal(dir.request(from + 1, cur, next, PERIOD), null);
  });

  test('bad chunks are typed, counted errors that drop the reassembly, never exceptions', () => {
    const parts = chunks(container(E), SIZE);
    const cases: Array<[string, (dir: GatewayDirectory) => ReturnType<GatewayDirectory['answer']>, string]> = [
      ['a chunk before the last that is not full', (dir) => dir.answer(chunkCmd(E, 0, parts.length, parts[0]!.subarray(1)), t0, PERIOD, SIZE), 'ERR_CLIENT_DIRECTORY'],
      [
        'a chunk count that changes',
        (dir) => {
          dir.answer(chunkCmd(E, 0, parts.length, parts[0]!), t0, PERIOD, SIZE);
          dir.request(t0, null, null, PERIOD);
          return dir.answer(chunkCmd(E, 1, parts.length + 1, parts[1]!), t0, PERIOD, SIZE);
        },
        'ERR_CLIENT_DIRECTORY',
      ],
      ['a document that does not decode', (dir) => dir.answer(chunkCmd(E, 0, 1, Uint8Array.of(3, 0, 0)), t0, PERIOD, SIZE), 'ERR_PKI_ENCODING'],
      [
        'a document signed by authorities we do not trust',
        (dir) => dir.answer(chunkCmd(E, 0, 1, container(E, [bytes32('stranger 1'), bytes32('stranger 2')])), t0, PERIOD, 1 << 16),
        'ERR_PKI_THRESHOLD',
      ],
      ['a document for another epoch than asked', (dir) => dir.answer(chunkCmd(E, 0, 1, container(E - 1)), t0, PERIOD, 1 << 16), 'ERR_PKI_EPOCH'],
    ];
    for (const [name, run, code] of cases) {
      const dir = new GatewayDirectory(trust);
      dir.request(t0, null, null, PERIOD);
      const r = run(dir);
      assert.ok(r.kind === 'invalid' && isBackchannelError(r.error, code as never), `${name}: ${JSON.stringify(r)}`);
      assert.equal(dir.counts.invalid, 1, name);
      // The epoch waits for the retry delay; the next request starts the document again.
      assert.deepEqual(dir.request(t0 + 1, null, null, PERIOD), { epoch: E - 1, chunk: 0 }, name);
    }
  });

  test('an answer that was not asked for is ignored, and the buffer never grows past a signed document', () => {
    const dir = new GatewayDirectory(trust);
    assert.deepEqual(dir.answer(chunkCmd(E, 0, 1, Uint8Array.of(1)), t0, PERIOD, SIZE), { kind: 'ignored' });
    const big = 64 * 1024;
    const total = Math.ceil(MAX_SIGNED_DOCUMENT_LENGTH / big) + 1;
    const full = new Uint8Array(big);
    let last: ReturnType<GatewayDirectory['answer']> = { kind: 'ignored' };
    for (let i = 0; i < total && last.kind !== 'invalid'; i++) {
      assert.deepEqual(dir.request(t0, null, null, PERIOD), { epoch: E, chunk: i });
      last = dir.answer(chunkCmd(E, i, total, full), t0, PERIOD, big);
    }
    assert.ok(last.kind === 'invalid' && isBackchannelError(last.error, 'ERR_CLIENT_DIRECTORY'));
  });

  test('a request with no answer counts as a timeout after ANSWER_TIMEOUT_MS, and its epoch waits', () => {
    const dir = new GatewayDirectory(trust);
    dir.request(t0, null, null, PERIOD);
    assert.equal(dir.request(t0 + ANSWER_TIMEOUT_MS - 1, null, null, PERIOD), null);
    assert.deepEqual(dir.request(t0 + ANSWER_TIMEOUT_MS, null, null, PERIOD), { epoch: E - 1, chunk: 0 });
    assert.equal(dir.counts.timeouts, 1);
  });
});

/** The client's link, wired to the gateway's real client sessions: whatever the gateway sends comes back on recv. */
class GatewayStandIn implements GatewayLink {
  readonly sent: Array<{ kind: WireCommand['kind']; at: number }> = [];
  readonly held = new Map<number, SignedDocument>();
  readonly #queue: Uint8Array[] = [];
  #waiter: ((m: Uint8Array | null) => void) | null = null;
  readonly #codec: WireCodec;
  readonly #clock: ManualClock;
  readonly #sessions: ReturnType<typeof clientSessions>;
  readonly #peer: MessageLink;

  constructor(codec: WireCodec, clock: ManualClock) {
    this.#codec = codec;
    this.#clock = clock;
    const registry = new Registry();
    const mailbox: FetchMailbox = { register: () => undefined, isRegistered: () => true, peek: () => null, deleteBelow: () => true, deleteOne: () => true };
    this.#sessions = clientSessions({
      mailbox,
      limiter: { take: () => true } as unknown as RateLimiter,
      codec,
      fetches: new Counter({ name: 'f', help: 'f', labelNames: ['result'] as const, registers: [registry] }),
      deletionsRefused: new Counter({ name: 'r', help: 'r', registers: [registry] }),
      documents: (e) => this.held.get(e) ?? null,
    });
    const deliver = (m: Uint8Array): boolean => {
      if (this.#waiter !== null) {
        const w = this.#waiter;
        this.#waiter = null;
        w(m);
      } else this.#queue.push(m);
      return true;
    };
    this.#peer = {
      remoteStatic: new Uint8Array(32),
      isOpen: true,
      trySend: deliver,
      send: (m) => Promise.resolve(void deliver(m)),
      close: () => Promise.resolve(),
      [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true as const, value: undefined }) }),
    };
  }

  trySend(message: Uint8Array): boolean {
    const cmd = this.#codec.decode(message);
    this.sent.push({ kind: cmd.kind, at: this.#clock.now() });
    this.#sessions.command(this.#peer, cmd);
    return true;
  }
  send(message: Uint8Array): Promise<void> {
    this.trySend(message);
    return Promise.resolve();
  }
  recv(): Promise<Uint8Array | null> {
    const m = this.#queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((r) => (this.#waiter = r));
  }
  close(): Promise<void> {
    this.#waiter?.(null);
    return Promise.resolve();
  }
}

describe('client engine: the directory from its gateway', () => {
  test('documents come on the fetch clock in place of fetches, the next one ahead of its epoch, and an expired one is reported', async () => {
    const t0 = epochStart(E, PERIOD) + 1000;
    const clock = new ManualClock(t0);
    const g = geometryFromUserPayload(P.hops, P.userPayloadLength, P.withSurb);
    const codec = new WireCodec({ packetLength: g.packetLength });
    const link = new GatewayStandIn(codec, clock);
    const signed = (e: number): SignedDocument => verifySignedDocument(container(e), { ...trust, epoch: e });
    link.held.set(E, signed(E));
    const gateway = nodes.find((n) => n.role === 'gateway')!.descriptor([E]).desc;
    const dbDir = mkdtempSync(join(tmpdir(), 'bc-gwdir-'));
    const store = SqliteClientStore.open(join(dbDir, 'client.db'));
    const client = new Client(
      { linkPrivateKey: bytes32('gwdir client'), gateway: gateway.identityKey, bootstrap: { gateway, params: P } },
      {
        clock,
        crypto: seededBackend(nodeBackend, bytes32('gwdir engine')),
        aead: nodeNoiseCrypto.aead('ChaChaPoly'),
        store,
        log: silentLogger,
        connect: () => Promise.resolve(link),
        directory: trust,
      },
    );
    try {
      client.start();
      await clock.advanceTo(t0 + 2000);
      assert.equal(client.status().connected, true, 'linked through the contact init recorded, before any document');
      assert.equal(client.status().epoch, E);
      assert.equal(client.status().document, 'current');

      // The gateway gets the next document a little after 3/4 of the epoch: the client asks from
      // 3/4, hears "not available", asks again a retry delay later, and switches at the boundary.
      await clock.advanceTo(epochStart(E, PERIOD) + 0.8 * PERIOD);
      link.held.set(E + 1, signed(E + 1));
      await clock.advanceTo(epochStart(E + 1, PERIOD) - 1);
      assert.equal(client.status().epoch, E, 'the next document waits for its epoch');
      await clock.advanceTo(epochStart(E + 1, PERIOD) + 1000);
      assert.equal(client.status().epoch, E + 1);
      assert.equal(client.status().document, 'current');
      assert.ok((client.status().directory?.unavailable ?? 0) >= 1);

      // The gateway stops relaying: the client keeps its document through E + 2, then reports it expired.
      link.held.clear();
      const quiet = link.sent.length;
      await clock.advanceTo(epochStart(E + 2, PERIOD) + 1000);
      assert.equal(client.status().document, 'previous');
      await clock.advanceTo(documentExpiresAt(E + 1, PERIOD) + 1000);
      const s = client.status();
      assert.equal(s.document, 'expired');
      assert.equal(s.epoch, E + 1);
      // Not hammered: one request per retry delay at most (two epochs wanted at times: x2), plus slack.
      const asked = link.sent.slice(quiet).filter((f) => f.kind === 'get_document').length;
      const window = documentExpiresAt(E + 1, PERIOD) + 1000 - epochStart(E + 1, PERIOD) - 1000;
      assert.ok(asked <= (2 * window) / retryDelayMs(PERIOD) + 4, `${asked} requests`);
      assert.ok(asked > 0);

      // The link's frames: exactly one fetch-clock frame per tick, a document request or a fetch.
      const ticks = link.sent.filter((f) => f.kind === 'retrieve_message' || f.kind === 'get_document');
      const span = clock.now() - t0;
      const expected = Math.floor((span * P.fetchRatePerS) / 1000);
      assert.ok(Math.abs(ticks.length - expected) <= 1, `${ticks.length} fetch-clock frames, ${expected} ticks`);
      const interval = 1000 / P.fetchRatePerS;
      for (let i = 1; i < ticks.length; i++) assert.ok(Math.abs(ticks[i]!.at - ticks[i - 1]!.at - interval) < 1, 'a constant fetch clock');
      assert.ok(ticks.some((f) => f.kind === 'get_document'));
    } finally {
      await client.stop();
      store.close();
      rmSync(dbDir, { recursive: true, force: true });
    }
  });
});
