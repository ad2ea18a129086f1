// Wire command codec: round trips, pinned byte layout, every strict-decoding rule with its code,
// encode-time validation, and fuzzing that only ever yields typed errors or canonical encodings.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BackchannelError, isBackchannelError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { DOCUMENT_BODY_OVERHEAD, DisconnectReason, MAX_COMMAND_LENGTH, MAX_DOCUMENT_CHUNKS, WIRE_VERSION, WireCodec, WireCommandType } from '../../src/wire/index.js';
import type { WireCodecOptions, WireCommand } from '../../src/wire/index.js';

const GEOMETRIES: WireCodecOptions[] = [{ packetLength: 3082 }, { packetLength: 100, maxPayload: 50 }, { packetLength: 4, maxPayload: 3 }];

/** The tiny codec of the known-answer tests: commandLength = 2 + 4+4+1+16+2+3 = 32. */
const tiny = new WireCodec({ packetLength: 4, maxPayload: 3 });

function isWireError(e: unknown): boolean {
  return e instanceof BackchannelError && e.code.startsWith('ERR_WIRE_');
}

function expectCode(code: ErrorCode, fn: () => unknown, label?: string): void {
  assert.throws(fn, (e) => isBackchannelError(e, code), label);
}

/** Hex with spaces between fields for readability. */
function hex(spaced: string): Uint8Array {
  return fromHex(spaced.replace(/\s+/g, ''));
}

function bytesArb(min: number, max: number): fc.Arbitrary<Uint8Array> {
  if (min === max) return fc.uint8Array({ minLength: min, maxLength: max });
  // Mostly short arrays, but lengths up to the maximum too.
  return fc.oneof(fc.uint8Array({ minLength: min, maxLength: max }), fc.uint8Array({ minLength: min, maxLength: max, size: 'max' }));
}

function commandArb(codec: WireCodec): fc.Arbitrary<WireCommand> {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  return fc.oneof(
    fc.constant({ kind: 'noop' as const }),
    fc.record({ kind: fc.constant('disconnect' as const), reason: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ kind: fc.constant('send_packet' as const), packet: bytesArb(codec.packetLength, codec.packetLength) }),
    fc.record({ kind: fc.constant('retrieve_message' as const), sequence: u32 }),
    fc.record({
      kind: fc.constant('message' as const),
      sequence: u32,
      queueHint: u32,
      empty: fc.constant(true),
      surbId: fc.constant(null),
      payload: fc.constant(new Uint8Array(0)),
    }),
    fc.record({
      kind: fc.constant('message' as const),
      sequence: u32,
      queueHint: u32,
      empty: fc.constant(false),
      surbId: fc.option(bytesArb(16, 16), { nil: null }),
      payload: bytesArb(0, codec.maxPayload),
    }),
    fc.record({ kind: fc.constant('ack' as const), sequence: u32 }),
    fc.record({ kind: fc.constant('get_document' as const), epoch: u32, chunk: fc.integer({ min: 0, max: MAX_DOCUMENT_CHUNKS - 1 }) }),
    fc.integer({ min: 1, max: MAX_DOCUMENT_CHUNKS }).chain((total) =>
      fc.record({
        kind: fc.constant('document' as const),
        epoch: u32,
        available: fc.constant(true),
        chunk: fc.integer({ min: 0, max: total - 1 }),
        total: fc.constant(total),
        data: bytesArb(1, codec.documentChunkLength),
      }),
    ),
    fc.record({
      kind: fc.constant('document' as const),
      epoch: u32,
      available: fc.constant(false),
      chunk: fc.integer({ min: 0, max: MAX_DOCUMENT_CHUNKS - 1 }),
      total: fc.constant(0),
      data: fc.constant(new Uint8Array(0)),
    }),
  );
}

/** Decodes `bytes`; on success checks the encoding is canonical, on failure that the error is typed. */
function decodeCanonicalOrTyped(codec: WireCodec, bytes: Uint8Array): void {
  let cmd: WireCommand;
  try {
    cmd = codec.decode(bytes);
  } catch (e) {
    assert.ok(isWireError(e), String(e));
    return;
  }
  assert.equal(toHex(codec.encode(cmd)), toHex(bytes));
}

