// Node metrics: counts added per packet as plain numbers show in every read of the counters, the
// packet histogram exports what prom-client's Histogram would, and drops are counted by reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { DROP_REASONS, PROCESSING_BUCKETS, PacketHistogram, nodeMetrics, readSample } from '../../src/ops/metrics.js';

test('per-packet counts show in the text exposition and in get(), however often they are read', async () => {
  const m = nodeMetrics();
  m.counts.packetsIn += 5;
  m.counts.packetsOut += 2;
  m.drop('replay');
  m.drop('replay', 3);
  m.drop('drop_cover');
  let text = await m.registry.metrics();
  assert.equal(readSample(text, 'backchannel_packets_in_total'), 5);
  assert.equal(readSample(text, 'backchannel_packets_out_total'), 2);
  assert.equal(readSample(text, 'backchannel_packets_delayed_total'), 0);
  assert.equal(readSample(text, 'backchannel_packets_dropped_total', { reason: 'replay' }), 4);
  assert.equal(readSample(text, 'backchannel_packets_dropped_total', { reason: 'drop_cover' }), 1);
  for (const r of DROP_REASONS) assert.notEqual(readSample(text, 'backchannel_packets_dropped_total', { reason: r }), undefined, r);
  m.counts.packetsIn++;
  m.drop('replay');
  text = await m.registry.metrics();
  assert.equal(readSample(text, 'backchannel_packets_in_total'), 6);
  assert.equal(readSample(text, 'backchannel_packets_dropped_total', { reason: 'replay' }), 5);
  m.drop('queue_full', 2);
  const dropped = await m.dropped.get();
  assert.equal(dropped.values.find((v) => v.labels.reason === 'queue_full')?.value, 2);
  assert.equal((await m.packetsIn.get()).values[0]?.value, 6);
});

test('the packet histogram exports the same text as prom-client for the same observations', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(fc.double({ min: 0, max: 2, noNaN: true }), fc.constantFrom(...PROCESSING_BUCKETS)), { maxLength: 200 }), async (values) => {
      const ours = new Registry();
      const theirs = new Registry();
      const a = new PacketHistogram({ name: 'h', help: 'help', buckets: PROCESSING_BUCKETS, registers: [ours] });
      const b = new Histogram({ name: 'h', help: 'help', buckets: [...PROCESSING_BUCKETS], registers: [theirs] });
      for (const v of values) {
        a.observe(v);
        b.observe(v);
      }
      assert.equal(await ours.metrics(), await theirs.metrics());
      ours.resetMetrics();
      theirs.resetMetrics();
      assert.equal(await ours.metrics(), await theirs.metrics());
    }),
  );
});

test('the packet histogram refuses what prom-client refuses', () => {
  const h = new PacketHistogram({ name: 'h', help: 'help', buckets: [1, 2] });
  assert.throws(() => h.observe(Number.NaN), TypeError);
  assert.throws(() => h.observe(Number.POSITIVE_INFINITY), TypeError);
  assert.throws(() => new PacketHistogram({ name: 'h', help: 'help', buckets: [2, 1] }), RangeError);
  assert.throws(() => new PacketHistogram({ name: 'h', help: 'help', buckets: [Number.NaN] }), TypeError);
});
