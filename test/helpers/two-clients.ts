/**
 * The fixture several integration tests share: a local network as `backchannel up` runs it (in a
 * temporary folder, with the given parameters, the gateways' client rate raised for bursts), and
 * two `client run` processes, alice on gateway-1 and bob on gateway-2, each holding a document
 * (`startThreeClients`: and carol on gateway-1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetworkParameters } from '../../src/pki/types.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import { ClientProcess } from './client-process.js';
import { raiseClientRate } from './mixnet-client.js';

export interface TwoClients {
  /** The temporary folder: the network under `network/`, the clients beside it. */
  readonly dir: string;
  readonly net: RunningLocalNetwork;
  readonly alice: ClientProcess;
  readonly bob: ClientProcess;
  /** Stops both clients and the network, and removes the folder. */
  stop(): Promise<void>;
}

export interface ThreeClients extends TwoClients {
  readonly carol: ClientProcess;
}

type Params = Partial<Omit<NetworkParameters, 'layers'>>;

/** Starts the network and one client per [name, gateway], in that order. */
async function startClients(prefix: string, basePort: number, params: Params, specs: ReadonlyArray<readonly [string, string]>): Promise<{ dir: string; net: RunningLocalNetwork; clients: ClientProcess[]; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const data = join(dir, 'network');
  let net: RunningLocalNetwork | null = null;
  const clients = specs.map(([name]) => new ClientProcess(join(dir, name)));
  const stop = async (): Promise<void> => {
    for (const c of clients) await c.kill('SIGTERM');
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await ensureLocalNetwork({ dir: data, basePort, params });
    raiseClientRate(data);
    net = await startLocalNetwork({ dir: data });
    clients.forEach((c, i) => c.init(data, specs[i]![1]));
    await Promise.all(clients.map((c) => c.run()));
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, net, clients, stop };
}

/** Starts the network (ports from a free range at or above `basePort`) and both clients. */
export async function startTwoClients(prefix: string, basePort: number, params: Params): Promise<TwoClients> {
  const { dir, net, clients, stop } = await startClients(prefix, basePort, params, [['alice', 'gateway-1'], ['bob', 'gateway-2']]);
  return { dir, net, alice: clients[0]!, bob: clients[1]!, stop };
}

/** The same with a third client, carol, on gateway-1 (alice's). */
export async function startThreeClients(prefix: string, basePort: number, params: Params): Promise<ThreeClients> {
  const { dir, net, clients, stop } = await startClients(prefix, basePort, params, [['alice', 'gateway-1'], ['bob', 'gateway-2'], ['carol', 'gateway-1']]);
  return { dir, net, alice: clients[0]!, bob: clients[1]!, carol: clients[2]!, stop };
}