describe('wire codec geometry', () => {
  test('commandLength is the header plus the larger body', () => {
    assert.equal(WIRE_VERSION, 1);
    assert.equal(new WireCodec({ packetLength: 3082 }).commandLength, 2 + 27 + 3082);
    assert.equal(new WireCodec({ packetLength: 3082 }).maxPayload, 3082);
    assert.equal(new WireCodec({ packetLength: 100, maxPayload: 50 }).commandLength, 2 + 100);
    assert.equal(new WireCodec({ packetLength: 100, maxPayload: 73 }).commandLength, 2 + 100);
    assert.equal(new WireCodec({ packetLength: 100, maxPayload: 74 }).commandLength, 2 + 27 + 74);
    assert.equal(tiny.commandLength, 32);
    // The largest geometry whose commands still fit in one link message.
    assert.equal(new WireCodec({ packetLength: MAX_COMMAND_LENGTH - 2, maxPayload: MAX_COMMAND_LENGTH - 2 - 27 }).commandLength, MAX_COMMAND_LENGTH);
  });

  test('the constructor rejects bad geometries with ERR_WIRE_LENGTH', () => {
    for (const packetLength of [0, -1, 1.5, NaN, Infinity, 65534, 70000]) {
      expectCode('ERR_WIRE_LENGTH', () => new WireCodec({ packetLength }), `packetLength ${packetLength}`);
    }
    for (const maxPayload of [0, -3, 2.5, NaN, 65536]) {
      expectCode('ERR_WIRE_LENGTH', () => new WireCodec({ packetLength: 100, maxPayload }), `maxPayload ${maxPayload}`);
    }
    expectCode('ERR_WIRE_LENGTH', () => new WireCodec({ packetLength: MAX_COMMAND_LENGTH - 1 }));
    expectCode('ERR_WIRE_LENGTH', () => new WireCodec({ packetLength: 100, maxPayload: MAX_COMMAND_LENGTH - 2 - 26 }));
    expectCode('ERR_WIRE_LENGTH', () => new WireCodec({ packetLength: '100' as unknown as number }));
    expectCode('ERR_WIRE_LENGTH', () => new WireCodec(undefined as unknown as WireCodecOptions));
    expectCode('ERR_WIRE_LENGTH', () => new WireCodec(null as unknown as WireCodecOptions));
  });

  test('the exported constants match the layout', () => {
    assert.deepEqual(WireCommandType, { noop: 0, disconnect: 1, send_packet: 2, retrieve_message: 3, message: 4, ack: 5, get_document: 6, document: 7, mailbox_request: 8, mailbox_reply: 9 });
    assert.deepEqual(DisconnectReason, { normal: 0, shutdown: 1, protocolError: 2, overloaded: 3 });
  });
});

describe('wire round trips', () => {
  for (const opts of GEOMETRIES) {
    test(`every kind round trips (packetLength ${opts.packetLength}, maxPayload ${opts.maxPayload ?? 'default'})`, () => {
      const codec = new WireCodec(opts);
      fc.assert(
        fc.property(commandArb(codec), (cmd) => {
          const bytes = codec.encode(cmd);
          assert.equal(bytes.length, codec.commandLength);
          // fast-check records have a null prototype; compare as plain objects.
          assert.deepEqual(codec.decode(bytes), { ...cmd });
        }),
        { numRuns: 400 },
      );
    });
  }

  test('a full-size payload and a full-size packet both fit', () => {
    for (const opts of GEOMETRIES) {
      const codec = new WireCodec(opts);
      const payload = new Uint8Array(codec.maxPayload).fill(0xa5);
      const msg: WireCommand = { kind: 'message', sequence: 0xffffffff, queueHint: 0xffffffff, empty: false, surbId: new Uint8Array(16).fill(0xff), payload };
      assert.deepEqual(codec.decode(codec.encode(msg)), msg);
      const pkt: WireCommand = { kind: 'send_packet', packet: new Uint8Array(codec.packetLength).fill(0x5a) };
      assert.deepEqual(codec.decode(codec.encode(pkt)), pkt);
    }
  });

  test('decoded byte fields are copies, and a view into a larger buffer decodes', () => {
    const codec = new WireCodec({ packetLength: 100, maxPayload: 50 });
    const packet = Uint8Array.from({ length: 100 }, (_, i) => i);
    const msg: WireCommand = { kind: 'message', sequence: 9, queueHint: 1, empty: false, surbId: new Uint8Array(16).fill(7), payload: Uint8Array.of(1, 2, 3) };
    for (const cmd of [{ kind: 'send_packet', packet } as const, msg]) {
      const big = new Uint8Array(codec.commandLength + 20);
      big.set(codec.encode(cmd), 10);
      const view = big.subarray(10, 10 + codec.commandLength);
      const decoded = codec.decode(view);
      big.fill(0xee);
      assert.deepEqual(decoded, cmd);
      if (decoded.kind === 'send_packet') assert.notEqual(decoded.packet.buffer, big.buffer);
      if (decoded.kind === 'message') {
        assert.notEqual(decoded.payload.buffer, big.buffer);
        assert.notEqual(decoded.surbId?.buffer, big.buffer);
      }
    }
  });
});

