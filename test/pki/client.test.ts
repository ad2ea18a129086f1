/** The HTTP client against real loopback servers that answer what each test sets. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fetchDocument, uploadDescriptor } from '../../src/pki/client.js';
import { compareNodes, encodeDocument, encodeSignedDocument, signDocument } from '../../src/pki/document.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import type { AuthorityInfo, ConsensusDocument } from '../../src/pki/types.js';
import { params, range, testAuthorities, testNetwork } from './fixtures.js';

const pkiCode = (...codes: string[]) => (e: unknown): boolean => e instanceof Error && 'code' in e && codes.includes(String(e.code));

type Answer = { status: number; body: Uint8Array | string; delayMs?: number; chunked?: boolean } | 'hang';

interface FakeAuthority {
  server: Server;
  url: string;
  answers: Map<string, Answer>;
  requests: Array<{ method: string; path: string; body: Buffer }>;
}

async function fakeAuthority(): Promise<FakeAuthority> {
  const answers = new Map<string, Answer>();
  const requests: FakeAuthority['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', body: Buffer.concat(chunks) });
      const a = answers.get(`${req.method} ${req.url}`) ?? { status: 404, body: '{"error":"ERR_NOT_FOUND"}' };
      if (a === 'hang') return;
      setTimeout(() => {
        if (a.chunked) {
          res.writeHead(a.status);
          res.write(a.body);
          res.end();
        } else {
          res.writeHead(a.status, { 'content-length': Buffer.byteLength(a.body) });
          res.end(a.body);
        }
      }, a.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, answers, requests };
}

const auths = testAuthorities(3, 'client');
const E = 4242;
const doc: ConsensusDocument = {
  epoch: E,
  params,
  nodes: testNetwork('cl').map((n) => n.descriptor(range(E, 2)).desc).sort(compareNodes),
};
const docBytes = encodeDocument(doc);
const sig = (i: number) => ({ authority: auths[i]!.info.identityKey, signature: signDocument(docBytes, auths[i]!.seed, nodeEd25519) });

describe('the directory client', () => {
  const fakes: FakeAuthority[] = [];
  let infos: AuthorityInfo[] = [];
  let downUrl = '';

  before(async () => {
    for (let i = 0; i < 3; i++) fakes.push(await fakeAuthority());
    infos = auths.map((a, i) => ({ ...a.info, url: fakes[i]!.url }));
    const gone = await fakeAuthority();
    downUrl = gone.url;
    await new Promise((r) => gone.server.close(r));
  });
  after(async () => {
    for (const f of fakes) {
      f.server.closeAllConnections();
      await new Promise((r) => f.server.close(r));
    }
  });
  const reset = (): void => {
    for (const f of fakes) {
      f.answers.clear();
      f.requests.length = 0;
    }
  };

  test('merges signatures for the same document across authorities', async () => {
    reset();
    fakes[0]!.answers.set(`GET /v1/document/${E}`, { status: 200, body: encodeSignedDocument(docBytes, [sig(0)]) });
    fakes[1]!.answers.set(`GET /v1/document/${E}`, { status: 200, body: encodeSignedDocument(docBytes, [sig(1)]), delayMs: 30 });
    const signed = await fetchDocument({ authorities: infos, threshold: 2, epoch: E, ed: nodeEd25519 });
    assert.deepEqual(signed.bytes, docBytes);
    assert.deepEqual(signed.document, doc);
    assert.equal(signed.signatures.length, 2);
  });

  test("'current' picks the newest document that reaches the threshold", async () => {
    reset();
    const older: ConsensusDocument = { ...doc, epoch: E - 1, nodes: [] };
    const olderBytes = encodeDocument(older);
    const olderSigned = encodeSignedDocument(olderBytes, [0, 1, 2].map((i) => ({ authority: auths[i]!.info.identityKey, signature: signDocument(olderBytes, auths[i]!.seed, nodeEd25519) })));
    fakes[0]!.answers.set('GET /v1/document/current', { status: 200, body: olderSigned });
    fakes[1]!.answers.set('GET /v1/document/current', { status: 200, body: encodeSignedDocument(docBytes, [sig(1), sig(2)]) });
    fakes[2]!.answers.set('GET /v1/document/current', { status: 200, body: olderSigned });
    const signed = await fetchDocument({ authorities: infos, threshold: 2, epoch: 'current', ed: nodeEd25519 });
    assert.equal(signed.document.epoch, E);
  });

  test('no document anywhere is ERR_PKI_FETCH; documents without enough signatures ERR_PKI_THRESHOLD', async () => {
    reset();
    await assert.rejects(fetchDocument({ authorities: infos, threshold: 2, epoch: E, ed: nodeEd25519 }), pkiCode('ERR_PKI_FETCH'));
    await assert.rejects(
      fetchDocument({ authorities: [{ ...infos[0]!, url: downUrl }], threshold: 1, epoch: E, ed: nodeEd25519 }),
      pkiCode('ERR_PKI_FETCH'),
    );
    fakes[0]!.answers.set(`GET /v1/document/${E}`, { status: 200, body: encodeSignedDocument(docBytes, [sig(0)]) });
    fakes[1]!.answers.set(`GET /v1/document/${E}`, { status: 200, body: 'garbage' });
    fakes[2]!.answers.set(`GET /v1/document/${E}`, { status: 200, body: encodeSignedDocument(docBytes, [sig(0)]) });
    await assert.rejects(fetchDocument({ authorities: infos, threshold: 2, epoch: E, ed: nodeEd25519 }), pkiCode('ERR_PKI_THRESHOLD'));
    // A document for another epoch does not count as an answer.
    reset();
    fakes[0]!.answers.set(`GET /v1/document/${E + 1}`, { status: 200, body: encodeSignedDocument(docBytes, [sig(0), sig(1)]) });
    await assert.rejects(fetchDocument({ authorities: infos, threshold: 2, epoch: E + 1, ed: nodeEd25519 }), pkiCode('ERR_PKI_FETCH'));
  });

  test('oversized answers and slow authorities are cut off', async () => {
    reset();
    const big = new Uint8Array(2048).fill(1);
    fakes[0]!.answers.set(`GET /v1/document/${E}`, { status: 200, body: big });
    fakes[1]!.answers.set(`GET /v1/document/${E}`, { status: 200, body: big, chunked: true });
    fakes[2]!.answers.set(`GET /v1/document/${E}`, 'hang');
    const t0 = Date.now();
    await assert.rejects(fetchDocument({ authorities: infos, threshold: 1, epoch: E, ed: nodeEd25519, maxBytes: 1024, timeoutMs: 300 }), pkiCode('ERR_PKI_FETCH'));
    assert.ok(Date.now() - t0 < 3000);
  });

  test('a hanging authority does not delay a threshold reached by the others', async () => {
    reset();
    fakes[0]!.answers.set(`GET /v1/document/${E}`, { status: 200, body: encodeSignedDocument(docBytes, [sig(0), sig(2)]) });
    fakes[1]!.answers.set(`GET /v1/document/${E}`, 'hang');
    fakes[2]!.answers.set(`GET /v1/document/${E}`, 'hang');
    const t0 = Date.now();
    const signed = await fetchDocument({ authorities: infos, threshold: 2, epoch: E, ed: nodeEd25519, timeoutMs: 5000 });
    assert.equal(signed.signatures.length, 2);
    assert.ok(Date.now() - t0 < 2000);
  });

  test('uploads reach every authority and report each outcome without throwing', async () => {
    reset();
    const { bytes } = testNetwork('up')[0]!.descriptor([E]);
    fakes[0]!.answers.set('POST /v1/descriptor', { status: 200, body: '{"epochs":[1]}' });
    fakes[1]!.answers.set('POST /v1/descriptor', { status: 403, body: '{"error":"ERR_PKI_UNAUTHORIZED"}' });
    const outcomes = await uploadDescriptor([...infos.slice(0, 2), { ...infos[2]!, url: downUrl }], bytes, { timeoutMs: 1000 });
    assert.deepEqual(outcomes, [
      { authority: infos[0]!.name, ok: true, status: 200, error: null },
      { authority: infos[1]!.name, ok: false, status: 403, error: 'ERR_PKI_UNAUTHORIZED' },
      { authority: infos[2]!.name, ok: false, status: null, error: 'ERR_PKI_FETCH' },
    ]);
    assert.deepEqual(new Uint8Array(fakes[0]!.requests[0]!.body), bytes);
  });
});
