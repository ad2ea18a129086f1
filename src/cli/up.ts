/**
 * `backchannel up` and `backchannel status`: a complete local network on this machine, and its state.
 */
import { join, resolve } from 'node:path';
import { NETWORK_FILE } from '../config/genconfig.js';
import { readLocalServers } from '../local/network.js';
import { networkStatus, statusJson, statusTable } from '../local/status.js';
import { DEFAULT_DATA_DIR, startLocalNetwork } from '../local/up.js';
import { DEFAULT_WEB_PORT, serveNetworkWeb } from '../local/web.js';
import type { WebServer } from '../local/web-server.js';
import { parseOptions, requireInt, stopSignal } from './args.js';

export const UP_HELP = `Usage: backchannel up [--dir DIR] [--base-port N] [--epoch-seconds S]

Starts a complete Backchannel network on this machine, on 127.0.0.1: 3 directory authorities,
3 layers of 2 mix nodes and 2 gateways, each its own process. Waits until the authorities have
signed the first consensus document, prints what runs where, and runs until Ctrl-C, which stops
every server cleanly.

The first run makes the configs and keys under DIR (as 'backchannel genconfig' would, with
60-second epochs and the first free ports from 30000); later runs reuse them, mailboxes included.

One 'up' at a time runs a folder: it holds DIR/up.lock while it runs, and another 'up' on the
same folder is refused, naming the first one's pid (a lock left by a process that no longer runs
is replaced). It also refuses to start when a port of the network's configs is taken, as it is
when a copy of a running folder is started, and it fails as soon as a server exits while
starting, naming the server and its log.

Options:
  --dir DIR          state directory (default ${DEFAULT_DATA_DIR})
  --base-port N      first port to try for a new network (default 30000)
  --epoch-seconds S  epoch length for a new network (default 60)
  --help             print this help

It also serves the browser client on http://127.0.0.1:${DEFAULT_WEB_PORT}/ (a free port when that one is
taken), as 'backchannel web' does. Each server logs to DIR/<name>/server.log.
'backchannel status --dir DIR' shows the network's state.
`;

export const STATUS_HELP = `Usage: backchannel status [--dir DIR] [--json]

Shows the state of the network whose configs are in DIR (default ${DEFAULT_DATA_DIR}): the epoch,
and for every server its role, layer, health and traffic, read from its health and metrics endpoints.

Exits with 0 when every server is healthy and 1 when any is down (the table or JSON is printed
either way), so that scripts can wait for a network or check it.

Options:
  --dir DIR   state directory (default ${DEFAULT_DATA_DIR})
  --json      one JSON object: {"epoch": N, "nodes": [{"name", "role", "layer", "healthy", ...}]}
  --help      print this help
`;

export async function runUp(argv: string[]): Promise<string> {
  const v = parseOptions(argv, { dir: { type: 'string' }, 'base-port': { type: 'string' }, 'epoch-seconds': { type: 'string' } });
  if (v['help'] === true) return UP_HELP;
  const dir = resolve(typeof v['dir'] === 'string' ? v['dir'] : DEFAULT_DATA_DIR);
  const int = (name: string, min: number, max: number): number | undefined => (v[name] === undefined ? undefined : requireInt(v, name, min, max));
  const basePort = int('base-port', 1024, 64_000);
  const epochSeconds = int('epoch-seconds', 1, 7 * 24 * 3600);
  const err = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const stopping = stopSignal();
  const running = await startLocalNetwork({
    dir,
    ...(basePort === undefined ? {} : { basePort }),
    ...(epochSeconds === undefined ? {} : { params: { epochPeriodMs: epochSeconds * 1000 } }),
    progress: err,
    onExit: (name, how) => err(`backchannel: ${name} exited (${how}); see ${join(dir, name, 'server.log')}`),
  });
  const { network, document } = running;
  // The browser client beside the network (issue 20); a taken port gives a free one, a missing bundle a note.
  let web: WebServer | null = null;
  let webLine: string;
  try {
    web = await serveNetworkWeb({ networkDir: dir, port: DEFAULT_WEB_PORT }).catch(() => serveNetworkWeb({ networkDir: dir, port: 0 }));
    webLine = `In a browser: ${web.url} (the browser client; one client per browser profile).`;
  } catch (e) {
    webLine = `The browser client is not served: ${e instanceof Error ? e.message : String(e)}`;
  }
  const rows = network.servers.map((s) => {
    const what = s.role === 'authority' ? 'authority' : s.role === 'mix' ? `mix, layer ${s.layer}` : 'gateway';
    return `  ${s.name.padEnd(12)} ${what.padEnd(14)} ${`${s.role === 'authority' ? 'http://' : ''}${s.listen}`.padEnd(27)} ops ${s.opsUrl}  pid ${network.pid(s.name) ?? '-'}`;
  });
  process.stdout.write(
    [
      `Backchannel is running on this machine: epoch ${document.document.epoch}, ${document.document.nodes.length} nodes in the consensus.`,
      '',
      ...rows,
      '',
      `Clients: the network's description is ${join(dir, NETWORK_FILE)} (authorities, their keys, gateways).`,
      `State and logs: ${dir}. Status: npx backchannel status --dir ${dir}`,
      webLine,
      "Run the commands from this folder as 'npx backchannel ...' (or run 'npm link' once to put 'backchannel' on your PATH).",
      'Press Ctrl-C to stop every server.',
      '',
    ].join('\n'),
  );
  await stopping;
  err('stopping...');
  await web?.close();
  await running.stop();
  return 'stopped';
}

/** The status to print, and the exit code: 1 when any server is down. */
export async function runStatus(argv: string[]): Promise<{ out: string; code: number }> {
  const v = parseOptions(argv, { dir: { type: 'string' }, json: { type: 'boolean' } });
  if (v['help'] === true) return { out: STATUS_HELP, code: 0 };
  const dir = resolve(typeof v['dir'] === 'string' ? v['dir'] : DEFAULT_DATA_DIR);
  const st = await networkStatus(readLocalServers(dir));
  return { out: v['json'] === true ? statusJson(st) : statusTable(st), code: st.nodes.every((n) => n.healthy) ? 0 : 1 };
}
