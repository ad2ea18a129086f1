/** A gateway's client sessions relay the directory: each get_document gets exactly one document frame. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { readSample } from '../../src/ops/metrics.js';
import { compareNodes, encodeDocument, encodeSignedDocument, signDocument, verifySignedDocument } from '../../src/pki/document.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import type { SignedDocument } from '../../src/pki/types.js';
import { clientSessions } from '../../src/server/fetch.js';
import type { FetchMailbox } from '../../src/server/gateway-mailbox.js';
import type { RateLimiter } from '../../src/server/rate-limit.js';
import { concatBytes, toHex } from '../../src/util/bytes.js';
import { WireCodec } from '../../src/wire/commands.js';
import { recordingLink } from '../helpers/recording-link.js';
import type { WireCommand } from '../../src/wire/commands.js';
import { params, range, testAuthorities, testNetwork } from '../pki/fixtures.js';

const auths = testAuthorities(3, 'relay');
const nodes = testNetwork('relay');

function signed(epoch: number): SignedDocument {
  const bytes = encodeDocument({ epoch, params, nodes: nodes.map((n) => n.descriptor(range(epoch, 2)).desc).sort(compareNodes) });
  const container = encodeSignedDocument(bytes, auths.map((a) => ({ authority: a.info.identityKey, signature: signDocument(bytes, a.seed, nodeEd25519) })));
  return verifySignedDocument(container, { authorities: auths.map((a) => a.info), threshold: 2, ed: nodeEd25519 });
}

function sessions(codec: WireCodec, documents?: (epoch: number) => SignedDocument | null) {
  const registry = new Registry();
  const fetches = new Counter({ name: 'f', help: 'f', labelNames: ['result'] as const, registers: [registry] });
  const documentChunks = new Counter({ name: 'd', help: 'd', labelNames: ['result'] as const, registers: [registry] });
  const unused = new Proxy({}, { get: () => () => assert.fail('the mailbox is not touched by a document request') });
  const s = clientSessions({
    mailbox: unused as FetchMailbox,
    limiter: unused as RateLimiter,
    codec,
    fetches,
    deletionsRefused: new Counter({ name: 'r', help: 'r', registers: [registry] }),
    documentChunks,
    ...(documents === undefined ? {} : { documents }),
  });
  return { s, registry };
}

describe('gateway: the directory relayed to clients', () => {
  // Small commands (102 bytes, chunks of 89), so that a document takes many chunks.
  const codec = new WireCodec({ packetLength: 100, maxPayload: 50 });
  const held = new Map([10, 11].map((e) => [e, signed(e)]));
  const lookup = (e: number): SignedDocument | null => held.get(e) ?? null;

  test('every chunk request is answered by exactly one frame, and the chunks join into the signed document', async () => {
    const { s, registry } = sessions(codec, lookup);
    const link = recordingLink();
    const want = encodeSignedDocument(held.get(11)!.bytes, held.get(11)!.signatures);
    const parts: Uint8Array[] = [];
    let total = 1;
    for (let chunk = 0; chunk < total; chunk++) {
      assert.deepEqual(s.command(link, { kind: 'get_document', epoch: 11, chunk }), { kind: 'done' });
      assert.equal(link.frames.length, chunk + 1, 'one frame per request');
      const frame = link.frames[chunk]!;
      assert.equal(frame.length, codec.commandLength);
      const cmd = codec.decode(frame);
      assert.ok(cmd.kind === 'document' && cmd.available && cmd.epoch === 11 && cmd.chunk === chunk);
      total = cmd.total;
      parts.push(cmd.data);
    }
    assert.equal(total, Math.ceil(want.length / codec.documentChunkLength));
    assert.ok(total > 3, 'the document spans several chunks');
    assert.equal(toHex(concatBytes(...parts)), toHex(want));
    const doc = verifySignedDocument(concatBytes(...parts), { authorities: auths.map((a) => a.info), threshold: 3, ed: nodeEd25519, epoch: 11 });
    assert.equal(doc.document.epoch, 11);
    assert.equal(readSample(await registry.metrics(), 'd', { result: 'chunk' }), total);
  });

  test('an epoch it holds no document for, or a chunk past the end, is answered "not available" in one frame of the same length', async () => {
    const { s, registry } = sessions(codec, lookup);
    const link = recordingLink();
    const total = Math.ceil(encodeSignedDocument(held.get(10)!.bytes, held.get(10)!.signatures).length / codec.documentChunkLength);
    const asks: WireCommand[] = [
      { kind: 'get_document', epoch: 12, chunk: 0 },
      { kind: 'get_document', epoch: 9, chunk: 3 },
      { kind: 'get_document', epoch: 10, chunk: total },
    ];
    for (const ask of asks) s.command(link, ask);
    assert.equal(link.frames.length, asks.length);
    const answers = link.frames.map((f) => {
      assert.equal(f.length, codec.commandLength);
      return codec.decode(f);
    });
    assert.deepEqual(answers, [
      { kind: 'document', epoch: 12, available: false, chunk: 0, total: 0, data: new Uint8Array(0) },
      { kind: 'document', epoch: 9, available: false, chunk: 3, total: 0, data: new Uint8Array(0) },
      { kind: 'document', epoch: 10, available: false, chunk: total, total: 0, data: new Uint8Array(0) },
    ]);
    assert.equal(readSample(await registry.metrics(), 'd', { result: 'unavailable' }), 3);
  });

  test('a gateway without a directory answers "not available"', () => {
    const { s } = sessions(codec);
    const link = recordingLink();
    s.command(link, { kind: 'get_document', epoch: 10, chunk: 0 });
    assert.equal(link.frames.length, 1);
    const cmd = codec.decode(link.frames[0]!);
    assert.ok(cmd.kind === 'document' && !cmd.available);
  });

  test('a lookup that returns another epoch than asked is not relayed', () => {
    const { s } = sessions(codec, () => held.get(10)!);
    const link = recordingLink();
    s.command(link, { kind: 'get_document', epoch: 11, chunk: 0 });
    const cmd = codec.decode(link.frames[0]!);
    assert.ok(cmd.kind === 'document' && !cmd.available);
  });
});

describe('gateway: fetches per client are rate limited', () => {
  test('a client within its fetch rate is always answered; a flood past the bucket is dropped, counted and unanswered, per client', async () => {
    const { RateLimiter, fetchBucketRate } = await import('../../src/server/rate-limit.js');
    let now = 0;
    const codec = new WireCodec({ packetLength: 100, maxPayload: 50 });
    const registry = new Registry();
    const empty = { peek: () => null, deleteBelow: () => true, deleteOne: () => true, register: () => undefined } as unknown as FetchMailbox;
    const rate = fetchBucketRate(30);
    const s = clientSessions({
      mailbox: empty,
      limiter: null as unknown as RateLimiter,
      fetchLimiter: new RateLimiter({ ...rate, clock: { now: () => now } as never }),
      codec,
      fetches: new Counter({ name: 'f', help: 'f', labelNames: ['result'] as const, registers: [registry] }),
      deletionsRefused: new Counter({ name: 'r', help: 'r', registers: [registry] }),
      schedule: () => undefined,
    });
    const honest = recordingLink(new Uint8Array(32).fill(1));
    const flood = recordingLink(new Uint8Array(32).fill(2));
    // The honest client fetches at exactly 30/s for a minute; the flooder 7,000 times a second.
    let dropped = 0;
    for (let ms = 0; ms < 60_000; ms += 1) {
      now = ms;
      if (ms % 33 === 0) assert.deepEqual(s.command(honest, { kind: 'retrieve_message', sequence: 0 }), { kind: 'done' });
      for (let i = 0; i < 7; i++) {
        const r = s.command(flood, { kind: 'retrieve_message', sequence: 0 });
        if (r.kind === 'drop') {
          assert.equal(r.reason, 'fetch_rate_limited');
          dropped++;
        }
      }
    }
    assert.equal(honest.frames.length, Math.ceil(60_000 / 33), 'every honest fetch got its one answer');
    const answered = flood.frames.length;
    assert.equal(answered + dropped, 7 * 60_000);
    // At most the burst plus the refill: 300 + 60 s × 60/s.
    assert.ok(answered <= rate.burst + 60 * rate.perSecond, `flood answered ${answered}`);
    assert.ok(answered >= 60 * rate.perSecond, `flood answered ${answered}`);
    assert.equal(readSample(await registry.metrics(), 'f', { result: 'empty' }), honest.frames.length + answered);
  });
});
