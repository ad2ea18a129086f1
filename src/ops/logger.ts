/**
 * The logger interface, apart from its Node implementations (log.ts), so that portable code (the
 * client engine in a browser) can take a logger. Fields are for counts, epochs, durations, error
 * codes and operator-chosen node names only: never keys, addresses, message ids or payloads.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, string | number | boolean | null>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry `component` (e.g. `mix`, `authority`). */
  child(component: string): Logger;
}
