import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isBackchannelError } from '../../src/errors.js';
import { decodeForwardPayload, encodeForwardPayload, FLAG_SURB } from '../../src/sphinx/payload.js';
import { defaultGeometry, geometryFromUserPayload } from '../../src/sphinx/geometry.js';

describe('forward payload layout', () => {
  const g = defaultGeometry();

  it('round-trips a body with and without a SURB, padding the body with zeros', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: g.userForwardPayloadLength }), fc.boolean(), (body, withSurb) => {
        const surb = withSurb ? new Uint8Array(g.surbLength).fill(7) : null;
        const p = encodeForwardPayload(g, body, surb);
        assert.equal(p.length, g.forwardPayloadLength);
        assert.equal(p[0], withSurb ? FLAG_SURB : 0);
        const d = decodeForwardPayload(g, p);
        assert.deepEqual(d.surb, surb);
        assert.equal(d.body.length, g.userForwardPayloadLength);
        assert.deepEqual(d.body.subarray(0, body.length), body);
        assert.ok(d.body.subarray(body.length).every((b) => b === 0));
      }),
      { numRuns: 50 },
    );
  });

  it('carries the whole payload as the body in a geometry without SURBs', () => {
    const plain = geometryFromUserPayload(5, 100, false);
    const p = encodeForwardPayload(plain, Uint8Array.of(1, 2, 3), null);
    assert.deepEqual(decodeForwardPayload(plain, p), { surb: null, body: p });
    assert.throws(() => encodeForwardPayload(plain, new Uint8Array(1), new Uint8Array(plain.surbLength)), (e) => isBackchannelError(e, 'ERR_PAYLOAD'));
  });

  it('refuses a body too long, a SURB of the wrong length, unknown flags and a set reserved byte', () => {
    const bad = (f: () => unknown): void => assert.throws(f, (e) => isBackchannelError(e, 'ERR_PAYLOAD'));
    bad(() => encodeForwardPayload(g, new Uint8Array(g.userForwardPayloadLength + 1), null));
    bad(() => encodeForwardPayload(g, new Uint8Array(1), new Uint8Array(g.surbLength - 1)));
    const p = encodeForwardPayload(g, new Uint8Array(1), null);
    p[0] = 0x02;
    bad(() => decodeForwardPayload(g, p));
    p[0] = 0;
    p[1] = 1;
    bad(() => decodeForwardPayload(g, p));
    bad(() => decodeForwardPayload(g, new Uint8Array(g.forwardPayloadLength - 1)));
  });
});
