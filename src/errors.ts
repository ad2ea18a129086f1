/**
 * One error base for the whole project. Every error carries a stable `code` that callers match
 * on; messages are prefixed by their module (`sphinx: ...`) and never carry keys, addresses,
 * message identifiers or payload bytes.
 */

/** Every stable error code, grouped by module. */
export type ErrorCode =
  // crypto
  | 'ERR_CRYPTO_BAD_POINT'
  | 'ERR_CRYPTO_LOW_ORDER'
  // aez
  | 'ERR_AEZ_AUTH'
  // sphinx
  | 'ERR_SPHINX_GEOMETRY'
  | 'ERR_SPHINX_LENGTH'
  | 'ERR_SPHINX_VERSION'
  | 'ERR_SPHINX_MAC'
  | 'ERR_SPHINX_POINT'
  | 'ERR_SPHINX_COMMAND'
  | 'ERR_SPHINX_TAG'
  | 'ERR_SPHINX_PATH'
  // cli
  | 'ERR_CLI_USAGE';

/** The base of every error this project throws on purpose. */
export class BackchannelError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackchannelError';
    this.code = code;
  }
}

/** True when `err` is a BackchannelError, optionally with the given code. */
export function isBackchannelError(err: unknown, code?: ErrorCode): err is BackchannelError {
  return err instanceof BackchannelError && (code === undefined || err.code === code);
}
