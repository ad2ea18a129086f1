/**
 * Whatever user code under a link throws (a transport's write, an accept policy), the caller
 * gets a BackchannelError with a code, even when the thrown value is not an Error.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { isBackchannelError } from '../../src/errors.js';
import { Link } from '../../src/link/link.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import { MemoryTransport, pass } from '../helpers/memory-transport.js';

const serverKey = nodeBackend.randomBytes(32);
const clientKey = nodeBackend.randomBytes(32);
const serverPub = nodeBackend.x25519Base(serverKey);

/** Runs the three handshake messages; the responder's accept policy answers after them. */
function handshake(accept: (k: Uint8Array) => boolean): { client: Promise<Link>; server: Promise<Link>; ct: MemoryTransport; st: MemoryTransport } {
  const ct = new MemoryTransport();
  const st = new MemoryTransport();
  const client = Link.initiate(ct, nodeNoiseCrypto, { staticKey: clientKey, remoteStatic: serverPub });
  const server = Link.respond(st, nodeNoiseCrypto, { staticKey: serverKey, accept });
  pass(ct, st); // -> e, es
  pass(st, ct); // <- e, ee
  pass(ct, st); // -> s, se
  return { client, server, ct, st };
}

test('a transport whose write throws a non-Error makes send reject with ERR_LINK_TRANSPORT, the value kept as the cause', async () => {
  const { client, server, ct, st } = handshake(() => true);
  await new Promise((r) => setImmediate(r)); // the accept callback answers asynchronously
  pass(st, ct); // ready
  const link = await client;
  await server;
  ct.write = () => {
    throw 'socket gone';
  };
  await assert.rejects(link.send(new Uint8Array(10)), (e: unknown) => {
    assert.ok(isBackchannelError(e, 'ERR_LINK_TRANSPORT'), String(e));
    assert.match(e.message, /^link: /);
    assert.equal(e.cause, 'socket gone');
    return true;
  });
});

test('an accept policy that throws a non-Error refuses the peer with ERR_LINK_REJECTED, the value kept as the cause', async () => {
  const { client, server, ct, st } = handshake(() => {
    throw 'policy store unavailable';
  });
  await assert.rejects(server, (e: unknown) => {
    assert.ok(isBackchannelError(e, 'ERR_LINK_REJECTED'), String(e));
    assert.equal(e.message, 'link: accept policy failed');
    assert.equal(e.cause, 'policy store unavailable');
    return true;
  });
  pass(st, ct); // the close frame
  await assert.rejects(client, (e: unknown) => isBackchannelError(e, 'ERR_LINK_REJECTED'));
});
