// The messenger's ops on the daemon's socket: contacts by card, send and follow states, history,
// unread messages with read acknowledgements, files, and errors answered by code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientApi } from '../../src/client/api.js';
import { startIpcServer } from '../../src/client/daemon.js';
import { ipcCall, ipcRequest } from '../../src/client/ipc.js';
import type { IpcMessage } from '../../src/client/ipc.js';
import { messengerIpc } from '../../src/client/messenger-ipc.js';
import { isBackchannelError } from '../../src/errors.js';
import { cardToText } from '../../src/messaging/index.js';
import { memoryLogger } from '../../src/ops/log.js';
import { Net } from '../messaging/_net.js';

const noApi = new Proxy({}, { get: () => () => { throw new Error('not used'); } }) as unknown as ClientApi;

test('messenger ops: cards, send with states, history, unread and read, files, errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bc-msgipc-'));
  const net = new Net();
  const a = net.party('a');
  const b = net.party('b');
  const server = await startIpcServer({ path: join(dir, 's.sock'), api: noApi, log: memoryLogger(), extension: messengerIpc(a.messenger) });
  const call = (m: IpcMessage): Promise<IpcMessage> => ipcCall(server.path, m);
  try {
    assert.deepEqual((await call({ op: 'contacts' }))['contacts'], []);
    const aCard = String((await call({ op: 'contact_export' }))['card']);
    b.messenger.importContact('alice', new Uint8Array(Buffer.from(aCard, 'base64url')));
    const added = await call({ op: 'contact_import', name: 'bob', card: cardToText(b.messenger.exportCard()) });
    assert.equal((added['contact'] as IpcMessage)['name'], 'bob');
    net.settle();

    // send with wait: the answer, then states until delivered (the network runs meanwhile)
    const states: string[] = [];
    let queued: () => void = () => undefined;
    const isQueued = new Promise<void>((r) => (queued = r));
    const done = ipcRequest(server.path, { op: 'msg_send', name: 'bob', text: 'over the socket', wait: true }, (m) => {
      const e = m['entry'] as IpcMessage;
      states.push(String(e['state']));
      queued();
    });
    // The network runs once the message is queued (its first state came back), not after a guess at how long that takes.
    await isQueued;
    net.settle();
    await done;
    assert.deepEqual([states[0], states.at(-1)], ['queued', 'delivered']);

    b.messenger.sendText('alice', 'unread one');
    b.messenger.sendFile('alice', 'x.bin', Uint8Array.of(1, 2, 3));
    net.settle();
    const seen: IpcMessage[] = [];
    await ipcRequest(server.path, { op: 'msg_recv' }, (m, c) => {
      if (m['event'] === 'message') {
        const e = m['entry'] as IpcMessage;
        seen.push(e);
        c.send({ op: 'read', id: e['id'] });
      }
    });
    assert.deepEqual(seen.map((e) => e['text'] ?? e['file_name']), ['unread one', 'x.bin']);
    // read: nothing the second time
    const again: IpcMessage[] = [];
    await ipcRequest(server.path, { op: 'msg_recv' }, (m) => void (m['event'] === 'message' && again.push(m)));
    assert.deepEqual(again, []);
    const file = await call({ op: 'msg_file', id: seen[1]!['id'] });
    assert.equal(file['name'], 'x.bin');
    assert.equal(file['data_base64'], Buffer.from([1, 2, 3]).toString('base64'));
    const h = (await call({ op: 'history', name: 'bob' }))['entries'] as IpcMessage[];
    assert.equal(h.length, 3);
    const v = await call({ op: 'contact_verify', name: 'bob', verified: true });
    assert.equal(v['safety_number'], b.messenger.safetyNumber('alice'));

    const fails = async (m: IpcMessage, code: string): Promise<void> => {
      await assert.rejects(call(m), (e: unknown) => isBackchannelError(e) && e.code === code);
    };
    await fails({ op: 'msg_send', name: 'nobody', text: 'x' }, 'ERR_MSG_CONTACT');
    await fails({ op: 'contact_import', name: 'c', card: 'AAAA' }, 'ERR_MSG_ENCODING');
    await fails({ op: 'contacts', extra: 1 }, 'ERR_CLIENT_IPC');
    await fails({ op: 'history', name: 'bob', limit: -1 }, 'ERR_CLIENT_IPC');
    await fails({ op: 'msg_file', id: 999 }, 'ERR_MSG_ATTACHMENT');
    await fails({ op: 'contact_rename', name: 'bob', new_name: '-x' }, 'ERR_MSG_CONTACT');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