describe('wire views: decoding without copies and forwarding a command as it is', () => {
  const codec = new WireCodec({ packetLength: 100, maxPayload: 50 });

  test('decodeView gives what decode gives, with byte fields that are views into the command', () => {
    fc.assert(
      fc.property(commandArb(codec), (cmd) => {
        const bytes = codec.encode(cmd);
        const view = codec.decodeView(bytes);
        assert.deepEqual(view, codec.decode(bytes));
        if (view.kind === 'send_packet') assert.equal(view.packet.buffer, bytes.buffer);
        if (view.kind === 'message') {
          assert.equal(view.payload.buffer, bytes.buffer);
          if (view.surbId !== null) assert.equal(view.surbId.buffer, bytes.buffer);
        }
      }),
    );
  });

  test('decodeView refuses exactly what decode refuses, with the same code', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: tiny.commandLength, maxLength: tiny.commandLength }), (bytes) => {
        let a: unknown = null;
        let b: unknown = null;
        try {
          tiny.decode(bytes);
        } catch (e) {
          a = e;
        }
        try {
          tiny.decodeView(bytes);
        } catch (e) {
          b = e;
        }
        assert.equal(a === null, b === null);
        if (a !== null) assert.equal((a as BackchannelError).code, (b as BackchannelError).code);
      }),
    );
  });

  test('a packet changed in place in its command is forwarded as that command, without a copy', () => {
    const frame = codec.encode({ kind: 'send_packet', packet: new Uint8Array(100).fill(3) });
    const cmd = codec.decodeView(frame);
    assert.equal(cmd.kind, 'send_packet');
    if (cmd.kind !== 'send_packet') return;
    cmd.packet[0] = 9;
    const out = codec.sendPacketFrame(cmd.packet);
    assert.equal(out.buffer, frame.buffer);
    assert.equal(out.byteOffset, frame.byteOffset);
    assert.equal(out.length, codec.commandLength);
    assert.deepEqual(codec.decode(out), { kind: 'send_packet', packet: Uint8Array.from({ length: 100 }, (_, i) => (i === 0 ? 9 : 3)) });
  });

  test('a command inside a larger buffer is found where it is', () => {
    const big = new Uint8Array(codec.commandLength + 40);
    big.set(codec.encode({ kind: 'send_packet', packet: new Uint8Array(100).fill(1) }), 17);
    const cmd = codec.decodeView(big.subarray(17, 17 + codec.commandLength));
    if (cmd.kind !== 'send_packet') throw new Error('expected send_packet');
    const out = codec.sendPacketFrame(cmd.packet);
    assert.equal(out.buffer, big.buffer);
    assert.equal(out.byteOffset, 17);
  });

  test('newSendPacket: a packet written into it goes out as that command', () => {
    const { frame, packet } = codec.newSendPacket();
    packet.fill(0x42);
    assert.equal(codec.sendPacketFrame(packet).buffer, frame.buffer);
    assert.deepEqual(codec.decode(frame), { kind: 'send_packet', packet: new Uint8Array(100).fill(0x42) });
    const slab = new Uint8Array(4 * codec.commandLength);
    let used = 0;
    const carved = codec.newSendPacket((n) => slab.subarray(used, (used += n)));
    assert.equal(carved.frame.buffer, slab.buffer);
    expectCode('ERR_WIRE_LENGTH', () => codec.newSendPacket(() => new Uint8Array(3)));
  });

  test('anything else is encoded afresh: a packet alone, one in a command with other bytes around it, or in shared memory', () => {
    // Padding after the packet: 2 + max(100, 27 + 90) = 119 bytes a command.
    const padded = new WireCodec({ packetLength: 100, maxPayload: 90 });
    assert.equal(padded.commandLength, 119);
    const alone = new Uint8Array(100).fill(5);
    const encoded = padded.sendPacketFrame(alone);
    assert.notEqual(encoded.buffer, alone.buffer);
    assert.deepEqual(padded.decode(encoded), { kind: 'send_packet', packet: alone });
    // The bytes before the packet are not a send_packet header, or the padding is not zero.
    for (const spoil of [0, 1, 2 + 100, 118]) {
      const frame = padded.encode({ kind: 'send_packet', packet: alone });
      frame[spoil] = frame[spoil]! ^ 0xff;
      const out = padded.sendPacketFrame(frame.subarray(2, 102));
      assert.notEqual(out.buffer, frame.buffer, `byte ${spoil} spoilt`);
      assert.deepEqual(padded.decode(out), { kind: 'send_packet', packet: alone });
    }
    // A buffer too short to hold the padding after the packet.
    const short = new Uint8Array(2 + 100);
    short.set([WIRE_VERSION, WireCommandType.send_packet]);
    assert.notEqual(padded.sendPacketFrame(short.subarray(2)).buffer, short.buffer);
    // Shared memory is never handed out, whatever it holds.
    const shared = new Uint8Array(new SharedArrayBuffer(padded.commandLength));
    shared.set(padded.encode({ kind: 'send_packet', packet: alone }));
    assert.ok(!(padded.sendPacketFrame(shared.subarray(2, 102)).buffer instanceof SharedArrayBuffer));
    expectCode('ERR_WIRE_LENGTH', () => padded.sendPacketFrame(new Uint8Array(99)));
  });
});

