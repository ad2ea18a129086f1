/**
 * The browser client served for a network (`backchannel web`, and `backchannel up` beside its
 * table): the bundle in dist/web (`npm run build` makes it) and the network's connection details
 * as /network.json, the network file as `up` wrote it: the gateways' WebSocket addresses and link
 * keys, the authorities' keys (the page verifies documents with them; it never contacts an
 * authority: documents come through its gateway). Node only.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NETWORK_FILE, networkFileToJson, readNetworkFile } from '../config/genconfig.js';
import { BackchannelError } from '../errors.js';
import { startWebServer } from './web-server.js';
import type { WebServer } from './web-server.js';

/** Where `npm run build` puts the page (dist/web, beside dist/src). */
export const WEB_BUNDLE_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
/** The port `backchannel web` and `backchannel up` serve the page on unless told otherwise. */
export const DEFAULT_WEB_PORT = 8480;

/**
 * Serves the page for the network whose network.json is in `networkDir` (or is that file).
 * @throws {BackchannelError} ERR_CONFIG when there is no valid network file; ERR_CLIENT_STATE when
 *   the bundle was not built.
 */
export async function serveNetworkWeb(opts: { networkDir: string; port: number; root?: string }): Promise<WebServer> {
  const path = resolve(opts.networkDir);
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, NETWORK_FILE) : path;
  if (!existsSync(file)) throw new BackchannelError('ERR_CONFIG', `no ${NETWORK_FILE} in ${path}: start a network there with \`npx backchannel up --dir ${path}\``);
  const network = readNetworkFile(file);
  const root = opts.root ?? WEB_BUNDLE_DIR;
  if (!existsSync(join(root, 'index.html'))) throw new BackchannelError('ERR_CLIENT_STATE', `the browser client is not built (no ${join(root, 'index.html')}): run \`npm run build\``);
  return startWebServer({
    root,
    port: opts.port,
    documents: { '/network.json': { type: 'application/json', body: JSON.stringify(networkFileToJson(network)) } },
  });
}
