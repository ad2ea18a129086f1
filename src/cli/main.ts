/**
 * The `backchannel` command. Subcommands print their result on stdout; errors are one line on
 * stderr with no stack trace: exit code 2 for a usage error, 1 for anything else. `status` also
 * exits with 1, after printing, when a server is down.
 */
import { readFileSync } from 'node:fs';
import { isBackchannelError } from '../errors.js';
import { runClientCommand } from './client.js';
import { runGenconfig } from './genconfig.js';
import { runServer } from './server.js';
import { runSim } from './sim.js';
import { runSphinx } from './sphinx.js';
import { runStatus, runUp } from './up.js';
import { runWeb } from './web.js';

const HELP = `Usage: backchannel <command> [options]

Backchannel: a metadata-private messenger over a Loopix-style mix network.

Commands:
  up          start a complete local network (3 authorities, 3 layers of 2 mixes, 2 gateways)
  status      show a network's epoch, servers, health and traffic
  genconfig   write the configs and keys of a network of N hosts
  authority   run a directory authority          (--config FILE)
  mix         run a mix node                     (--config FILE)
  gateway     run a gateway                      (--config FILE)
  client      the messaging client: init, run, address, status, send, recv
  web         serve the browser client for a local network (--port N, --network DIR)
  sphinx      inspect Sphinx packets: unwrap a hop, decrypt a SURB reply, print a geometry
  sim         simulate the network in virtual time: anonymity, latency, cover traffic
  version     print the version
  help        print this help

Run 'backchannel <command> --help' for a command's options.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Runs the CLI with `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    let out: string;
    let code = 0;
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out = HELP;
        break;
      case 'version':
      case '--version':
        out = version();
        break;
      case 'sphinx':
        out = runSphinx(rest);
        break;
      case 'sim':
        out = await runSim(rest);
        break;
      case 'genconfig':
        out = await runGenconfig(rest);
        break;
      case 'up':
        out = await runUp(rest);
        break;
      case 'status':
        ({ out, code } = await runStatus(rest));
        break;
      case 'authority':
      case 'mix':
      case 'gateway':
        out = await runServer(command, rest);
        break;
      case 'client':
        return await runClientCommand(rest);
      case 'web':
        out = await runWeb(rest);
        break;
      default:
        process.stderr.write(`backchannel: unknown command "${command}"\n\n${HELP}`);
        return 2;
    }
    if (out !== '') process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
    return code;
  } catch (e) {
    if (isBackchannelError(e)) {
      process.stderr.write(`backchannel: ${e.message}\n`);
      return e.code === 'ERR_CLI_USAGE' ? 2 : 1;
    }
    if (e instanceof RangeError || e instanceof TypeError) {
      process.stderr.write(`backchannel: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
