/**
 * Every Noise vector of ../shared/vectors/noise (cacophony and snow) whose suite we serve, through
 * the public createHandshake API only, for both the native and the portable primitives. Only the
 * Curve448 suites are skipped; the counts are printed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Handshake, NoiseCrypto } from '../../src/noise/index.js';
import { createHandshakeWith, nodeNoiseCrypto, parseProtocolName, portableNoiseCrypto } from '../../src/noise/index.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { loadVectors } from '../vectors.js';

interface NoiseVector {
  protocol_name: string;
  init_prologue: string;
  init_psks?: string[];
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_psks?: string[];
  resp_static?: string;
  resp_ephemeral?: string;
  resp_remote_static?: string;
  handshake_hash?: string;
  messages: { payload: string; ciphertext: string }[];
}

const hex = (s: string | undefined): Uint8Array | undefined => (s === undefined ? undefined : fromHex(s));

function side(crypto: NoiseCrypto, v: NoiseVector, initiator: boolean): Handshake {
  const p = initiator ? 'init' : 'resp';
  const opt = <K extends keyof NoiseVector>(k: K): NoiseVector[K] => v[k];
  const s = hex(opt(`${p}_static` as 'init_static'));
  const e = hex(opt(`${p}_ephemeral` as 'init_ephemeral'));
  const rs = hex(opt(`${p}_remote_static` as 'init_remote_static'));
  return createHandshakeWith(crypto, {
    protocolName: v.protocol_name,
    initiator,
    prologue: fromHex(opt(`${p}_prologue` as 'init_prologue')),
    ...(s ? { s } : {}),
    ...(e ? { e } : {}),
    ...(rs ? { rs } : {}),
    psks: (opt(`${p}_psks` as 'init_psks') ?? []).map(fromHex),
  });
}

/** Replays one vector; throws an assertion error naming the message that differs. */
function replay(crypto: NoiseCrypto, v: NoiseVector): void {
  const { pattern } = parseProtocolName(v.protocol_name);
  const init = side(crypto, v, true);
  const resp = side(crypto, v, false);
  let transport: { i2r: [ReturnType<Handshake['split']>[0], ReturnType<Handshake['split']>[0]]; r2i: [ReturnType<Handshake['split']>[1], ReturnType<Handshake['split']>[1]] } | undefined;
  v.messages.forEach((m, i) => {
    const payload = fromHex(m.payload);
    const fromInitiator = pattern.oneWay || i % 2 === 0;
    if (!init.finished) {
      assert.equal(resp.finished, false);
      const [w, r] = i % 2 === 0 ? [init, resp] : [resp, init];
      const ct = w.writeMessage(payload);
      assert.equal(toHex(ct), m.ciphertext, `handshake message ${i}`);
      assert.equal(toHex(r.readMessage(ct)), m.payload, `handshake payload ${i}`);
      return;
    }
    if (!transport) {
      assert.equal(resp.finished, true);
      assert.deepEqual(init.handshakeHash, resp.handshakeHash);
      if (v.handshake_hash !== undefined) assert.equal(toHex(init.handshakeHash), v.handshake_hash, 'handshake hash');
      const [ii, ir] = init.split();
      const [ri, rr] = resp.split();
      transport = { i2r: [ii, ri], r2i: [rr, ir] };
    }
    const [enc, dec] = fromInitiator ? transport.i2r : transport.r2i;
    const ct = enc.encrypt(new Uint8Array(0), payload);
    assert.equal(toHex(ct), m.ciphertext, `transport message ${i}`);
    assert.equal(toHex(dec.decrypt(new Uint8Array(0), ct)), m.payload, `transport payload ${i}`);
  });
  assert.ok(init.finished && resp.finished, 'handshake finished');
}

const BACKENDS: [string, NoiseCrypto][] = [['node', nodeNoiseCrypto], ['portable', portableNoiseCrypto]];

for (const file of ['cacophony.json', 'snow.json']) {
  const loaded = loadVectors<{ vectors: NoiseVector[] }>(`noise/${file}`);
  describe(`noise vectors: ${file}`, () => {
    if ('skip' in loaded) {
      test.skip(loaded.skip);
      return;
    }
    const vectors = loaded.data.vectors;
    for (const [name, crypto] of BACKENDS) {
      test(`${name} primitives`, (t) => {
        let run = 0;
        let skipped = 0;
        for (const v of vectors) {
          const dh = v.protocol_name.split('_')[2];
          if (dh === '448') {
            skipped++;
            continue;
          }
          assert.equal(dh, '25519', `${v.protocol_name}: unexpected DH`);
          try {
            replay(crypto, v);
          } catch (e) {
            assert.fail(`${v.protocol_name}: ${(e as Error).message}`);
          }
          run++;
        }
        t.diagnostic(`${file} (${name}): ${run} vectors run, ${skipped} skipped (Curve448, not served)`);
        assert.equal(run + skipped, vectors.length);
        assert.ok(run > 0);
      });
    }
  });
}
