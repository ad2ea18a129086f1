/**
 * Benchmark entry point: `npm run bench -- <name> [--json]`. Prints figures and ratios measured in
 * the same run; nothing here asserts a time.
 */
import { benchAez } from './aez.js';
import { benchChaos } from './chaos.js';
import { benchAdmission } from './admission.js';
import { benchOverload } from './overload.js';
import { benchClient } from './client.js';
import { benchClocks } from './clocks.js';
import { benchCrypto } from './crypto.js';
import { benchFetch } from './fetch.js';
import { benchHiddenTimers } from './hidden-timers.js';
import { benchLink } from './link.js';
import { benchMessaging } from './messaging.js';
import { benchMix } from './mix.js';
import { benchObserver } from './observer.js';
import { benchSim } from './sim.js';
import { benchSphinx } from './sphinx.js';
import { benchWebScreens } from './web-screens.js';
import { benchWeb } from './web.js';
import { printTable } from './_timing.js';

interface Bench {
  readonly about: string;
  readonly run: (argv: string[]) => Record<string, number | string> | Promise<Record<string, number | string>>;
  /** Prints its own report (without --json) instead of the table of figures. */
  readonly printsItself?: boolean;
}

/** Options that take a value: the value is not a benchmark's name. */
const OPTIONS_WITH_VALUE = ['--out', '--minutes', '--trace', '--from-trace', '--seed', '--concurrent', '--faults', '--seconds'];

const BENCHES: Record<string, Bench> = {
  sphinx: { about: 'Sphinx create/unwrap and AEZ for the default geometry, against one X25519', run: () => ({ ...benchSphinx() }) },
  admission: { about: 'Gateway admission: proof-of-work evaluations/s, seconds per identity at the default cost (and a phone estimate), CPU-seconds per 1,000 identities', run: benchAdmission },
  aez: { about: 'AEZ (the Sphinx payload SPRP) against the npm aez package', run: () => ({ ...benchAez() }) },
  crypto: { about: 'X25519 candidates for the Node backend and the other primitives', run: benchCrypto },
  mix: { about: 'One mix node over real links: packets/s at zero delay, added latency at half load', run: benchMix },
  client: { about: 'Client: packets built per second, CPU per packet at the default rate, end-to-end latency on a local network', run: benchClient },
  clocks: { about: 'Client traffic clocks on the system clock: achieved rates, KS of the gaps, short gaps; old against new', run: benchClocks },
  sim: { about: 'Simulator: simulated events per second, 2 000 population clients through 3 layers of 10 mixes', run: benchSim },
  fetch: { about: 'Gateway: fetch answer time (p50/p90/p99) by what the mailbox does, the old synchronous path against the writer thread', run: benchFetch },
  messaging: { about: 'Messaging sessions: set-up per side, a message with and without a DH step, a post-quantum step, against one X25519 (both backends); latency between two named contacts on a local network', run: benchMessaging },
  link: { about: 'Encrypted link (Noise over TCP) against plain TCP, 3 kB frames over loopback', run: async () => ({ ...(await benchLink()) }) },
  observer: {
    about: 'A global passive observer: relays on every link of a local network, 4 clients, attacks [--minutes M]',
    run: (argv) => benchObserver(argv),
    printsItself: true,
  },
  'hidden-timers': {
    about: "What Chromium does to a hidden tab's timers, in the page and in a dedicated Worker: another tab in front and a minimised window, headful under Xvfb [--minutes M]",
    run: (argv) => benchHiddenTimers(argv),
    printsItself: true,
  },
  'web-screens': {
    about: 'Regenerates the screenshots of the browser client in docs/screens (360 px and desktop) on a local network [--out DIR]',
    run: (argv) => benchWebScreens(argv),
  },
  overload: {
    about: 'Abuse: an honest pair\'s delivery rate and latency and the servers\' RSS before, during and after silent sockets (10× the handshake slots), fresh keys without work and a fetch flood against a gateway and a mix [--seconds N]',
    run: (argv) => benchOverload(argv),
  },
  web: { about: 'The browser client in Chromium: bundle size (raw, gzip), page load to connected on a local network, CPU per packet in the page (@noble against WebCrypto)', run: benchWeb },
  chaos: {
    about: 'Faults across hosts: every server in its own network namespace, kills, pauses, partitions and loss while clients exchange numbered messages [--minutes N] [--seed S] (Linux, root)',
    run: (argv) => benchChaos(argv),
    printsItself: true,
  },
};

function usage(): string {
  return `Usage: npm run bench -- <name> [--json]\n\n${Object.entries(BENCHES)
    .map(([k, v]) => `  ${k.padEnd(9)} ${v.about}`)
    .join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const names = argv.filter((a, k) => !a.startsWith('-') && !OPTIONS_WITH_VALUE.includes(argv[k - 1] ?? ''));
  if (names.length === 0 || argv.includes('--help')) {
    process.stdout.write(usage());
    return names.length === 0 && !argv.includes('--help') ? 2 : 0;
  }
  for (const name of names) {
    const b = BENCHES[name];
    if (!b) {
      process.stderr.write(`bench: unknown benchmark "${name}"\n\n${usage()}`);
      return 2;
    }
    if (!json) process.stderr.write(`running ${name}...\n`);
    const result = await b.run(argv);
    if (json) console.log(JSON.stringify(result));
    else if (b.printsItself !== true) printTable(`${name}:`, Object.entries(result));
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // A bad option or a failed run: one line, not a stack.
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = e instanceof RangeError ? 2 : 1;
  },
);
