/**
 * Network parameters: the defaults (DESIGN.md, "Defaults") and their validation. Authorities
 * publish the parameters in every consensus document and every server checks them against its own
 * config, so every config of a network must hold the same values. They are therefore always
 * written out in full, never filled in from defaults that could differ between two versions of
 * this code. Portable: no `node:` imports.
 */
import type { NetworkParameters } from '../pki/types.js';
import { MAX_HOPS } from '../sphinx/constants.js';
import { DEFAULT_HOPS, DEFAULT_USER_PAYLOAD_LENGTH } from '../sphinx/geometry.js';
import { boolean, fail, integer, number, object, required } from './_validate.js';

/** DESIGN.md: epochs of 20 minutes. Long enough for descriptors, votes and signatures to settle. */
export const DEFAULT_EPOCH_PERIOD_MS = 20 * 60_000;
/** DESIGN.md: 1-minute epochs in the local network, so that key rotation shows within minutes. */
export const LOCAL_NETWORK_EPOCH_MS = 60_000;
/** DESIGN.md: 3 mix layers (Loopix's stratified topology). */
export const DEFAULT_LAYERS = 3;
/** DESIGN.md: per-hop mean delay 50 ms (1/mu in Loopix). */
export const DEFAULT_MIX_MEAN_DELAY_MS = 50;
/** DESIGN.md: client send rate 20 packets/s (lambda_P), to be tuned with the simulator. */
export const DEFAULT_SEND_RATE_PER_S = 20;
/** DESIGN.md: loop cover 5 packets/s (lambda_L). */
export const DEFAULT_LOOP_RATE_PER_S = 5;
/**
 * Clients fetch their mailbox at a constant 30 requests/s (DESIGN.md names no rate). Each fetch
 * takes one entry, and a client's mailbox fills at 2 × loop rate (a loop and its acknowledgement)
 * + send rate (acknowledgements of real fragments, at most one per send slot) + what others send
 * it: 2 × 5 + 20 = 30 keeps up with the client's own traffic at full load. About 80 kB/s down at
 * the default geometry; to be tuned with the simulator.
 */
export const DEFAULT_FETCH_RATE_PER_S = 30;
/**
 * A gateway emits its own packets (acknowledgements, cover in their place) at 25 per second per
 * linked client: one for every loop (5/s, each acknowledged) and every send slot (20/s, at most one
 * acknowledgement each) of a client, so that on average acknowledgements never outrun the slots
 * even when every client sends real messages all the time (docs/network.md, "What a gateway sends").
 */
export const DEFAULT_GATEWAY_RATE_PER_CLIENT_PER_S = DEFAULT_SEND_RATE_PER_S + DEFAULT_LOOP_RATE_PER_S;

/**
 * The network defaults: 5 hops (gateway, 3 mix layers, gateway) with a 2000-byte user payload
 * that carries a SURB, as in the Sphinx geometry's defaults (src/sphinx/geometry.ts).
 */
export const DEFAULT_PARAMS: NetworkParameters = Object.freeze({
  epochPeriodMs: DEFAULT_EPOCH_PERIOD_MS,
  hops: DEFAULT_HOPS,
  userPayloadLength: DEFAULT_USER_PAYLOAD_LENGTH,
  withSurb: true,
  layers: DEFAULT_LAYERS,
  mixMeanDelayMs: DEFAULT_MIX_MEAN_DELAY_MS,
  sendRatePerS: DEFAULT_SEND_RATE_PER_S,
  loopRatePerS: DEFAULT_LOOP_RATE_PER_S,
  fetchRatePerS: DEFAULT_FETCH_RATE_PER_S,
  gatewayRatePerClientPerS: DEFAULT_GATEWAY_RATE_PER_CLIENT_PER_S,
});

