// The connection gate: per-source open connections and rate, the total, the table of sources, and
// how addresses are grouped into sources. A fake socket and a hand-driven clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionGate, sourceOf } from '../../src/util/gate.js';
import type { GateRefusal } from '../../src/util/gate.js';

class FakeSocket {
  destroyed = false;
  readonly #close: (() => void)[] = [];
  readonly remoteAddress: string | undefined;
  constructor(remoteAddress: string | undefined) {
    this.remoteAddress = remoteAddress;
  }
  destroy(): void {
    this.destroyed = true;
  }
  once(_event: 'close', listener: () => void): this {
    this.#close.push(listener);
    return this;
  }
  close(): void {
    for (const l of this.#close.splice(0)) l();
  }
}

describe('connection gate', () => {
  test('addresses are grouped by host: IPv4 as is, mapped IPv4 unwrapped, IPv6 by /64', () => {
    assert.equal(sourceOf('127.0.0.1'), '127.0.0.1');
    assert.equal(sourceOf('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(sourceOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceOf('::1'), '0:0:0:0::/64');
    assert.equal(sourceOf(undefined), '?');
  });

  test('open connections per source and in all; a closed one frees its place', () => {
    let now = 0;
    const gate = new ConnectionGate({ maxPerSource: 2, maxTotal: 3, ratePerSource: { perSecond: 1000, burst: 1000 } }, () => now);
    const refusals: GateRefusal[] = [];
    gate.onRefuse = (r) => refusals.push(r);
    const a1 = new FakeSocket('10.0.0.1');
    const a2 = new FakeSocket('10.0.0.1');
    const a3 = new FakeSocket('10.0.0.1');
    assert.ok(gate.admit(a1) && gate.admit(a2));
    assert.equal(gate.admit(a3), false);
    assert.ok(a3.destroyed);
    const b1 = new FakeSocket('10.0.0.2');
    const b2 = new FakeSocket('10.0.0.2');
    assert.ok(gate.admit(b1));
    assert.equal(gate.admit(b2), false, 'the total is reached');
    assert.deepEqual(refusals, ['source_open', 'total']);
    a1.close();
    now += 1;
    assert.ok(gate.admit(b2));
    assert.equal(gate.open, 3);
    assert.equal(gate.stats.admitted, 4);
    assert.deepEqual(gate.stats.refused, { source_open: 1, source_rate: 0, total: 1, sources: 0 });
  });

  test('new connections per source follow a token bucket', () => {
    let now = 0;
    const gate = new ConnectionGate({ maxPerSource: 100, maxTotal: 100, ratePerSource: { perSecond: 2, burst: 3 } }, () => now);
    const admit = (): boolean => {
      const s = new FakeSocket('10.0.0.1');
      const ok = gate.admit(s);
      s.close();
      return ok;
    };
    assert.deepEqual([admit(), admit(), admit(), admit()], [true, true, true, false]);
    now += 499;
    assert.equal(admit(), false);
    now += 1; // half a second: one token
    assert.deepEqual([admit(), admit()], [true, false]);
    assert.ok(gate.admit(new FakeSocket('10.0.0.9')), 'another source has its own bucket');
  });

  test('sources are forgotten once idle with a full bucket; the table is bounded', () => {
    let now = 0;
    const gate = new ConnectionGate({ maxPerSource: 10, maxTotal: 10, ratePerSource: { perSecond: 1, burst: 1 }, maxSources: 2 }, () => now);
    const a = new FakeSocket('10.0.0.1');
    const b = new FakeSocket('10.0.0.2');
    assert.ok(gate.admit(a) && gate.admit(b));
    assert.equal(gate.admit(new FakeSocket('10.0.0.3')), false);
    assert.equal(gate.stats.refused.sources, 1);
    a.close();
    now += 2000; // a's bucket is full again, and the sweep may run
    assert.ok(gate.admit(new FakeSocket('10.0.0.3')));
    assert.equal(gate.sources, 2);
    b.close();
    now += 2000;
    const c = new FakeSocket('10.0.0.4');
    assert.ok(gate.admit(c));
  });

  test('limits must be positive', () => {
    assert.throws(() => new ConnectionGate({ maxPerSource: 0, maxTotal: 1, ratePerSource: { perSecond: 1, burst: 1 } }, () => 0), RangeError);
    assert.throws(() => new ConnectionGate({ maxPerSource: 1, maxTotal: 1, ratePerSource: { perSecond: 1, burst: 0.5 } }, () => 0), RangeError);
  });
});
