// The authority's HTTP server against slow, silent and numerous peers, over real sockets: a
// request that never finishes its headers is dropped on time (Node's default checks every 30 s),
// a malformed request from a peer that never reads is answered and then closed for good, and one
// source is held to its connections.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { jsonError, startApiServer } from '../../src/authority/http.js';
import type { ApiServer } from '../../src/authority/http.js';
import { silentLogger } from '../../src/ops/log.js';
import { HEADERS_TIMEOUT_MS } from '../../src/util/http-guard.js';
import type { GateLimits } from '../../src/util/gate.js';

const servers: ApiServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function server(gate?: GateLimits): Promise<ApiServer> {
  const s = await startApiServer({
    host: '127.0.0.1',
    port: 0,
    route: (method, path) => (method === 'GET' && path === '/ok' ? { bodyLimit: 0 } : { status: 404, error: 'ERR_NOT_FOUND' }),
    handle: () => ({ status: 200, json: { ok: true } }),
    log: silentLogger,
    ...(gate === undefined ? {} : { gate }),
  });
  servers.push(s);
  return s;
}

function open(port: number, from = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from }, () => resolve(s));
    s.on('error', reject);
  });
}

async function until(cond: () => boolean, what: string, ms: number): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

describe('authority HTTP against slow and silent peers', () => {
  test('a request whose headers never end is dropped soon after the headers timeout', async () => {
    const s = await server();
    const sock = await open(s.port);
    sock.on('error', () => undefined);
    let closed = false;
    sock.on('close', () => (closed = true));
    sock.write('GET /ok HTTP/1.1\r\nhost: x\r\n'); // and never the blank line
    let answer = '';
    sock.on('data', (d: Buffer) => (answer += d.toString()));
    assert.equal(s.gate.open, 1);
    // Headers timeout plus the check interval, with room for a loaded machine; Node's default
    // check every 30 s would take up to 35 s.
    await until(() => closed, 'the server to drop the socket', HEADERS_TIMEOUT_MS + 8_000);
    await until(() => s.gate.open === 0, 'the gate to count it closed', 2_000);
    assert.match(answer, /^HTTP\/1\.1 408 /);
  });

  test('a malformed request from a peer that never reads is answered 400 and the socket destroyed', async () => {
    const s = await server();
    const sock = await open(s.port);
    sock.on('error', () => undefined);
    sock.pause(); // never reads the answer
    sock.write('NOT HTTP AT ALL\r\n\r\n');
    await until(() => s.gate.open === 0, 'the server to destroy the socket', 5_000);
    sock.destroy();
  });

  test('one source is held to its open connections; another source is not', async () => {
    const s = await server({ maxPerSource: 2, maxTotal: 100, ratePerSource: { perSecond: 1000, burst: 1000 } });
    const held = [await open(s.port, '127.0.0.2'), await open(s.port, '127.0.0.2')];
    const third = await open(s.port, '127.0.0.2');
    await new Promise((r) => third.once('close', r));
    assert.equal(s.gate.refused.source_open, 1);
    const res = await fetch(`${s.url}/ok`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
    for (const h of held) h.destroy();
    assert.deepEqual(jsonError(404, 'ERR_NOT_FOUND'), { status: 404, json: { error: 'ERR_NOT_FOUND' } });
  });
});
