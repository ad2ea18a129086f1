/**
 * Binding a listener, for every server socket here (links over TCP and WebSocket, the operations
 * endpoint, the authority's API): a failure to bind becomes one line an operator can act on,
 * instead of Node's bare `listen EADDRINUSE` that the CLI can only report as an internal error.
 */
import type { Server } from 'node:net';
import { BackchannelError } from '../errors.js';

/** The system's reasons a bind fails that an operator can fix, in words. */
const LISTEN_FAILURES: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
};

/**
 * The error for a listener of `module` that could not bind `host:port`. The address is the one in
 * the operator's own config (never a peer's), so naming it leaks nothing and says what to change.
 */
export function listenError(module: string, host: string, port: number, cause: unknown): BackchannelError {
  const code = typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
  const reason = typeof code === 'string' ? (LISTEN_FAILURES[code] ?? code) : 'error';
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new BackchannelError('ERR_SERVER_LISTEN', `${module}: cannot listen on ${where} (${reason})`, { cause });
}

/**
 * Starts `server` listening on `host:port` (port 0: any free port) and resolves once it listens.
 * @throws {BackchannelError} ERR_SERVER_LISTEN, prefixed by `module`, when the address cannot be
 *   bound (in use, a privileged port, not an address of this machine).
 * @example await listenOn(server, '127.0.0.1', 30001, 'ops');
 */
export function listenOn(server: Server, host: string, port: number, module: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(listenError(module, host, port, e));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
