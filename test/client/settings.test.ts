// The client's stored settings: the gateway contact that lets `client run` reach its gateway
// before it has a document, read back as written, refused when damaged, refreshed from documents.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SETTING_GATEWAY_CONTACT, contactNode, readClientIdentity, refreshGatewayContact, saveClientIdentity } from '../../src/client/settings.js';
import type { ClientIdentity } from '../../src/client/settings.js';
import { SqliteClientStore } from '../../src/client/sqlite-store.js';
import { isBackchannelError } from '../../src/errors.js';
import { bytes32, params, testAuthorities, testNetwork } from '../pki/fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'bc-settings-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshStore = (): SqliteClientStore => SqliteClientStore.open(join(root, `c${n++}.db`));

const gw = testNetwork('settings')[0]!.descriptor([7]).desc;
const identity: ClientIdentity = {
  linkPrivateKey: bytes32('settings link'),
  gateway: gw.identityKey,
  authorities: testAuthorities(3, 'settings').map((a) => a.info),
  threshold: 2,
  contact: { name: gw.name, linkKey: gw.linkKey, tcpAddress: gw.tcpAddress, wsAddress: gw.wsAddress, params },
};

describe('client settings: the gateway contact', () => {
  test('is read back as init wrote it, and gives the engine our gateway entry', () => {
    const store = freshStore();
    try {
      saveClientIdentity(store, identity);
      const back = readClientIdentity(store);
      assert.deepEqual(back.contact, identity.contact);
      const node = contactNode(back, back.contact!);
      assert.deepEqual(node.identityKey, gw.identityKey);
      assert.deepEqual(node.linkKey, gw.linkKey);
      assert.equal(node.tcpAddress, gw.tcpAddress);
      assert.equal(node.role, 'gateway');
    } finally {
      store.close();
    }
  });

  test('a client stored without one reads as having none; a damaged one is ERR_CLIENT_STATE', () => {
    const store = freshStore();
    try {
      saveClientIdentity(store, { ...identity, contact: null });
      assert.equal(readClientIdentity(store).contact, null);
      for (const bad of ['{', '{"name":"x"}', JSON.stringify({ name: gw.name, linkKey: 'ab', tcpAddress: gw.tcpAddress, wsAddress: null, params })]) {
        store.setSetting(SETTING_GATEWAY_CONTACT, new TextEncoder().encode(bad));
        assert.throws(() => readClientIdentity(store), (e) => isBackchannelError(e, 'ERR_CLIENT_STATE'), bad);
      }
    } finally {
      store.close();
    }
  });

  test('a document that moves our gateway refreshes the contact; the same entry or a document without it writes nothing', () => {
    const store = freshStore();
    try {
      saveClientIdentity(store, identity);
      assert.equal(refreshGatewayContact(store, identity, { params, nodes: [gw] }), false);
      assert.equal(refreshGatewayContact(store, identity, { params, nodes: [] }), false);
      const moved = { ...gw, tcpAddress: '127.0.0.1:4444', linkKey: bytes32('new link') };
      assert.equal(refreshGatewayContact(store, identity, { params, nodes: [moved] }), true);
      const back = readClientIdentity(store).contact!;
      assert.equal(back.tcpAddress, '127.0.0.1:4444');
      assert.deepEqual(back.linkKey, moved.linkKey);
    } finally {
      store.close();
    }
  });
});
