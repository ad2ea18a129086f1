/**
 * The fixture several integration tests share: a local network as `backchannel up` runs it (in a
 * temporary folder, with the given parameters, the gateways' client rate raised for bursts), and
 * two `client run` processes, alice on gateway-1 and bob on gateway-2, each holding a document.
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

/** Starts the network (ports from a free range at or above `basePort`) and both clients. */
export async function startTwoClients(prefix: string, basePort: number, params: Partial<Omit<NetworkParameters, 'layers'>>): Promise<TwoClients> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const data = join(dir, 'network');
  let net: RunningLocalNetwork | null = null;
  const alice = new ClientProcess(join(dir, 'alice'));
  const bob = new ClientProcess(join(dir, 'bob'));
  const stop = async (): Promise<void> => {
    await alice.kill('SIGTERM');
    await bob.kill('SIGTERM');
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await ensureLocalNetwork({ dir: data, basePort, params });
    raiseClientRate(data);
    net = await startLocalNetwork({ dir: data });
    alice.init(data, 'gateway-1');
    bob.init(data, 'gateway-2');
    await Promise.all([alice.run(), bob.run()]);
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, net, alice, bob, stop };
}
