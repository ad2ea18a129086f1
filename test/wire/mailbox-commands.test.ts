// Wire commands for extra mailboxes: `mailbox_request`, `mailbox_reply`, and a `message` tagged
// with the mailbox its entry came to. Round trips, a pinned layout, the command length left as it
// was, strict decoding of every malformed field, and fuzzing that yields only typed errors.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BackchannelError, isBackchannelError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { toHex } from '../../src/util/bytes.js';
import { MESSAGE_BODY_OVERHEAD, WIRE_HEADER_LENGTH, WIRE_VERSION, WireCodec, WireCommandType } from '../../src/wire/index.js';
import type { WireCommand } from '../../src/wire/index.js';

function expectCode(code: ErrorCode, fn: () => unknown, label?: string): void {
  assert.throws(fn, (e) => isBackchannelError(e, code), label);
}


/** A small codec with room for mailbox commands: commandLength = 2 + 27 + 40 = 69; a tagged payload holds 8 bytes. */
const small = new WireCodec({ packetLength: 40, maxPayload: 40 });
/** The default geometry's codec (3-hop Sphinx packets of 3,082 bytes). */
const real = new WireCodec({ packetLength: 3082 });
/** A codec too small for a mailbox id: commandLength 32. */
const tiny = new WireCodec({ packetLength: 4, maxPayload: 3 });

const MB = new Uint8Array(32).fill(0xab);

function mailboxCommandArb(codec: WireCodec): fc.Arbitrary<WireCommand> {
  const id = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const action = fc.constantFrom('register' as const, 'revoke' as const);
  const result = fc.constantFrom('ok' as const, 'pending' as const, 'limit' as const, 'taken' as const, 'revoked' as const, 'invalid' as const);
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  return fc.oneof(
    fc.record({ kind: fc.constant('mailbox_request' as const), action, mailbox: id }),
    fc.record({ kind: fc.constant('mailbox_reply' as const), action, mailbox: id, result }),
    fc.record({
      kind: fc.constant('message' as const),
      sequence: u32,
      queueHint: u32,
      empty: fc.constant(false),
      surbId: fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 }), { nil: null }),
      payload: fc.uint8Array({ minLength: 0, maxLength: codec.maxTaggedPayload }),
      mailbox: id,
    }),
  );
}