describe('wire known answers (packetLength 4, maxPayload 3)', () => {
  // Each pair: a command and its 32-byte encoding, field by field.
  const cases: [string, WireCommand, string][] = [
    ['noop', { kind: 'noop' }, '01 00 000000000000000000000000000000000000000000000000000000000000'],
    ['disconnect', { kind: 'disconnect', reason: DisconnectReason.overloaded }, '01 01 03 0000000000000000000000000000000000000000000000000000000000'],
    ['send_packet', { kind: 'send_packet', packet: Uint8Array.of(0xde, 0xad, 0xbe, 0xef) }, '01 02 deadbeef 0000000000000000000000000000000000000000000000000000'],
    ['retrieve_message', { kind: 'retrieve_message', sequence: 0x01020304 }, '01 03 01020304 0000000000000000000000000000000000000000000000000000'],
    [
      'message with SURB id and full payload',
      {
        kind: 'message',
        sequence: 0x0a0b0c0d,
        queueHint: 7,
        empty: false,
        surbId: Uint8Array.from({ length: 16 }, (_, i) => i),
        payload: Uint8Array.of(0xaa, 0xbb, 0xcc),
      },
      '01 04 0a0b0c0d 00000007 02 000102030405060708090a0b0c0d0e0f 0003 aabbcc',
    ],
    [
      'message without SURB id',
      { kind: 'message', sequence: 0x80000000, queueHint: 0xfffffffe, empty: false, surbId: null, payload: Uint8Array.of(0xab) },
      '01 04 80000000 fffffffe 00 00000000000000000000000000000000 0001 ab 0000',
    ],
    [
      'empty message',
      { kind: 'message', sequence: 1, queueHint: 0, empty: true, surbId: null, payload: new Uint8Array(0) },
      '01 04 00000001 00000000 01 00000000000000000000000000000000 0000 000000',
    ],
    ['ack', { kind: 'ack', sequence: 0xffffffff }, '01 05 ffffffff 0000000000000000000000000000000000000000000000000000'],
    ['get_document', { kind: 'get_document', epoch: 0x01020304, chunk: 0x03ff }, '01 06 01020304 03ff 000000000000000000000000000000000000000000000000'],
    [
      'document chunk (the last of three, full length)',
      { kind: 'document', epoch: 9, available: true, chunk: 2, total: 3, data: Uint8Array.from({ length: 19 }, (_, i) => i + 1) },
      '01 07 00000009 00 0002 0003 0013 0102030405060708090a0b0c0d0e0f10111213',
    ],
    [
      'document not available',
      { kind: 'document', epoch: 0xfffffffe, available: false, chunk: 4, total: 0, data: new Uint8Array(0) },
      '01 07 fffffffe 01 0004 0000 0000 00000000000000000000000000000000000000',
    ],
  ];
  for (const [name, cmd, expected] of cases) {
    test(name, () => {
      const bytes = hex(expected);
      assert.equal(bytes.length, 32);
      assert.equal(toHex(tiny.encode(cmd)), toHex(bytes));
      assert.deepEqual(tiny.decode(bytes), cmd);
    });
  }
});

