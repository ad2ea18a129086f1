/**
 * TimedLink (src/client/timed-link.ts) on a virtual clock: departures in time order at their
 * times; fetches made when they leave with the last sequence given, and with `durable` only once
 * the store says its writes are on disk; a link that stops taking frames, or an overflowing
 * queue, is reported once and nothing more leaves.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WAITING_FRAMES, TimedLink } from '../../src/client/timed-link.js';
import { VirtualClock } from '../../bench/_virtual-clock.js';
import { WireCodec } from '../../src/wire/commands.js';

const codec = new WireCodec({ packetLength: 256 });

function sink(): { sent: { at: number; what: string }[]; trySend(f: Uint8Array): boolean; send(f: Uint8Array): Promise<void>; clock: VirtualClock } {
  const clock = new VirtualClock(1000);
  const sent: { at: number; what: string }[] = [];
  const name = (f: Uint8Array): string => {
    const c = codec.decode(f);
    return c.kind === 'retrieve_message' ? `r${c.sequence}` : c.kind === 'send_packet' ? `p${c.packet[0]}` : c.kind;
  };
  return {
    sent,
    clock,
    trySend: (f) => {
      sent.push({ at: clock.now(), what: name(f) });
      return true;
    },
    send: () => Promise.resolve(),
  };
}

const packet = (i: number): Uint8Array => codec.encode({ kind: 'send_packet', packet: new Uint8Array(256).fill(i) });

describe('TimedLink', () => {
  it('sends at the times given, in time order, and makes each fetch when it leaves', () => {
    const s = sink();
    const link = new TimedLink(s, { clock: s.clock, codec, onFailure: () => assert.fail('no failure') });
    link.sendAt(packet(2), 1200);
    link.fetchAt(1150);
    link.sendAt(packet(1), 1100);
    link.sendAt(packet(0), 900); // past: at the next turn of the timer
    link.setFetchSequence(4);
    s.clock.advance(1120);
    link.setFetchSequence(5); // after the fetch was handed over, before it left: it asks for 5
    s.clock.advance(2000);
    assert.deepEqual(s.sent, [
      { at: 1000, what: 'p0' },
      { at: 1100, what: 'p1' },
      { at: 1150, what: 'r5' },
      { at: 1200, what: 'p2' },
    ]);
  });

  it('with `durable`, a sequence counts once the store has written it, never before', async () => {
    const s = sink();
    let release: () => void = () => undefined;
    const link = new TimedLink(s, { clock: s.clock, codec, durable: () => new Promise<void>((r) => (release = r)), onFailure: () => undefined });
    link.setFetchSequence(3);
    link.fetchAt(1010);
    s.clock.advance(1010);
    assert.equal(link.sequence, 0, 'not durable yet');
    release();
    await Promise.resolve();
    link.fetchAt(1020);
    s.clock.advance(1020);
    assert.deepEqual(s.sent.map((x) => x.what), ['r0', 'r3']);
    // The last one given wins, smaller or not (a fetch names the entry taken last: the gateway
    // answers a client's addresses in turn, not in sequence order).
    link.setFetchSequence(2);
    release();
    await Promise.resolve();
    assert.equal(link.sequence, 2);
  });

  it('with `durable`, of two sequences given the later one counts, whichever became durable first', async () => {
    const s = sink();
    const releases: (() => void)[] = [];
    const link = new TimedLink(s, { clock: s.clock, codec, durable: () => new Promise<void>((r) => releases.push(r)), onFailure: () => undefined });
    link.setFetchSequence(9);
    link.setFetchSequence(4);
    releases[1]!();
    await Promise.resolve();
    assert.equal(link.sequence, 4);
    releases[0]!();
    await Promise.resolve();
    assert.equal(link.sequence, 4, 'the earlier call does not overwrite the later one');
  });

  it('reports a link that stops taking frames, or an overflowing queue, once; then nothing leaves', () => {
    const s = sink();
    let failures = 0;
    const link = new TimedLink(
      {
        trySend: () => {
          throw new Error('closed');
        },
        send: () => Promise.resolve(),
      },
      { clock: s.clock, codec, onFailure: () => failures++ },
    );
    link.sendAt(packet(1), 1001);
    link.sendAt(packet(2), 1002);
    s.clock.advance(1100);
    assert.equal(failures, 1);

    const s2 = sink();
    let overflows = 0;
    const full = new TimedLink(s2, { clock: s2.clock, codec, onFailure: () => overflows++ });
    for (let i = 0; i <= MAX_WAITING_FRAMES; i++) full.sendAt(packet(i & 0xff), 5000 + i);
    assert.equal(overflows, 1);
    s2.clock.advance(10_000);
    assert.equal(s2.sent.length, 0, 'nothing leaves after the failure');
  });
});
