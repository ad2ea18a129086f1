/**
 * `backchannel status`: the state of a network read from its servers' operations endpoints
 * (health and Prometheus metrics), for the servers configured under a data directory.
 */
import { DROP_REASONS, readSample } from '../ops/metrics.js';
import type { LocalServer } from './network.js';

export interface NodeStatus {
  readonly name: string;
  readonly role: 'authority' | 'mix' | 'gateway';
  readonly layer: number | null;
  readonly healthy: boolean;
  /** Why a healthy server says it is degraded (a limit being hit); empty when it is not. */
  readonly degraded: readonly string[];
  /** The epoch of the document the server uses, when it reports one. */
  readonly epoch: number | null;
  readonly packetsIn: number | null;
  readonly packetsOut: number | null;
  readonly dropped: number | null;
}

export interface NetworkStatus {
  /** The newest epoch any server reports; null when none answers. */
  readonly epoch: number | null;
  readonly nodes: readonly NodeStatus[];
}

async function get(url: string, timeoutMs: number): Promise<{ status: number; text: string } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    return { status: res.status, text: text.length > 4_000_000 ? '' : text };
  } catch {
    return null;
  }
}

/** The reasons of a health body whose status is "degraded" (strings only, at most 8, each cut to 120 characters). */
function degradedReasons(body: string | undefined): string[] {
  try {
    const h = JSON.parse(body ?? '') as { status?: unknown; reasons?: unknown };
    if (h.status !== 'degraded' || !Array.isArray(h.reasons)) return [];
    return h.reasons.filter((r): r is string => typeof r === 'string').slice(0, 8).map((r) => r.slice(0, 120));
  } catch {
    return [];
  }
}

/** Asks every server; one that does not answer is unhealthy. */
export async function networkStatus(servers: readonly LocalServer[], timeoutMs = 2_000): Promise<NetworkStatus> {
  const nodes = await Promise.all(
    servers.map(async (s): Promise<NodeStatus> => {
      const [health, metrics] = await Promise.all([get(`${s.opsUrl}/healthz`, timeoutMs), get(`${s.opsUrl}/metrics`, timeoutMs)]);
      const m = metrics?.status === 200 ? metrics.text : null;
      const epoch = m === null ? undefined : readSample(m, 'backchannel_epoch');
      let dropped: number | null = null;
      if (m !== null && s.role !== 'authority') {
        dropped = 0;
        for (const r of DROP_REASONS) dropped += readSample(m, 'backchannel_packets_dropped_total', { reason: r }) ?? 0;
      }
      const sample = (name: string): number | null => (m === null || s.role === 'authority' ? null : (readSample(m, name) ?? null));
      return {
        name: s.name,
        role: s.role,
        layer: s.layer,
        healthy: health?.status === 200,
        degraded: degradedReasons(health?.text),
        epoch: epoch === undefined || epoch === 0 ? null : epoch,
        packetsIn: sample('backchannel_packets_in_total'),
        packetsOut: sample('backchannel_packets_out_total'),
        dropped,
      };
    }),
  );
  let epoch: number | null = null;
  for (const n of nodes) if (n.epoch !== null && (epoch === null || n.epoch > epoch)) epoch = n.epoch;
  return { epoch, nodes };
}

/** The `--json` form: `{"epoch", "nodes": [{name, role, layer, healthy, ...}]}`. */
export function statusJson(st: NetworkStatus): string {
  return JSON.stringify({
    epoch: st.epoch,
    nodes: st.nodes.map((n) => ({
      name: n.name,
      role: n.role,
      layer: n.layer,
      healthy: n.healthy,
      degraded: n.degraded,
      epoch: n.epoch,
      packets_in: n.packetsIn,
      packets_out: n.packetsOut,
      dropped: n.dropped,
    })),
  });
}

/** A table for people. */
export function statusTable(st: NetworkStatus): string {
  const rows = [['NAME', 'ROLE', 'LAYER', 'HEALTH', 'EPOCH', 'IN', 'OUT', 'DROPPED']];
  const v = (x: number | null): string => (x === null ? '-' : String(x));
  for (const n of st.nodes) {
    const health = !n.healthy ? 'DOWN' : n.degraded.length > 0 ? 'degraded' : 'ok';
    rows.push([n.name, n.role, n.layer === null ? '-' : String(n.layer), health, v(n.epoch), v(n.packetsIn), v(n.packetsOut), v(n.dropped)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  const healthy = st.nodes.filter((n) => n.healthy).length;
  const notes = st.nodes.filter((n) => n.healthy && n.degraded.length > 0).map((n) => `${n.name} is degraded: ${n.degraded.join('; ')}`);
  return `epoch ${st.epoch ?? 'unknown'}; ${healthy} of ${st.nodes.length} servers healthy\n\n${lines.join('\n')}\n${notes.length > 0 ? `\n${notes.join('\n')}\n` : ''}`;
}