/** Shortest epoch: below a second, the epoch schedule is noise against clock skew. */
export const MIN_EPOCH_PERIOD_MS = 1000;
/** Longest epoch: a week; mix keys live two epochs, and forward secrecy needs them rotated. */
export const MAX_EPOCH_PERIOD_MS = 7 * 24 * 3_600_000;
/** Largest user payload a network may choose; 64 KiB keeps packets far below link frame limits. */
export const MAX_USER_PAYLOAD_LENGTH = 65_536;
/** Most mix layers: the header must also route through two gateways within MAX_HOPS. */
export const MAX_LAYERS = MAX_HOPS;
/** Largest mean delay per hop: 10 minutes, far past any useful latency. */
export const MAX_MIX_MEAN_DELAY_MS = 600_000;
/** Highest client rate of any kind, per second: a typo guard far above the defaults. */
export const MAX_RATE_PER_S = 1000;

const PARAM_FIELDS = [
  'epochPeriodMs',
  'hops',
  'userPayloadLength',
  'withSurb',
  'layers',
  'mixMeanDelayMs',
  'sendRatePerS',
  'loopRatePerS',
  'fetchRatePerS',
  'gatewayRatePerClientPerS',
] as const;

/**
 * Validates network parameters: every field present, in range, and a path (gateway, one mix per
 * layer, gateway) that fits in the header's hops.
 * @throws {BackchannelError} ERR_CONFIG naming the field.
 */
export function parseParams(path: string, value: unknown): NetworkParameters {
  const o = object(path, value, PARAM_FIELDS);
  const get = (key: (typeof PARAM_FIELDS)[number], expected: string): unknown => required(o, path, key, expected);
  const p: NetworkParameters = {
    epochPeriodMs: integer(`${path}.epochPeriodMs`, get('epochPeriodMs', 'milliseconds'), MIN_EPOCH_PERIOD_MS, MAX_EPOCH_PERIOD_MS),
    hops: integer(`${path}.hops`, get('hops', `1 to ${MAX_HOPS}`), 1, MAX_HOPS),
    userPayloadLength: integer(`${path}.userPayloadLength`, get('userPayloadLength', 'bytes'), 0, MAX_USER_PAYLOAD_LENGTH),
    withSurb: boolean(`${path}.withSurb`, get('withSurb', 'true or false')),
    layers: integer(`${path}.layers`, get('layers', `1 to ${MAX_LAYERS}`), 1, MAX_LAYERS),
    mixMeanDelayMs: integer(`${path}.mixMeanDelayMs`, get('mixMeanDelayMs', 'milliseconds'), 0, MAX_MIX_MEAN_DELAY_MS),
    sendRatePerS: number(`${path}.sendRatePerS`, get('sendRatePerS', 'packets per second'), 0, MAX_RATE_PER_S, true),
    loopRatePerS: number(`${path}.loopRatePerS`, get('loopRatePerS', 'packets per second'), 0, MAX_RATE_PER_S, true),
    fetchRatePerS: number(`${path}.fetchRatePerS`, get('fetchRatePerS', 'requests per second'), 0, MAX_RATE_PER_S, true),
    gatewayRatePerClientPerS: number(`${path}.gatewayRatePerClientPerS`, get('gatewayRatePerClientPerS', 'packets per second per linked client'), 0, MAX_RATE_PER_S, true),
  };
  if (p.layers + 2 > p.hops) fail(`${path}.hops`, `at least layers + 2 = ${p.layers + 2} (gateway, one mix per layer, gateway)`, String(p.hops));
  return p;
}

/** The JSON form of parameters (field for field). */
export function paramsToJson(p: NetworkParameters): Record<(typeof PARAM_FIELDS)[number], number | boolean> {
  return {
    epochPeriodMs: p.epochPeriodMs,
    hops: p.hops,
    userPayloadLength: p.userPayloadLength,
    withSurb: p.withSurb,
    layers: p.layers,
    mixMeanDelayMs: p.mixMeanDelayMs,
    sendRatePerS: p.sendRatePerS,
    loopRatePerS: p.loopRatePerS,
    fetchRatePerS: p.fetchRatePerS,
    gatewayRatePerClientPerS: p.gatewayRatePerClientPerS,
  };
}