describe('wire strict decoding', () => {
  const noop = () => tiny.encode({ kind: 'noop' });
  const msg = (over: Partial<Extract<WireCommand, { kind: 'message' }>> = {}) =>
    tiny.encode({ kind: 'message', sequence: 5, queueHint: 2, empty: false, surbId: null, payload: Uint8Array.of(9), ...over });
  const FLAGS = 2 + 8;
  const SURB = FLAGS + 1;
  const PAYLOAD_LENGTH = SURB + 16;

  test('a wrong length is ERR_WIRE_LENGTH', () => {
    for (const len of [0, 1, 2, 31, 33, 64]) {
      const bytes = new Uint8Array(len);
      if (len > 0) bytes[0] = 1;
      expectCode('ERR_WIRE_LENGTH', () => tiny.decode(bytes), `length ${len}`);
    }
    // Checked before the version.
    expectCode('ERR_WIRE_LENGTH', () => tiny.decode(new Uint8Array(31).fill(0xff)));
  });

  test('a value that is not a Uint8Array is ERR_WIRE_LENGTH', () => {
    for (const v of [null, undefined, 'abc', 32, [1, 0], new ArrayBuffer(32), new Uint16Array(32), new Uint8ClampedArray(32)]) {
      expectCode('ERR_WIRE_LENGTH', () => tiny.decode(v as unknown as Uint8Array), Object.prototype.toString.call(v));
    }
  });

  test('any version but 1 is ERR_WIRE_VERSION', () => {
    for (const v of [0, 2, 0x81, 0xff]) {
      const bytes = noop();
      bytes[0] = v;
      expectCode('ERR_WIRE_VERSION', () => tiny.decode(bytes), `version ${v}`);
    }
  });

  test('an unknown type is ERR_WIRE_COMMAND', () => {
    for (let t = 8; t < 256; t++) {
      const bytes = noop();
      bytes[1] = t;
      expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes), `type ${t}`);
    }
  });

  test('an unknown disconnect reason is ERR_WIRE_COMMAND', () => {
    for (let r = 0; r < 256; r++) {
      const bytes = tiny.encode({ kind: 'disconnect', reason: 0 });
      bytes[2] = r;
      if (r <= 3) assert.deepEqual(tiny.decode(bytes), { kind: 'disconnect', reason: r });
      else expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes), `reason ${r}`);
    }
  });

  test('a reserved flag bit is ERR_WIRE_COMMAND', () => {
    for (let bit = 2; bit < 8; bit++) {
      const bytes = msg();
      bytes[FLAGS]! |= 1 << bit;
      expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes), `bit ${bit}`);
    }
  });

  test('an empty message with a payload or a SURB id is ERR_WIRE_COMMAND', () => {
    const withPayload = msg();
    withPayload[FLAGS] = 0x01;
    expectCode('ERR_WIRE_COMMAND', () => tiny.decode(withPayload));
    const withSurb = msg({ payload: new Uint8Array(0), surbId: new Uint8Array(16).fill(3) });
    withSurb[FLAGS] = 0x03;
    expectCode('ERR_WIRE_COMMAND', () => tiny.decode(withSurb));
    const flagOnly = msg({ payload: new Uint8Array(0), empty: true });
    flagOnly[FLAGS] = 0x03; // has-SURB flag with an all-zero id
    expectCode('ERR_WIRE_COMMAND', () => tiny.decode(flagOnly));
  });

  test('a SURB id field that is non-zero without its flag is ERR_WIRE_COMMAND', () => {
    for (let i = 0; i < 16; i++) {
      const bytes = msg();
      bytes[SURB + i] = 0x40;
      expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes), `byte ${i}`);
    }
  });

  test('a payload length over maxPayload is ERR_WIRE_COMMAND', () => {
    for (const len of [4, 5, 0x0100, 0xffff]) {
      const bytes = msg();
      bytes[PAYLOAD_LENGTH] = len >>> 8;
      bytes[PAYLOAD_LENGTH + 1] = len & 0xff;
      expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes), `payload length ${len}`);
    }
  });

  test('any non-zero padding byte is ERR_WIRE_COMMAND, for every kind', () => {
    const samples: [WireCommand, number][] = [
      [{ kind: 'noop' }, 2],
      [{ kind: 'disconnect', reason: 1 }, 3],
      [{ kind: 'send_packet', packet: Uint8Array.of(1, 2, 3, 4) }, 6],
      [{ kind: 'retrieve_message', sequence: 3 }, 6],
      [{ kind: 'message', sequence: 5, queueHint: 2, empty: false, surbId: null, payload: Uint8Array.of(9) }, 30],
      [{ kind: 'message', sequence: 5, queueHint: 0, empty: true, surbId: null, payload: new Uint8Array(0) }, 29],
      [{ kind: 'ack', sequence: 3 }, 6],
    ];
    for (const [cmd, bodyEnd] of samples) {
      const good = tiny.encode(cmd);
      assert.deepEqual(tiny.decode(good), cmd);
      for (let i = bodyEnd; i < tiny.commandLength; i++) {
        for (const v of [0x01, 0x80]) {
          const bad = good.slice();
          bad[i] = v;
          expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bad), `${cmd.kind} padding byte ${i}`);
        }
      }
    }
  });
});

