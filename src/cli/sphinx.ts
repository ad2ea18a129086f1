/**
 * `backchannel sphinx ...`: the packet oracle for operators and interop debugging, in the manner
 * of Katzenpost's sphinx tool. Each command prints one JSON line.
 */
import { nodeBackend } from '../crypto/node.js';
import { MAX_FORWARD_PAYLOAD_LENGTH, MAX_HOPS, X25519_PRIVATE_KEY_LENGTH } from '../sphinx/constants.js';
import { geometryFromForwardPayload, geometryFromUserPayload, Sphinx } from '../sphinx/index.js';
import { toHex, wipe } from '../util/bytes.js';
import { parseOptions, requireHex, requireInt, usageError } from './args.js';

export const SPHINX_HELP = `Usage: backchannel sphinx <command> [options]

Inspect Sphinx packets (Katzenpost X25519 Sphinx format). Each command prints one JSON line.

Commands:
  unwrap                 unwrap one hop of a packet with a mix private key
  decrypt-surb-payload   decrypt the payload of a reply that came through a SURB
  geometry               print every size derived from a geometry

Geometry options (all commands):
  --hops N               number of hops the header has room for (1-${MAX_HOPS})
  --forward-payload L    forward payload length in bytes (the payload after the 32-byte tag)

unwrap:
  --private-key HEX      the hop's X25519 private key (32 bytes)
  --packet HEX           the packet, exactly the geometry's packet length
  prints {"kind":"forward","next_hop":HEX,"delay_ms":N,"replay_tag":HEX,"packet":HEX}
      or {"kind":"final","recipient":HEX,"surb_id":HEX|null,"replay_tag":HEX,"payload":HEX}
  (for a SURB reply the final payload is still encrypted: pass it to decrypt-surb-payload)

decrypt-surb-payload:
  --surb-keys HEX        the keys kept when the SURB was made
  --payload HEX          the final hop's payload
  prints {"payload":HEX}

geometry:
  --hops N and either --forward-payload L, or --user-payload L [--with-surb]

Example:
  backchannel sphinx unwrap --hops 5 --forward-payload 103 --private-key 98..21 --packet 0000..
`;

const geometryOptions = {
  hops: { type: 'string' },
  'forward-payload': { type: 'string' },
} as const;

function geometryFrom(values: Record<string, string | boolean | undefined>) {
  return geometryFromForwardPayload(requireInt(values, 'hops', 1, MAX_HOPS), requireInt(values, 'forward-payload', 0, MAX_FORWARD_PAYLOAD_LENGTH));
}

/** Runs a sphinx subcommand; returns the JSON line to print. */
export function runSphinx(argv: string[]): string {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return SPHINX_HELP;
    case 'unwrap': {
      const v = parseOptions(rest, { ...geometryOptions, 'private-key': { type: 'string' }, packet: { type: 'string' } });
      if (v["help"]) return SPHINX_HELP;
      const sphinx = new Sphinx(geometryFrom(v), nodeBackend);
      const key = requireHex(v, 'private-key', X25519_PRIVATE_KEY_LENGTH);
      const packet = requireHex(v, 'packet');
      try {
        const r = sphinx.unwrap(key, packet);
        switch (r.kind) {
          case 'forward':
            return JSON.stringify({ kind: 'forward', next_hop: toHex(r.nextHop), delay_ms: r.delayMs, replay_tag: toHex(r.replayTag), packet: toHex(r.packet) });
          case 'final':
            return JSON.stringify({
              kind: 'final',
              recipient: toHex(r.recipient),
              surb_id: r.surbId === null ? null : toHex(r.surbId),
              replay_tag: toHex(r.replayTag),
              payload: toHex(r.payload),
            });
        }
      } finally {
        wipe(key);
      }
      break;
    }
    case 'decrypt-surb-payload': {
      const v = parseOptions(rest, { ...geometryOptions, 'surb-keys': { type: 'string' }, payload: { type: 'string' } });
      if (v["help"]) return SPHINX_HELP;
      const sphinx = new Sphinx(geometryFrom(v), nodeBackend);
      const keys = requireHex(v, 'surb-keys');
      try {
        return JSON.stringify({ payload: toHex(sphinx.decryptSurbPayload(requireHex(v, 'payload'), keys)) });
      } finally {
        wipe(keys);
      }
    }
    case 'geometry': {
      const v = parseOptions(rest, { ...geometryOptions, 'user-payload': { type: 'string' }, 'with-surb': { type: 'boolean' } });
      if (v["help"]) return SPHINX_HELP;
      const g =
        v['user-payload'] !== undefined
          ? geometryFromUserPayload(requireInt(v, 'hops', 1, MAX_HOPS), requireInt(v, 'user-payload', 0, MAX_FORWARD_PAYLOAD_LENGTH), v['with-surb'] === true)
          : geometryFrom(v);
      return JSON.stringify(g);
    }
  }
  throw usageError(`unknown sphinx command "${command}" (see backchannel sphinx --help)`);
}
