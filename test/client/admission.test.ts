/** The client's side of admission: it computes the work a gateway asks once, keeps it, and says why it was refused otherwise. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ADMISSION_TOKEN_SETTING, ClientAdmission } from '../../src/client/admission.js';
import { silentLogger } from '../../src/ops/log.js';
import { decodeAdmission, encodeAdmission, workBits } from '../../src/wire/admission.js';

const gateway = new Uint8Array(32).fill(3);
const me = new Uint8Array(32).fill(4);

function client() {
  const settings = new Map<string, Uint8Array>();
  const store = { getSetting: (k: string) => settings.get(k) ?? null, setSetting: (k: string, v: Uint8Array) => void settings.set(k, v) };
  const a = new ClientAdmission({ store, linkPublicKey: me, log: silentLogger, yieldNow: () => Promise.resolve(), cancelled: () => false });
  return { a, settings };
}

describe('client: admission', () => {
  test('nothing is carried at first; refused for work, the proof is computed once, kept, and carried from then on', async () => {
    const { a, settings } = client();
    assert.equal(a.payload(gateway), undefined);
    await a.refused(gateway, { code: 'ERR_ADMISSION_WORK', message: 'link: work', workBits: 10 });
    assert.deepEqual(a.state, { state: 'ready' });
    const p = a.payload(gateway)!;
    const d = decodeAdmission(p);
    assert.ok(d.kind === 'work' && workBits(gateway, me, d.nonce) >= 10);
    assert.equal(settings.size, 1, 'kept in the store');
    assert.equal(a.payload(new Uint8Array(32).fill(5)), undefined, 'for that gateway only');
  });

  test('refused for a token, it says so; a token the user keeps is carried, first when the gateway asked for one', async () => {
    const { a, settings } = client();
    await a.refused(gateway, { code: 'ERR_ADMISSION_TOKEN_REQUIRED', message: 'link: this gateway requires an invitation token from its operator', workBits: null });
    assert.deepEqual(a.state, { state: 'refused', code: 'ERR_ADMISSION_TOKEN_REQUIRED', message: 'this gateway requires an invitation token from its operator' });
    const token = new Uint8Array(32).fill(7);
    settings.set(ADMISSION_TOKEN_SETTING, token);
    settings.set(`admission:${Buffer.from(gateway).toString('hex')}`, encodeAdmission({ kind: 'work', nonce: new Uint8Array(16) }));
    assert.deepEqual(decodeAdmission(a.payload(gateway)!), { kind: 'token', token });
    a.admitted();
    assert.deepEqual(a.state, { state: 'ready' });
  });
});
