/** Small helpers for the CLI: typed usage errors and strict option parsing. */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { BackchannelError } from '../errors.js';
import { fromHex } from '../util/bytes.js';

export function usageError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLI_USAGE', message);
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with strict options, no positionals, and usage errors instead of Node's own. */
export function parseOptions(argv: string[], options: Options): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
    return values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw usageError(e instanceof Error ? e.message.split('\n')[0]! : String(e));
  }
}

export function requireString(values: Record<string, string | boolean | undefined>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw usageError(`--${name} is required`);
  return v;
}

export function requireInt(values: Record<string, string | boolean | undefined>, name: string, min: number, max: number): number {
  const s = requireString(values, name);
  if (!/^\d+$/.test(s)) throw usageError(`--${name} must be a whole number, got "${s.slice(0, 20)}"`);
  const n = Number(s);
  if (n < min || n > max) throw usageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Parses a hex option, naming the option (never echoing its value, which may be a key) on error. */
export function requireHex(values: Record<string, string | boolean | undefined>, name: string, length?: number): Uint8Array {
  const s = requireString(values, name).trim();
  let bytes: Uint8Array;
  try {
    bytes = fromHex(s);
  } catch {
    throw usageError(`--${name} must be hex (an even number of 0-9a-f digits)`);
  }
  if (length !== undefined && bytes.length !== length) throw usageError(`--${name} must be ${length} bytes (${2 * length} hex digits), got ${bytes.length}`);
  return bytes;
}

/** Resolves with the signal when the process is asked to stop (SIGINT or SIGTERM), once. */
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
