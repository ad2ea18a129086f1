/**
 * `backchannel web`: serves the browser client for a local network on 127.0.0.1.
 */
import { resolve } from 'node:path';
import { DEFAULT_DATA_DIR } from '../local/up.js';
import { DEFAULT_WEB_PORT, serveNetworkWeb } from '../local/web.js';
import { parseOptions, requireInt, stopSignal } from './args.js';

export const WEB_HELP = `Usage: backchannel web [--port N] [--network DIR]

Serves the browser client on http://127.0.0.1:N/ for the network whose network.json is in DIR
(what 'backchannel up' writes), until Ctrl-C. Open the address in a browser: the page makes its
keys, joins a gateway over its WebSocket and keeps its state in the browser (IndexedDB). One
client per browser profile: use another profile (or a private window) for a second one.
'backchannel up' serves the same page beside its network.

Options:
  --port N         port on 127.0.0.1 (default ${DEFAULT_WEB_PORT}; 0 picks a free one)
  --network DIR    the network's state directory or its network.json (default ${DEFAULT_DATA_DIR})
  --help           print this help
`;

export async function runWeb(argv: string[]): Promise<string> {
  const v = parseOptions(argv, { port: { type: 'string' }, network: { type: 'string' } });
  if (v['help'] === true) return WEB_HELP;
  const port = v['port'] === undefined ? DEFAULT_WEB_PORT : requireInt(v, 'port', 0, 65_535);
  const networkDir = resolve(typeof v['network'] === 'string' ? v['network'] : DEFAULT_DATA_DIR);
  const stopping = stopSignal();
  const server = await serveNetworkWeb({ networkDir, port });
  process.stdout.write(`Backchannel in the browser: ${server.url} (network ${networkDir}). Press Ctrl-C to stop.\n`);
  await stopping;
  await server.close();
  return 'stopped';
}
