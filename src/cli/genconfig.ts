/**
 * `backchannel genconfig`: writes the configuration and keys of a whole network (authorities,
 * mix layers, gateways) and the network.json that clients need.
 */
import { join } from 'node:path';
import {
  DEFAULT_AUTHORITIES,
  DEFAULT_BASE_PORT,
  DEFAULT_GATEWAYS,
  DEFAULT_MIXES_PER_LAYER,
  generateNetwork,
  MAX_AUTHORITIES,
  MAX_GATEWAYS,
  MAX_MIXES_PER_LAYER,
  NETWORK_FILE,
} from '../config/genconfig.js';
import type { GeneratedServer } from '../config/genconfig.js';
import { DEFAULT_PARAMS, MAX_EPOCH_PERIOD_MS, MAX_MIX_MEAN_DELAY_MS, MIN_EPOCH_PERIOD_MS } from '../config/params.js';
import { MAX_HOPS } from '../sphinx/constants.js';
import { parseOptions, requireInt, requireString, usageError } from './args.js';

export const GENCONFIG_HELP = `Usage: backchannel genconfig --dir DIR [options]

Writes the configuration of a whole network: directory authorities, mix layers and gateways.

  DIR/network.json          what a client needs: authorities, threshold, parameters, gateways
  DIR/authority-N/          config.json, identity.key
  DIR/mix-L-N/              config.json, identity.key, link.key  (layer L)
  DIR/gateway-N/            config.json, identity.key, link.key

Key files are secret (mode 0600) and stay on the machine that runs the server. Each folder is
also that server's data folder.

Options:
  --dir DIR                 where to write (created when missing)
  --authorities N           directory authorities (default ${DEFAULT_AUTHORITIES}); a majority must sign each document
  --layers N                mix layers (default ${DEFAULT_PARAMS.layers}); packets take layers + 2 hops
  --mixes-per-layer N       mixes in each layer (default ${DEFAULT_MIXES_PER_LAYER})
  --gateways N              gateways (default ${DEFAULT_GATEWAYS})
  --hosts H1,H2,...         host names or IP addresses, given to servers in turn
                            (default 127.0.0.1: everything on this machine)
  --base-port P             first port (default ${DEFAULT_BASE_PORT}); see "Ports" below
  --epoch-seconds S         epoch length (default ${DEFAULT_PARAMS.epochPeriodMs / 1000}, 20 minutes; the local network uses 60)
  --mean-delay-ms MS        mean delay per mix hop (default ${DEFAULT_PARAMS.mixMeanDelayMs})
  --force                   replace a network already in DIR, keys included

Ports: servers are numbered in the order authorities, mixes (layer by layer), gateways, and take
consecutive ports from the base port: an authority its API port then its ops port (health and
metrics), a mix its listen port then its ops port, a gateway its listen port, ops port and
WebSocket port. With the defaults: authority-1 30000-30001, authority-2 30002-30003,
authority-3 30004-30005, mix-1-1 30006-30007, ..., mix-3-2 30016-30017, gateway-1 30018-30020,
gateway-2 30021-30023. Servers on a non-loopback host listen on all interfaces and advertise the
host's name; ops ports listen on 127.0.0.1.

Examples:
  One machine, the defaults:
    backchannel genconfig --dir backchannel-data
  Five machines, 1-minute epochs, then copy each server's folder to its host:
    backchannel genconfig --dir net --hosts 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5 --epoch-seconds 60
`;

const OPTIONS = {
  dir: { type: 'string' },
  authorities: { type: 'string' },
  layers: { type: 'string' },
  'mixes-per-layer': { type: 'string' },
  gateways: { type: 'string' },
  hosts: { type: 'string' },
  'base-port': { type: 'string' },
  'epoch-seconds': { type: 'string' },
  'mean-delay-ms': { type: 'string' },
  force: { type: 'boolean' },
} as const;

type Values = Record<string, string | boolean | undefined>;

function optionalInt(values: Values, name: string, min: number, max: number, dflt: number): number {
  return values[name] === undefined ? dflt : requireInt(values, name, min, max);
}

function describeServer(s: GeneratedServer): string {
  const ports =
    s.role === 'authority'
      ? `API port ${s.ports.listen}, ops ${s.ports.ops}`
      : `${s.role === 'mix' ? `layer ${s.layer}, ` : ''}port ${s.ports.listen}, ops ${s.ports.ops}${s.ports.ws === null ? '' : `, WebSocket ${s.ports.ws}`}`;
  return `  ${`${s.name}/`.padEnd(16)}${s.host.padEnd(18)}${ports}`;
}

/** Runs `backchannel genconfig`; returns the summary to print. */
export async function runGenconfig(argv: string[]): Promise<string> {
  const v = parseOptions(argv, OPTIONS);
  if (v['help'] === true) return GENCONFIG_HELP;
  const dir = requireString(v, 'dir');
  let hosts: string[] | undefined;
  if (v['hosts'] !== undefined) {
    hosts = requireString(v, 'hosts').split(',').map((h) => h.trim());
    if (hosts.some((h) => h === '')) throw usageError('--hosts must be a comma-separated list of host names or IP addresses, with no empty entry');
  }
  const layers = optionalInt(v, 'layers', 1, MAX_HOPS - 2, DEFAULT_PARAMS.layers);
  const epochSeconds = optionalInt(v, 'epoch-seconds', MIN_EPOCH_PERIOD_MS / 1000, MAX_EPOCH_PERIOD_MS / 1000, DEFAULT_PARAMS.epochPeriodMs / 1000);
  const result = generateNetwork({
    dir,
    authorities: optionalInt(v, 'authorities', 1, MAX_AUTHORITIES, DEFAULT_AUTHORITIES),
    layers,
    mixesPerLayer: optionalInt(v, 'mixes-per-layer', 1, MAX_MIXES_PER_LAYER, DEFAULT_MIXES_PER_LAYER),
    gateways: optionalInt(v, 'gateways', 1, MAX_GATEWAYS, DEFAULT_GATEWAYS),
    ...(hosts === undefined ? {} : { hosts }),
    basePort: optionalInt(v, 'base-port', 1, 65535, DEFAULT_BASE_PORT),
    params: {
      epochPeriodMs: epochSeconds * 1000,
      mixMeanDelayMs: optionalInt(v, 'mean-delay-ms', 0, MAX_MIX_MEAN_DELAY_MS, DEFAULT_PARAMS.mixMeanDelayMs),
    },
    force: v['force'] === true,
  });

  const { servers, network } = result;
  const count = (role: string): number => servers.filter((s) => s.role === role).length;
  const multiHost = new Set(servers.map((s) => s.host)).size > 1;
  const lines = [
    `Wrote a network to ${dir}: ${count('authority')} authorities (${network.threshold} must sign), ` +
      `${layers} mix layers of ${count('mix') / layers}, ${count('gateway')} gateways; epochs of ${epochSeconds} s.`,
    '',
    `  ${NETWORK_FILE.padEnd(16)}for clients: authorities, threshold, parameters, gateways`,
    ...servers.map(describeServer),
    '',
    'Each folder holds config.json and the server\'s keys (identity.key; link.key for mixes and gateways).',
    multiHost ? 'Copy each folder to its host; keep the key files secret (mode 0600) and on that host only.' : 'Keep the key files secret (mode 0600).',
    '',
    'Next, start the authorities, then the mixes and gateways:',
    ...servers.map((s) => `  backchannel ${s.role} --config ${join(dir, s.name, 'config.json')}`),
  ];
  return `${lines.join('\n')}\n`;
}