describe('wire encode validation', () => {
  const codec = new WireCodec({ packetLength: 100, maxPayload: 50 });
  const message = (over: Record<string, unknown>) =>
    ({ kind: 'message', sequence: 1, queueHint: 0, empty: false, surbId: null, payload: new Uint8Array(1), ...over }) as WireCommand;

  test('a packet of the wrong length is ERR_WIRE_LENGTH', () => {
    for (const len of [0, 99, 101, 3082]) {
      expectCode('ERR_WIRE_LENGTH', () => codec.encode({ kind: 'send_packet', packet: new Uint8Array(len) }), `packet ${len}`);
    }
    expectCode('ERR_WIRE_COMMAND', () => codec.encode({ kind: 'send_packet', packet: [1, 2] as unknown as Uint8Array }));
  });

  test('a sequence or queue hint out of the u32 range is ERR_WIRE_COMMAND', () => {
    const bad: unknown[] = [-1, 2 ** 32, 2 ** 53, 1.5, NaN, Infinity, -0.5, '1', 1n, null, undefined];
    for (const v of bad) {
      const n = v as number;
      const label = typeof v === 'bigint' ? 'bigint' : String(v);
      expectCode('ERR_WIRE_COMMAND', () => codec.encode({ kind: 'retrieve_message', sequence: n }), `retrieve ${label}`);
      expectCode('ERR_WIRE_COMMAND', () => codec.encode({ kind: 'ack', sequence: n }), `ack ${label}`);
      expectCode('ERR_WIRE_COMMAND', () => codec.encode(message({ sequence: n })), `message.sequence ${label}`);
      expectCode('ERR_WIRE_COMMAND', () => codec.encode(message({ queueHint: n })), `message.queueHint ${label}`);
    }
    for (const v of [0, 0xffffffff]) {
      assert.equal(codec.encode({ kind: 'ack', sequence: v }).length, codec.commandLength);
      assert.equal(codec.encode(message({ queueHint: v })).length, codec.commandLength);
    }
  });

  test('a payload over maxPayload is ERR_WIRE_LENGTH', () => {
    expectCode('ERR_WIRE_LENGTH', () => codec.encode(message({ payload: new Uint8Array(51) })));
    expectCode('ERR_WIRE_LENGTH', () => codec.encode(message({ payload: new Uint8Array(70000) })));
    assert.equal(codec.encode(message({ payload: new Uint8Array(50) })).length, codec.commandLength);
    expectCode('ERR_WIRE_COMMAND', () => codec.encode(message({ payload: 'hi' })));
  });

  test('a SURB id that is not 16 bytes is ERR_WIRE_LENGTH', () => {
    for (const len of [0, 15, 17, 32]) {
      expectCode('ERR_WIRE_LENGTH', () => codec.encode(message({ surbId: new Uint8Array(len) })), `surbId ${len}`);
    }
    expectCode('ERR_WIRE_COMMAND', () => codec.encode(message({ surbId: undefined })));
  });

  test('an empty message with a payload or a SURB id is ERR_WIRE_COMMAND', () => {
    expectCode('ERR_WIRE_COMMAND', () => codec.encode(message({ empty: true, payload: new Uint8Array(1) })));
    expectCode('ERR_WIRE_COMMAND', () => codec.encode(message({ empty: true, payload: new Uint8Array(0), surbId: new Uint8Array(16) })));
    expectCode('ERR_WIRE_COMMAND', () => codec.encode(message({ empty: 1 })));
  });

  test('an unknown disconnect reason or kind is ERR_WIRE_COMMAND', () => {
    for (const reason of [4, 255, -1, 0.5, NaN]) {
      expectCode('ERR_WIRE_COMMAND', () => codec.encode({ kind: 'disconnect', reason }), `reason ${reason}`);
    }
    expectCode('ERR_WIRE_COMMAND', () => codec.encode({ kind: 'bogus' } as unknown as WireCommand));
    expectCode('ERR_WIRE_COMMAND', () => codec.encode(null as unknown as WireCommand));
  });

  test('error messages never echo field values', () => {
    try {
      codec.encode({ kind: 'ack', sequence: 4294967296 });
      assert.fail('not rejected');
    } catch (e) {
      assert.ok(e instanceof BackchannelError);
      assert.ok(!e.message.includes('4294967296'), e.message);
      assert.ok(e.message.startsWith('wire: '), e.message);
    }
  });
});

