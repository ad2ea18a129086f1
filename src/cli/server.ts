/**
 * `backchannel authority|mix|gateway --config FILE`: runs one server in the foreground until
 * SIGINT or SIGTERM, then stops it cleanly (links closed with a close frame, mailbox committed).
 * Logs are JSON lines on stderr.
 */
import { Registry } from 'prom-client';
import { startAuthority } from '../authority/authority.js';
import { watchPressure } from '../server/pressure.js';
import { loadConfig } from '../config/load.js';
import { loadOrCreateAdmissionTokenKey, loadOrCreateIdentity } from '../config/keys.js';
import { nodeBackend } from '../crypto/node.js';
import { mintToken, TOKEN_ID_LENGTH } from '../wire/admission.js';
import type { ServerConfig, ServerRole } from '../config/types.js';
import { BackchannelError } from '../errors.js';
import { systemClock } from '../ops/clock.js';
import { startOpsServer } from '../ops/http.js';
import type { OpsServer } from '../ops/http.js';
import { jsonLogger } from '../ops/log.js';
import { nodeEd25519 } from '../pki/ed25519-node.js';
import { runNodeServer } from '../server/service.js';
import { equalBytes, toHex, wipe } from '../util/bytes.js';
import { parseOptions, requireInt, requireString, stopSignal } from './args.js';

const ABOUT: Record<ServerRole, string> = {
  authority: 'a directory authority: collects node descriptors, votes, signs the consensus document each epoch',
  mix: 'a mix node: unwraps, delays and forwards packets between layers',
  gateway: "a gateway: clients' entry and exit, with their durable mailboxes",
};

function help(role: ServerRole): string {
  return `Usage: backchannel ${role} --config FILE

Runs ${ABOUT[role]}.
Runs in the foreground until Ctrl-C (SIGINT) or SIGTERM, then shuts down cleanly.

Options:
  --config FILE   the server's JSON config (write one with 'backchannel genconfig')
  --help          print this help

Logs go to stderr as JSON lines. Health: GET /healthz and metrics: GET /metrics on the
config's "ops" address.
`;
}

async function start(config: ServerConfig): Promise<() => Promise<void>> {
  const log = jsonLogger({ level: config.logLevel, component: config.name });
  if (config.role !== 'authority') {
    const running = await runNodeServer(config, { log });
    return () => running.stop();
  }
  const identity = loadOrCreateIdentity(config.dataDir);
  const self = config.authorities.find((a) => a.name === config.name);
  if (!self || !equalBytes(self.identityKey, identity.publicKey)) {
    throw new BackchannelError('ERR_CONFIG', 'config: this authority\'s identity key does not match its entry in "authorities"');
  }
  const registry = new Registry();
  registry.setDefaultLabels({ node: config.name });
  const authority = await startAuthority(
    { name: config.name, identitySeed: identity.seed, listen: config.listen, authorities: config.authorities, threshold: config.threshold, params: config.params, nodes: config.nodes },
    { clock: systemClock, log: log.child('authority'), registry, ed: nodeEd25519 },
  );
  // Its HTTP listener's gate, memory and event-loop lag in metrics, and "degraded" while its gate refuses connections.
  const pressure = watchPressure(registry, () => [{ name: 'http', gate: authority.gate }]);
  let ops: OpsServer;
  try {
    ops = await startOpsServer({
      host: config.ops.host,
      port: config.ops.port,
      registry,
      health: () => {
        const doc = authority.current();
        return { healthy: true, degraded: pressure.degraded(), detail: { role: 'authority', epoch: doc?.document.epoch ?? null, document: doc ? 'valid' : 'missing' } };
      },
    });
  } catch (e) {
    pressure.stop();
    await authority.close();
    throw e;
  }
  log.info('started', { role: 'authority' });
  return async () => {
    await ops.close();
    pressure.stop();
    await authority.close();
    log.info('stopped');
  };
}

const TOKEN_HELP = `Usage: backchannel gateway token --config FILE [--count N]

Mints N (default 1, at most 10,000) invitation tokens for a gateway whose config says
"admission": { "mode": "token" }, one a line, 64 hex digits each. Each admits one client key (the
first to show it). The key that mints them is <dataDir>/admission-token.key (mode 0600), created
when missing; keep it as secret as the identity key. Give a token to a user, who runs
\`backchannel client token --token TOKEN\`.
`;

/** Prints invitation tokens minted with the gateway's token key. */
function mintTokens(argv: string[]): string {
  const opts = parseOptions(argv, { config: { type: 'string' }, count: { type: 'string' } });
  if (opts['help']) return TOKEN_HELP;
  const config = loadConfig(requireString(opts, 'config'));
  if (config.role !== 'gateway') throw new BackchannelError('ERR_CONFIG', `config: this is a ${config.role} config, not a gateway config`);
  const count = opts['count'] === undefined ? 1 : requireInt(opts, 'count', 1, 10_000);
  const { key } = loadOrCreateAdmissionTokenKey(config.dataDir);
  try {
    const lines: string[] = [];
    for (let i = 0; i < count; i++) lines.push(toHex(mintToken(nodeBackend, key, nodeBackend.randomBytes(TOKEN_ID_LENGTH))));
    if (config.admission.mode !== 'token') process.stderr.write(`backchannel: note: this gateway admits by ${config.admission.mode}, not by token; set "admission": { "mode": "token" } for these to count\n`);
    return lines.join('\n');
  } finally {
    wipe(key);
  }
}

/**
 * How long a server whose start failed leaves for its error line to be written before it ends.
 * A start can fail half way, after some parts run: a node whose ops port is taken already listens
 * for links and uploads its descriptor. Nothing holds those parts to stop them, and the process
 * must not linger as half a server (its SIGTERM handler would even keep it from being stopped).
 */
const FAILED_START_EXIT_MS = 500;

/** Runs the server until a signal; returns the text to print (nothing). */
export async function runServer(role: ServerRole, argv: string[]): Promise<string> {
  if (role === 'gateway' && argv[0] === 'token') return mintTokens(argv.slice(1));
  const opts = parseOptions(argv, { config: { type: 'string' } });
  if (opts['help']) return help(role);
  const config = loadConfig(requireString(opts, 'config'));
  if (config.role !== role) throw new BackchannelError('ERR_CONFIG', `config: this is a ${config.role} config, not a ${role} config`);
  const signal = stopSignal();
  let stop: () => Promise<void>;
  try {
    stop = await start(config);
  } catch (e) {
    // Unref'd: a process with nothing left running ends at once, as after any failed command.
    setTimeout(() => process.exit(process.exitCode ?? 1), FAILED_START_EXIT_MS).unref();
    throw e;
  }
  await signal;
  await stop();
  return '';
}
