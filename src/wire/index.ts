/** Wire commands: fixed-length, strictly decoded commands carried inside a link. Portable: no `node:` imports. */
export { WireCodec, MAX_COMMAND_LENGTH, WIRE_VERSION, WIRE_HEADER_LENGTH, MESSAGE_BODY_OVERHEAD, DOCUMENT_BODY_OVERHEAD, MAX_DOCUMENT_CHUNKS, WireCommandType, DisconnectReason, MAILBOX_ID_LENGTH, MAX_EXTRA_MAILBOXES, MailboxAction, MailboxResult } from './commands.js';
export type { WireCommand, WireCommandKind, WireCodecOptions, DisconnectReasonCode, MailboxActionName, MailboxResultName } from './commands.js';