describe('wire fuzzing', () => {
  for (const opts of GEOMETRIES.slice(1)) {
    const codec = new WireCodec(opts);
    const label = `packetLength ${codec.packetLength}, maxPayload ${codec.maxPayload}`;

    test(`random bytes of random lengths give typed errors or canonical commands (${label})`, () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 0, maxLength: codec.commandLength + 10, size: 'max' }),
          fc.boolean(),
          fc.integer({ min: 0, max: 7 }),
          (bytes, steer, type) => {
            // Half the time, a valid header so the body rules are reached too.
            if (steer && bytes.length >= 2) {
              bytes[0] = WIRE_VERSION;
              bytes[1] = type;
            }
            decodeCanonicalOrTyped(codec, bytes);
          },
        ),
        { numRuns: 2000 },
      );
    });

    test(`a single-byte mutation of a valid encoding fails typed or decodes canonically (${label})`, () => {
      fc.assert(
        fc.property(commandArb(codec), fc.nat(), fc.integer({ min: 1, max: 255 }), (cmd, pick, delta) => {
          const bytes = codec.encode(cmd);
          const i = pick % bytes.length;
          bytes[i]! ^= delta;
          decodeCanonicalOrTyped(codec, bytes);
        }),
        { numRuns: 2000 },
      );
    });
  }

  test('every single-byte change of every known-answer encoding is typed or canonical', () => {
    const cmds: WireCommand[] = [
      { kind: 'noop' },
      { kind: 'disconnect', reason: 2 },
      { kind: 'send_packet', packet: Uint8Array.of(0, 1, 2, 3) },
      { kind: 'retrieve_message', sequence: 77 },
      { kind: 'message', sequence: 1, queueHint: 2, empty: false, surbId: new Uint8Array(16).fill(1), payload: Uint8Array.of(5, 6) },
      { kind: 'message', sequence: 1, queueHint: 2, empty: true, surbId: null, payload: new Uint8Array(0) },
      { kind: 'ack', sequence: 78 },
      { kind: 'get_document', epoch: 79, chunk: 1 },
      { kind: 'document', epoch: 80, available: true, chunk: 1, total: 2, data: Uint8Array.of(7, 8, 9) },
      { kind: 'document', epoch: 80, available: false, chunk: 1, total: 0, data: new Uint8Array(0) },
    ];
    for (const cmd of cmds) {
      const good = tiny.encode(cmd);
      for (let i = 0; i < good.length; i++) {
        for (let v = 0; v < 256; v++) {
          const bytes = good.slice();
          bytes[i] = v;
          decodeCanonicalOrTyped(tiny, bytes);
        }
      }
    }
  });
});

