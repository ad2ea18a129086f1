/**
 * The network file (`network.json`): the public description a client needs to join a network,
 * written by genconfig: the authorities and their threshold, the parameters, and the gateways a
 * client may register with. Everything else (mixes, mix keys) comes from the consensus. Portable:
 * no `node:` imports, so that the browser client parses it with the same checks.
 */
import { BackchannelError } from '../errors.js';
import type { AuthorityInfo, NetworkParameters } from '../pki/types.js';
import { equalBytes, toHex } from '../util/bytes.js';
import { array, authorities, field, hostPort, name, object, publicKey, required, threshold, wsUrl } from './_validate.js';
import { paramsToJson, parseParams } from './params.js';

/** A gateway as the network file lists it: enough to connect and to name it as the last hop. */
export interface NetworkGateway {
  readonly name: string;
  /** Ed25519 identity key (the gateway's Sphinx node id). */
  readonly identityKey: Uint8Array;
  /** X25519 Noise static key of its links. */
  readonly linkKey: Uint8Array;
  /** "host:port" for TCP clients. */
  readonly tcpAddress: string;
  /** "ws://host:port/link" for browser clients, or null. */
  readonly wsAddress: string | null;
}

export interface NetworkFile {
  readonly authorities: readonly AuthorityInfo[];
  readonly threshold: number;
  readonly params: NetworkParameters;
  readonly gateways: readonly NetworkGateway[];
}

/** The most gateways a network file lists: a typo guard. */
export const MAX_NETWORK_GATEWAYS = 1024;

/**
 * Validates a parsed network file.
 * @throws {BackchannelError} ERR_CONFIG naming the field (`network.gateways[1].linkKey ...`).
 */
export function parseNetworkFile(json: unknown): NetworkFile {
  const root = 'network';
  const o = object(root, json, ['authorities', 'threshold', 'params', 'gateways']);
  const auths = authorities(`${root}.authorities`, required(o, root, 'authorities', 'an array of {name, identityKey, url}'));
  const gateways: NetworkGateway[] = [];
  const gp = `${root}.gateways`;
  array(gp, required(o, root, 'gateways', 'an array of {name, identityKey, linkKey, tcpAddress, wsAddress}'), 1, MAX_NETWORK_GATEWAYS).forEach((entry, i) => {
    const p = `${gp}[${i}]`;
    const g = object(p, entry, ['name', 'identityKey', 'linkKey', 'tcpAddress', 'wsAddress']);
    const ws = field(g, 'wsAddress');
    const gateway: NetworkGateway = {
      name: name(`${p}.name`, required(g, p, 'name', 'a name')),
      identityKey: publicKey(`${p}.identityKey`, required(g, p, 'identityKey', 'an Ed25519 public key in hex')),
      linkKey: publicKey(`${p}.linkKey`, required(g, p, 'linkKey', 'an X25519 public key in hex')),
      tcpAddress: hostPort(`${p}.tcpAddress`, required(g, p, 'tcpAddress', '"host:port"')),
      wsAddress: ws === undefined || ws === null ? null : wsUrl(`${p}.wsAddress`, ws),
    };
    for (const [j, other] of gateways.entries()) {
      const dup = other.name === gateway.name ? 'name' : equalBytes(other.identityKey, gateway.identityKey) ? 'identityKey' : equalBytes(other.linkKey, gateway.linkKey) ? 'linkKey' : undefined;
      if (dup !== undefined) throw new BackchannelError('ERR_CONFIG', `config: ${p}.${dup} repeats the ${dup} of ${gp}[${j}]`);
    }
    gateways.push(gateway);
  });
  return {
    authorities: auths,
    threshold: threshold(`${root}.threshold`, field(o, 'threshold'), auths.length),
    params: parseParams(`${root}.params`, required(o, root, 'params', 'the network parameters')),
    gateways,
  };
}

/** The JSON form of a network file (keys in hex), as parseNetworkFile reads it back. */
export function networkFileToJson(n: NetworkFile): Record<string, unknown> {
  return {
    authorities: n.authorities.map((a) => ({ name: a.name, identityKey: toHex(a.identityKey), url: a.url })),
    threshold: n.threshold,
    params: paramsToJson(n.params),
    gateways: n.gateways.map((g) => ({
      name: g.name,
      identityKey: toHex(g.identityKey),
      linkKey: toHex(g.linkKey),
      tcpAddress: g.tcpAddress,
      wsAddress: g.wsAddress,
    })),
  };
}
