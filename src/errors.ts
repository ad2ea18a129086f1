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
  // noise: protocol name, call order, keys, authentication, sizes, nonce exhaustion
  | 'ERR_NOISE_PROTOCOL'
  | 'ERR_NOISE_STATE'
  | 'ERR_NOISE_KEY'
  | 'ERR_NOISE_DECRYPT'
  | 'ERR_NOISE_LENGTH'
  | 'ERR_NOISE_NONCE'
  // link: framing, handshake, peer policy, timeouts, buffers, closed links, the byte transport under it
  | 'ERR_LINK_CONNECT'
  | 'ERR_LINK_FRAME'
  | 'ERR_LINK_HANDSHAKE'
  | 'ERR_LINK_REJECTED'
  | 'ERR_LINK_TIMEOUT'
  | 'ERR_LINK_BACKPRESSURE'
  | 'ERR_LINK_CLOSED'
  | 'ERR_LINK_PROTOCOL'
  | 'ERR_LINK_TRANSPORT'
  // gateway admission (src/server/admission.ts): refusals a client explains to its user
  | 'ERR_ADMISSION_WORK'
  | 'ERR_ADMISSION_TOKEN_REQUIRED'
  | 'ERR_ADMISSION_TOKEN_INVALID'
  | 'ERR_ADMISSION_FULL'
  // wire commands
  | 'ERR_WIRE_VERSION'
  | 'ERR_WIRE_LENGTH'
  | 'ERR_WIRE_COMMAND'
  // pki: descriptors, votes, consensus documents, fetching them
  | 'ERR_PKI_ENCODING'
  | 'ERR_PKI_SIGNATURE'
  | 'ERR_PKI_THRESHOLD'
  | 'ERR_PKI_UNAUTHORIZED'
  | 'ERR_PKI_EPOCH'
  | 'ERR_PKI_FETCH'
  // mixnet payloads (flags, SURB, user bytes inside a Sphinx payload)
  | 'ERR_PAYLOAD'
  // gateway mailboxes
  | 'ERR_MAILBOX_FULL'
  | 'ERR_MAILBOX_STORE'
  // servers: configuration files, key files, start-up, an address that cannot be bound
  | 'ERR_CONFIG'
  | 'ERR_KEYS'
  | 'ERR_SERVER'
  | 'ERR_SERVER_LISTEN'
  // a local network (`backchannel up`): its data folder or its ports already in use
  | 'ERR_LOCAL_IN_USE'
  // client: addresses, frames and messages, the directory from its gateway, its state, the daemon's local socket
  | 'ERR_CLIENT_ADDRESS'
  | 'ERR_CLIENT_FRAME'
  | 'ERR_CLIENT_DIRECTORY'
  | 'ERR_CLIENT_MESSAGE'
  | 'ERR_CLIENT_NO_SURBS'
  | 'ERR_CLIENT_STATE'
  | 'ERR_CLIENT_NOT_RUNNING'
  | 'ERR_CLIENT_IPC'
  // client: an id prefix that names no inbox message, or more than one; a file not saved
  | 'ERR_CLIENT_NO_MESSAGE'
  | 'ERR_CLIENT_AMBIGUOUS_ID'
  | 'ERR_CLIENT_SAVE'
  // client: extra mailboxes (an unknown or revoked one, one too many, one the gateway refused)
  | 'ERR_CLIENT_MAILBOX'
  | 'ERR_CLIENT_MAILBOX_LIMIT'
  // simulator: scenario files, runs
  | 'ERR_SIM_SCENARIO'
  | 'ERR_SIM_STATE'
  // the wire observer: a recording relay that cannot listen or reach its target, a bad trace
  | 'ERR_OBSERVE_RELAY'
  | 'ERR_OBSERVE_TRACE'
  // messaging: encodings (state, bundles, messages), keys, one-time prekeys, authentication,
  // duplicates, messages past the skip limit, sizes
  | 'ERR_MSG_ENCODING'
  | 'ERR_MSG_KEY'
  | 'ERR_MSG_PREKEY'
  | 'ERR_MSG_DECRYPT'
  | 'ERR_MSG_REPLAY'
  | 'ERR_MSG_SKIP_LIMIT'
  | 'ERR_MSG_TOO_LONG'
  // contacts by code: a malformed code, a PAKE message that does not parse or a bad point, the
  // code that did not match, an expired, burned or unknown invite, a rendezvous request or answer
  | 'ERR_INVITE_CODE'
  | 'ERR_INVITE_PAKE'
  | 'ERR_INVITE_MISMATCH'
  | 'ERR_INVITE_EXPIRED'
  | 'ERR_INVITE_STATE'
  | 'ERR_RENDEZVOUS'
  // messenger: contacts (unknown, name taken, bad name), attachments (too long, failed check)
  | 'ERR_MSG_CONTACT'
  | 'ERR_MSG_ATTACHMENT'
  // introductions: an unknown id, one answered already or expired, two names that are one, a blocked party
  | 'ERR_MSG_INTRODUCTION'
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