describe('wire mailbox commands', () => {
  test('the command length is what it was: header plus the larger of a packet and a message body', () => {
    for (const opts of [{ packetLength: 3082 }, { packetLength: 40, maxPayload: 40 }, { packetLength: 4, maxPayload: 3 }, { packetLength: 2000, maxPayload: 100 }]) {
      const c = new WireCodec(opts);
      assert.equal(c.commandLength, WIRE_HEADER_LENGTH + Math.max(opts.packetLength, MESSAGE_BODY_OVERHEAD + (opts.maxPayload ?? opts.packetLength)));
    }
    assert.equal(real.commandLength, 2 + 27 + 3082);
    assert.equal(real.maxTaggedPayload, 3082 - 32);
    assert.equal(small.maxTaggedPayload, 8);
    assert.equal(real.carriesMailboxes, true);
    assert.equal(tiny.carriesMailboxes, false);
  });

  for (const [name, codec] of [['3082', real], ['small', small]] as const) {
    test(`requests, replies and tagged messages round trip (${name})`, () => {
      fc.assert(
        fc.property(mailboxCommandArb(codec), (cmd) => {
          const bytes = codec.encode(cmd);
          assert.equal(bytes.length, codec.commandLength);
          assert.deepEqual(codec.decode(bytes), { ...cmd });
          const view = codec.decodeView(bytes);
          assert.deepEqual({ ...view }, { ...cmd });
        }),
        { numRuns: 300 },
      );
    });
  }

  test('a message for the main mailbox decodes without a mailbox field, as before', () => {
    const cmd: WireCommand = { kind: 'message', sequence: 1, queueHint: 0, empty: false, surbId: null, payload: new Uint8Array([1, 2]) };
    const d = small.decode(small.encode(cmd));
    assert.equal('mailbox' in d, false);
    // A null mailbox is the main mailbox: the same bytes as no mailbox at all.
    assert.equal(toHex(small.encode({ ...cmd, mailbox: null })), toHex(small.encode(cmd)));
  });

  test('known answers: the layout is pinned', () => {
    const pad = (n: number): string => '00'.repeat(n);
    const mb = 'ab'.repeat(32);
    assert.equal(toHex(small.encode({ kind: 'mailbox_request', action: 'register', mailbox: MB })), `01 08 00 ${mb}`.replace(/\s/g, '') + pad(69 - 35));
    assert.equal(toHex(small.encode({ kind: 'mailbox_request', action: 'revoke', mailbox: MB })), `01 08 01 ${mb}`.replace(/\s/g, '') + pad(69 - 35));
    assert.equal(toHex(small.encode({ kind: 'mailbox_reply', action: 'register', result: 'limit', mailbox: MB })), `01 09 00 02 ${mb}`.replace(/\s/g, '') + pad(69 - 36));
    const tagged = small.encode({ kind: 'message', sequence: 7, queueHint: 2, empty: false, surbId: null, payload: new Uint8Array([0xee, 0xff]), mailbox: MB });
    assert.equal(toHex(tagged), `01 04 00000007 00000002 04 ${pad(16)} 0002 ${mb} eeff`.replace(/\s/g, '') + pad(69 - 63));
    assert.equal(tagged[0], WIRE_VERSION);
    assert.equal(tagged[1], WireCommandType.message);
  });

  test('an unknown action or result is ERR_WIRE_COMMAND', () => {
    const req = small.encode({ kind: 'mailbox_request', action: 'register', mailbox: MB });
    req[2] = 2;
    expectCode('ERR_WIRE_COMMAND', () => small.decode(req));
    const rep = small.encode({ kind: 'mailbox_reply', action: 'revoke', result: 'ok', mailbox: MB });
    rep[3] = 6;
    expectCode('ERR_WIRE_COMMAND', () => small.decode(rep));
    rep[3] = 0;
    rep[2] = 0xff;
    expectCode('ERR_WIRE_COMMAND', () => small.decode(rep));
  });

  test('a non-zero byte after the mailbox id is ERR_WIRE_COMMAND', () => {
    const req = small.encode({ kind: 'mailbox_request', action: 'register', mailbox: MB });
    req[WIRE_HEADER_LENGTH + 1 + 32] = 1;
    expectCode('ERR_WIRE_COMMAND', () => small.decode(req));
    const rep = small.encode({ kind: 'mailbox_reply', action: 'register', result: 'ok', mailbox: MB });
    rep[small.commandLength - 1] = 1;
    expectCode('ERR_WIRE_COMMAND', () => small.decode(rep));
    const msg = small.encode({ kind: 'message', sequence: 1, queueHint: 0, empty: false, surbId: null, payload: new Uint8Array(1), mailbox: MB });
    msg[WIRE_HEADER_LENGTH + MESSAGE_BODY_OVERHEAD + 32 + 1] = 1;
    expectCode('ERR_WIRE_COMMAND', () => small.decode(msg));
  });

  test('a tagged payload over maxTaggedPayload is refused both ways; an empty message with a mailbox too', () => {
    expectCode('ERR_WIRE_LENGTH', () => small.encode({ kind: 'message', sequence: 1, queueHint: 0, empty: false, surbId: null, payload: new Uint8Array(9), mailbox: MB }));
    // Untagged, the same payload fits: only the tag takes the room.
    small.encode({ kind: 'message', sequence: 1, queueHint: 0, empty: false, surbId: null, payload: new Uint8Array(40) });
    const msg = small.encode({ kind: 'message', sequence: 1, queueHint: 0, empty: false, surbId: null, payload: new Uint8Array(8), mailbox: MB });
    const at = WIRE_HEADER_LENGTH + 9 + 16;
    msg[at + 1] = 9; // payload length 9
    expectCode('ERR_WIRE_COMMAND', () => small.decode(msg));
    expectCode('ERR_WIRE_COMMAND', () => small.encode({ kind: 'message', sequence: 1, queueHint: 0, empty: true, surbId: null, payload: new Uint8Array(0), mailbox: MB }));
    const empty = small.encode({ kind: 'message', sequence: 1, queueHint: 0, empty: true, surbId: null, payload: new Uint8Array(0) });
    empty[WIRE_HEADER_LENGTH + 8] = 0x05; // empty and tagged
    expectCode('ERR_WIRE_COMMAND', () => small.decode(empty));
  });

  test('a mailbox id that is not 32 bytes, or an unknown action, is refused by the encoder', () => {
    expectCode('ERR_WIRE_LENGTH', () => small.encode({ kind: 'mailbox_request', action: 'register', mailbox: new Uint8Array(31) }));
    expectCode('ERR_WIRE_LENGTH', () => small.encode({ kind: 'message', sequence: 1, queueHint: 0, empty: false, surbId: null, payload: new Uint8Array(0), mailbox: new Uint8Array(33) }));
    expectCode('ERR_WIRE_COMMAND', () => small.encode({ kind: 'mailbox_request', action: 'delete' as never, mailbox: MB }));
    expectCode('ERR_WIRE_COMMAND', () => small.encode({ kind: 'mailbox_reply', action: 'register', result: 'maybe' as never, mailbox: MB }));
    expectCode('ERR_WIRE_COMMAND', () => small.encode({ kind: 'mailbox_request', action: 'toString' as never, mailbox: MB }));
  });

  test('a codec without room for a mailbox id refuses the mailbox commands both ways', () => {
    expectCode('ERR_WIRE_LENGTH', () => tiny.encode({ kind: 'mailbox_request', action: 'register', mailbox: MB }));
    expectCode('ERR_WIRE_LENGTH', () => tiny.encode({ kind: 'message', sequence: 1, queueHint: 0, empty: false, surbId: null, payload: new Uint8Array(0), mailbox: MB }));
    const bytes = new Uint8Array(tiny.commandLength);
    bytes[0] = WIRE_VERSION;
    bytes[1] = WireCommandType.mailbox_request;
    expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes));
    bytes[1] = WireCommandType.message;
    bytes[WIRE_HEADER_LENGTH + 8] = 0x04;
    expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes));
  });

  test('decoded mailbox ids are copies; decodeView gives views', () => {
    const bytes = small.encode({ kind: 'mailbox_request', action: 'register', mailbox: MB });
    const d = small.decode(bytes) as Extract<WireCommand, { kind: 'mailbox_request' }>;
    const v = small.decodeView(bytes) as Extract<WireCommand, { kind: 'mailbox_request' }>;
    bytes[3] = 0;
    assert.equal(d.mailbox[0], 0xab);
    assert.equal(v.mailbox[0], 0);
  });

  test('random bodies under the mailbox types, and single-byte mutations, fail typed or decode canonically', () => {
    const check = (bytes: Uint8Array): void => {
      let cmd: WireCommand;
      try {
        cmd = small.decode(bytes);
      } catch (e) {
        assert.ok(e instanceof BackchannelError && e.code.startsWith('ERR_WIRE_'), String(e));
        return;
      }
      assert.equal(toHex(small.encode(cmd)), toHex(bytes));
    };
    fc.assert(
      fc.property(fc.uint8Array({ minLength: small.commandLength, maxLength: small.commandLength }), fc.constantFrom(4, 8, 9), fc.nat(40), (bytes, type, zeroFrom) => {
        bytes[0] = WIRE_VERSION;
        bytes[1] = type;
        // Mostly zero tails, so that some pass the padding check and reach the field checks.
        bytes.fill(0, Math.min(bytes.length, 2 + zeroFrom + 2));
        if (type !== 4) bytes[2] = bytes[2]! & 1;
        check(bytes);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(mailboxCommandArb(small), fc.nat(), fc.integer({ min: 1, max: 255 }), (cmd, pick, delta) => {
        const bytes = small.encode(cmd);
        bytes[pick % bytes.length]! ^= delta;
        check(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  test('error messages never echo a mailbox id', () => {
    try {
      small.encode({ kind: 'message', sequence: 1, queueHint: 0, empty: false, surbId: null, payload: new Uint8Array(9), mailbox: MB });
      assert.fail('expected a throw');
    } catch (e) {
      assert.ok(!String((e as Error).message).includes('abab'));
    }
  });
});


