/**
 * Prometheus metrics. Each server owns one registry; metric names start with `backchannel_`.
 * Every place that drops a packet increments `backchannel_packets_dropped_total{reason}` (the
 * reasons are listed in DROP_REASONS, so that a scrape shows every counter, zeros included).
 * Labels never carry keys, addresses or identifiers.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Every reason a node drops a packet. */
export const DROP_REASONS = [
  'malformed_frame', // a link message that is not a valid wire command
  'unexpected_command', // a valid command that this peer may not send here
  'bad_packet', // Sphinx unwrap failed: bad MAC, length, version, point, commands, tag
  'worker_failed', // the unwrap worker holding the packet died
  'replay', // the replay tag was seen before under this mix key
  'replay_cache_full', // the replay cache for this mix key reached its bound
  'no_mix_key', // no mix key for the packet's epoch (expired, or not yet made)
  'queue_full', // a bounded queue (unwrap, delay, outgoing) was full
  'delay_too_long', // the routing command asked for a delay past the node's maximum
  'unknown_next_hop', // the next hop is not in the current document
  'wrong_next_hop', // the next hop is not in this node's next layer
  'link_down', // the link to the next hop could not be made or was closed
  'rate_limited', // a client sent faster than its gateway allows
  'unknown_recipient', // a final-hop packet for a mailbox this gateway does not serve
  'drop_cover', // a client's drop cover packet reached its end, as it should (not an error)
  'mailbox_full', // the recipient's mailbox (or the gateway's store) is full
  'store_error', // the mailbox database failed to commit
  'bad_payload', // a delivered payload whose layout (flags, SURB) is malformed
  'not_final', // a packet that ends (or goes on) where its role says it must not
  'shutdown', // packets held when the node stopped
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface NodeMetrics {
  readonly registry: Registry;
  readonly packetsIn: Counter;
  readonly packetsOut: Counter;
  readonly packetsDelayed: Counter;
  readonly dropped: Counter<'reason'>;
  readonly queueDepth: Gauge<'queue'>;
  /** The epoch of the document this node follows (0 before the first). */
  readonly epoch: Gauge;
  /** Time a packet spends inside the node beyond its requested delay, in seconds. */
  readonly processingSeconds: Histogram;
  drop(reason: DropReason, n?: number): void;
}

/** A registry with the metrics every packet-handling server exports. */
export function nodeMetrics(registry: Registry = new Registry()): NodeMetrics {
  const packetsIn = new Counter({ name: 'backchannel_packets_in_total', help: 'Sphinx packets received', registers: [registry] });
  const packetsOut = new Counter({ name: 'backchannel_packets_out_total', help: 'Sphinx packets sent on', registers: [registry] });
  const packetsDelayed = new Counter({ name: 'backchannel_packets_delayed_total', help: 'Packets held for a non-zero delay', registers: [registry] });
  const dropped = new Counter({ name: 'backchannel_packets_dropped_total', help: 'Packets dropped, by reason', labelNames: ['reason'] as const, registers: [registry] });
  for (const r of DROP_REASONS) dropped.inc({ reason: r }, 0);
  const queueDepth = new Gauge({ name: 'backchannel_queue_depth', help: 'Packets waiting, by queue', labelNames: ['queue'] as const, registers: [registry] });
  const epoch = new Gauge({ name: 'backchannel_epoch', help: 'Epoch of the consensus document in use', registers: [registry] });
  const processingSeconds = new Histogram({
    name: 'backchannel_processing_seconds',
    help: 'Time inside the node beyond the requested delay',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    registers: [registry],
  });
  return {
    registry,
    packetsIn,
    packetsOut,
    packetsDelayed,
    dropped,
    queueDepth,
    epoch,
    processingSeconds,
    drop(reason, n = 1) {
      dropped.inc({ reason }, n);
    },
  };
}

/** Reads one sample out of Prometheus text exposition (for `status` and tests). */
export function readSample(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const part of (m[3] ?? '').split(',')) {
      const kv = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*$/.exec(part);
      if (kv) got[kv[1]!] = kv[2]!;
    }
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}