describe('wire document commands: strict decoding and encode validation (packetLength 4, maxPayload 3)', () => {
  // Offsets in the command: header 2, epoch 4, status 1, chunk 2, total 2, length 2, data.
  const STATUS = 6;
  const CHUNK = 7;
  const TOTAL = 9;
  const LENGTH = 11;
  const DATA = 2 + DOCUMENT_BODY_OVERHEAD;
  const chunk = (over: Partial<Extract<WireCommand, { kind: 'document' }>> = {}) =>
    tiny.encode({ kind: 'document', epoch: 5, available: true, chunk: 0, total: 2, data: Uint8Array.of(1, 2), ...over });
  const setU16 = (b: Uint8Array, at: number, v: number): void => {
    b[at] = v >>> 8;
    b[at + 1] = v & 0xff;
  };

  test('a document chunk holds what a command has after the header and the document fields', () => {
    assert.equal(tiny.documentChunkLength, 32 - 2 - DOCUMENT_BODY_OVERHEAD);
    const codec = new WireCodec({ packetLength: 3082 });
    assert.equal(codec.documentChunkLength, codec.commandLength - 2 - DOCUMENT_BODY_OVERHEAD);
    const full: WireCommand = { kind: 'document', epoch: 1, available: true, chunk: 0, total: 1, data: new Uint8Array(codec.documentChunkLength).fill(3) };
    assert.deepEqual(codec.decode(codec.encode(full)), full);
  });

  test('an unknown status byte is ERR_WIRE_COMMAND', () => {
    for (let v = 2; v < 256; v++) {
      const bytes = chunk();
      bytes[STATUS] = v;
      expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes), `status ${v}`);
    }
  });

  test('a chunk index at or past the count, a count of 0 or over the cap, a chunk index over the cap are ERR_WIRE_COMMAND', () => {
    const cases: Array<[string, (b: Uint8Array) => void]> = [
      ['index = count', (b) => setU16(b, CHUNK, 2)],
      ['index > count', (b) => setU16(b, CHUNK, 0xffff)],
      ['count 0', (b) => setU16(b, TOTAL, 0)],
      ['count over the cap', (b) => setU16(b, TOTAL, MAX_DOCUMENT_CHUNKS + 1)],
      ['unavailable with a chunk index over the cap', (b) => {
        b.set(tiny.encode({ kind: 'document', epoch: 5, available: false, chunk: 0, total: 0, data: new Uint8Array(0) }));
        setU16(b, CHUNK, MAX_DOCUMENT_CHUNKS);
      }],
    ];
    for (const [name, mutate] of cases) {
      const bytes = chunk();
      mutate(bytes);
      expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes), name);
    }
    const get = tiny.encode({ kind: 'get_document', epoch: 1, chunk: 0 });
    setU16(get, 6, MAX_DOCUMENT_CHUNKS);
    expectCode('ERR_WIRE_COMMAND', () => tiny.decode(get), 'get_document chunk over the cap');
  });

  test('a chunk length of 0 or over documentChunkLength is ERR_WIRE_COMMAND', () => {
    for (const len of [0, tiny.documentChunkLength + 1, 0xffff]) {
      const bytes = chunk();
      bytes.fill(0, DATA);
      setU16(bytes, LENGTH, len);
      expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes), `length ${len}`);
    }
  });

  test('an unavailable document with a count or a length is ERR_WIRE_COMMAND', () => {
    const none = () => tiny.encode({ kind: 'document', epoch: 5, available: false, chunk: 0, total: 0, data: new Uint8Array(0) });
    const withTotal = none();
    setU16(withTotal, TOTAL, 1);
    expectCode('ERR_WIRE_COMMAND', () => tiny.decode(withTotal));
    const withLength = none();
    setU16(withLength, LENGTH, 1);
    withLength[DATA] = 1;
    expectCode('ERR_WIRE_COMMAND', () => tiny.decode(withLength));
  });

  test('a non-zero byte after the chunk is ERR_WIRE_COMMAND', () => {
    const bytes = chunk({ data: Uint8Array.of(1) });
    bytes[DATA + 1] = 1;
    expectCode('ERR_WIRE_COMMAND', () => tiny.decode(bytes));
  });

  test('the encoder refuses out-of-range fields before writing anything', () => {
    const base = { kind: 'document', epoch: 5, available: true, chunk: 0, total: 2, data: Uint8Array.of(1) } as const;
    const bad: Array<[ErrorCode, unknown]> = [
      ['ERR_WIRE_COMMAND', { ...base, epoch: 2 ** 32 }],
      ['ERR_WIRE_COMMAND', { ...base, epoch: -1 }],
      ['ERR_WIRE_COMMAND', { ...base, total: 0 }],
      ['ERR_WIRE_COMMAND', { ...base, total: MAX_DOCUMENT_CHUNKS + 1 }],
      ['ERR_WIRE_COMMAND', { ...base, chunk: 2 }],
      ['ERR_WIRE_COMMAND', { ...base, available: 1 }],
      ['ERR_WIRE_COMMAND', { ...base, data: [1] }],
      ['ERR_WIRE_LENGTH', { ...base, data: new Uint8Array(0) }],
      ['ERR_WIRE_LENGTH', { ...base, data: new Uint8Array(tiny.documentChunkLength + 1) }],
      ['ERR_WIRE_COMMAND', { ...base, available: false, total: 1, data: new Uint8Array(0) }],
      ['ERR_WIRE_LENGTH', { ...base, available: false, total: 0, data: Uint8Array.of(1) }],
      ['ERR_WIRE_COMMAND', { kind: 'get_document', epoch: 1, chunk: MAX_DOCUMENT_CHUNKS }],
      ['ERR_WIRE_COMMAND', { kind: 'get_document', epoch: 1.5, chunk: 0 }],
    ];
    for (const [code, cmd] of bad) expectCode(code, () => tiny.encode(cmd as WireCommand), JSON.stringify(cmd, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes(${v.length})` : v)));
  });
});
