/**
 * Structured logs: one JSON object per line, `{"ts", "level", "component", "msg", ...fields}`.
 * Fields are for counts, epochs, durations, error codes and operator-chosen node names only:
 * never keys, addresses, message ids or payloads (DESIGN.md).
 */
import type { LogFields, LogLevel, Logger } from './logger.js';

export type { LogFields, LogLevel, Logger } from './logger.js';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface JsonLoggerInit {
  /** Where lines go (default: process.stderr). */
  write?: (line: string) => void;
  level?: LogLevel;
  component?: string;
  now?: () => number;
}

/** A logger writing JSON lines. */
export function jsonLogger(init: JsonLoggerInit = {}): Logger {
  const write = init.write ?? ((line: string) => process.stderr.write(line));
  const min = ORDER[init.level ?? 'info'];
  const now = init.now ?? (() => Date.now());
  const make = (component: string): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
      if (ORDER[level] < min) return;
      write(`${JSON.stringify({ ts: new Date(now()).toISOString(), level, component, msg, ...fields })}\n`);
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (c) => make(component ? `${component}.${c}` : c),
    };
  };
  return make(init.component ?? '');
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/** A logger that keeps lines in memory (tests that assert on logs). */
export function memoryLogger(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = jsonLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  return Object.assign(logger, { lines });
}
