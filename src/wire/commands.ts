/**
 * Wire commands: the small messages nodes and clients exchange inside an encrypted link, one
 * command per link message. Every command a codec encodes has the same length (`commandLength`):
 * a two-byte header, the body, then zero padding, so an observer of the link cannot tell a
 * `send_packet` from a `noop`. Decoding is strict: exactly one byte string decodes to a given
 * command, and anything else is a BackchannelError. Portable: no `node:` imports.
 *
 *     [version u8 = 1][type u8][body ...][zero padding to commandLength]   (big-endian integers)
 */
import { BackchannelError } from '../errors.js';
import { isZero } from '../util/bytes.js';
import { SURB_ID_LENGTH } from '../sphinx/constants.js';

/** The only wire version this codec speaks. */
export const WIRE_VERSION = 1;

/** Bytes before every body: version and type. */
export const WIRE_HEADER_LENGTH = 2;

/** Bytes of a `message` body before its payload: sequence, queue hint, flags, SURB id, payload length. */
export const MESSAGE_BODY_OVERHEAD = 4 + 4 + 1 + SURB_ID_LENGTH + 2;

/**
 * Bytes of a `document` body before its chunk: epoch (4), status (1), chunk index (2), chunk
 * count (2), chunk length (2).
 */
export const DOCUMENT_BODY_OVERHEAD = 4 + 1 + 2 + 2 + 2;

/**
 * Most chunks one directory document may be cut into. A signed document is at most 1 MiB
 * (MAX_SIGNED_DOCUMENT_LENGTH in pki/document.ts): 339 chunks at the default geometry (3,098-byte
 * chunks), and 1024 still carries it in chunks down to 1,024 bytes. A receiver never buffers more
 * than this many chunks of one document.
 */
export const MAX_DOCUMENT_CHUNKS = 1024;

/** `document` status byte: a chunk follows, or the gateway has no document for that epoch. */
const DOCUMENT_CHUNK = 0;
const DOCUMENT_UNAVAILABLE = 1;

/** The largest value a u16 length field holds. */
const MAX_UINT16 = 0xffff;
const MAX_UINT32 = 0xffffffff;

/** The type byte of each command. */
export const WireCommandType = {
  noop: 0,
  disconnect: 1,
  send_packet: 2,
  retrieve_message: 3,
  message: 4,
  ack: 5,
  get_document: 6,
  document: 7,
  mailbox_request: 8,
  mailbox_reply: 9,
} as const;

/** Length of an extra mailbox's id: an X25519 public key, the Sphinx recipient id of its mail. */
export const MAILBOX_ID_LENGTH = 32;

/**
 * Extra mailboxes one client may hold at its gateway at once (one per contact); a registration
 * beyond it is answered `limit`. Gateways and clients both use this number.
 */
export const MAX_EXTRA_MAILBOXES = 1_000;

/** Bytes of a `mailbox_request` body: action (1), mailbox id (32). */
export const MAILBOX_REQUEST_BODY_LENGTH = 1 + MAILBOX_ID_LENGTH;
/** Bytes of a `mailbox_reply` body: action (1), result (1), mailbox id (32). */
export const MAILBOX_REPLY_BODY_LENGTH = 2 + MAILBOX_ID_LENGTH;

/** What a `mailbox_request` asks for: the byte each action is on the wire. */
export const MailboxAction = { register: 0, revoke: 1 } as const;
export type MailboxActionName = keyof typeof MailboxAction;

/**
 * A gateway's answer to a `mailbox_request`: the byte each result is on the wire.
 * - ok: done and durable (registered, or revoked);
 * - pending: accepted, not yet on the gateway's disk (or the gateway is busy): ask again;
 * - limit: the client holds as many extra mailboxes as the gateway allows;
 * - taken: the id is another client's (its main mailbox or one of its extra ones);
 * - revoked: the id was revoked and is never registered again;
 * - invalid: the id cannot be a mailbox (all zero, or the client's own main or own mailbox, src/pki/intake.ts).
 */
export const MailboxResult = { ok: 0, pending: 1, limit: 2, taken: 3, revoked: 4, invalid: 5 } as const;
export type MailboxResultName = keyof typeof MailboxResult;

const ACTION_NAMES = Object.keys(MailboxAction) as MailboxActionName[];
const RESULT_NAMES = Object.keys(MailboxResult) as MailboxResultName[];

/** Why a peer closes the link; the only values a `disconnect` may carry. */
export const DisconnectReason = {
  normal: 0,
  shutdown: 1,
  protocolError: 2,
  overloaded: 3,
} as const;

export type DisconnectReasonCode = (typeof DisconnectReason)[keyof typeof DisconnectReason];

const MAX_DISCONNECT_REASON = DisconnectReason.overloaded;

/** `message` flag bits; every other bit is reserved and must be zero. */
const FLAG_EMPTY = 0x01;
const FLAG_HAS_SURB_ID = 0x02;
/** The entry came to one of the client's extra mailboxes: its id follows the fixed fields, before the payload. */
const FLAG_HAS_MAILBOX = 0x04;
const FLAGS_KNOWN = FLAG_EMPTY | FLAG_HAS_SURB_ID | FLAG_HAS_MAILBOX;

/** One wire command. */
export type WireCommand =
  /** Keeps a link busy; cover traffic. */
  | { readonly kind: 'noop' }
  /** The sender is closing the link; `reason` is one of DisconnectReason. */
  | { readonly kind: 'disconnect'; readonly reason: number }
  /** A Sphinx packet for the receiving node, exactly `packetLength` bytes. */
  | { readonly kind: 'send_packet'; readonly packet: Uint8Array }
  /** A client asks its gateway for the mailbox message `sequence`. */
  | { readonly kind: 'retrieve_message'; readonly sequence: number }
  /**
   * A gateway's answer to `retrieve_message`. `queueHint` counts the messages still waiting.
   * An `empty` (dummy) message has no SURB id, no mailbox and an empty payload. `mailbox` is the
   * extra mailbox the entry came to (null or absent: the client's main mailbox); an entry that
   * carries one has room for `maxTaggedPayload` payload bytes.
   */
  | {
      readonly kind: 'message';
      readonly sequence: number;
      readonly queueHint: number;
      readonly empty: boolean;
      readonly surbId: Uint8Array | null;
      readonly payload: Uint8Array;
      readonly mailbox?: Uint8Array | null;
    }
  /** A client confirms it holds message `sequence`; the gateway may delete it. */
  | { readonly kind: 'ack'; readonly sequence: number }
  /** A client asks its gateway for chunk `chunk` of the signed directory document of `epoch`. */
  | { readonly kind: 'get_document'; readonly epoch: number; readonly chunk: number }
  /**
   * A gateway's answer to `get_document`. When `available`, `data` is chunk `chunk` of `total`
   * (1..MAX_DOCUMENT_CHUNKS) of the signed document, 1..documentChunkLength bytes. When not (the
   * gateway holds no document for `epoch`), `chunk` echoes the request, `total` is 0, `data` empty.
   */
  | {
      readonly kind: 'document';
      readonly epoch: number;
      readonly available: boolean;
      readonly chunk: number;
      readonly total: number;
      readonly data: Uint8Array;
    }
  /**
   * A client asks its gateway to register one of its extra mailboxes, or to revoke it. The link's
   * static key names the client that owns it. Sent in place of a `retrieve_message`.
   */
  | { readonly kind: 'mailbox_request'; readonly action: MailboxActionName; readonly mailbox: Uint8Array }
  /** A gateway's answer to `mailbox_request`: the action and mailbox it answers, and the result. */
  | { readonly kind: 'mailbox_reply'; readonly action: MailboxActionName; readonly mailbox: Uint8Array; readonly result: MailboxResultName };

export type WireCommandKind = WireCommand['kind'];

export interface WireCodecOptions {
  /** Length of every Sphinx packet a `send_packet` carries. */
  packetLength: number;
  /** Longest `message` payload; defaults to `packetLength`. */
  maxPayload?: number;
}

function lengthError(message: string): BackchannelError {
  return new BackchannelError('ERR_WIRE_LENGTH', `wire: ${message}`);
}

function commandError(message: string): BackchannelError {
  return new BackchannelError('ERR_WIRE_COMMAND', `wire: ${message}`);
}

function isUint(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
}

/** Throws ERR_WIRE_COMMAND unless `value` is an integer in [0, max]. The value is never echoed. */
function checkUint(name: string, value: unknown, max: number): asserts value is number {
  if (!isUint(value, max)) throw commandError(`${name} must be an integer in [0, ${max}]`);
}

/** Throws ERR_WIRE_COMMAND unless `value` is bytes, then ERR_WIRE_LENGTH unless it has an allowed length. */
function checkBytes(name: string, value: unknown, minLength: number, maxLength: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw commandError(`${name} must be a Uint8Array`);
  if (value.length < minLength || value.length > maxLength) {
    const expected = minLength === maxLength ? `${minLength}` : `at most ${maxLength}`;
    throw lengthError(`${name} must be ${expected} bytes, got ${value.length}`);
  }
}

function writeU16(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 8;
  out[offset + 1] = value & 0xff;
}

function writeU32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

/** True when every byte of `bytes` from `start` on is zero (isZero of a subarray, without making one). */
function zeroFrom(bytes: Uint8Array, start: number): boolean {
  let acc = 0;
  for (let i = start; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}

function readU16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! << 8) | bytes[offset + 1]!;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

/**
 * The largest command a link carries in one message: a Noise transport message (65535 bytes)
 * less its 16-byte tag and the link's one-byte frame kind (docs/link.md).
 */
export const MAX_COMMAND_LENGTH = 65535 - 16 - 1;

/**
 * Encodes and decodes wire commands for one link geometry. Both ends of a link must use the same
 * `packetLength` and `maxPayload`, or every command fails to decode with ERR_WIRE_LENGTH.
 */
export class WireCodec {
  /** Length of every encoded command: the header plus the largest body, padding included. */
  readonly commandLength: number;
  readonly packetLength: number;
  readonly maxPayload: number;
  /** Most document bytes one `document` command carries: what a command holds after its header and DOCUMENT_BODY_OVERHEAD. */
  readonly documentChunkLength: number;
  /**
   * Most payload bytes of a `message` that carries a mailbox id: the mailbox takes 32 bytes of
   * the command (the command length stays the same). A gateway's entries are Sphinx payloads,
   * shorter than a packet by the Sphinx header (far more than 32 bytes), so they always fit.
   * Below 0 (a codec too small for mailbox ids) no mailbox command can be encoded.
   */
  readonly maxTaggedPayload: number;

  /**
   * @throws {BackchannelError} ERR_WIRE_LENGTH unless `packetLength` and `maxPayload` are positive
   *   integers, `maxPayload` fits the u16 length field and every command fits in one link
   *   message (MAX_COMMAND_LENGTH).
   */
  constructor(opts: WireCodecOptions) {
    if (typeof opts !== 'object' || opts === null) throw lengthError('codec options must be an object');
    const packetLength: unknown = opts.packetLength;
    const maxPayload: unknown = opts.maxPayload === undefined ? packetLength : opts.maxPayload;
    if (!isUint(packetLength, MAX_UINT16 - WIRE_HEADER_LENGTH) || packetLength === 0) {
      throw lengthError(`packetLength must be an integer in [1, ${MAX_UINT16 - WIRE_HEADER_LENGTH}]`);
    }
    if (!isUint(maxPayload, MAX_UINT16) || maxPayload === 0) {
      throw lengthError(`maxPayload must be an integer in [1, ${MAX_UINT16}]`);
    }
    this.packetLength = packetLength;
    this.maxPayload = maxPayload;
    const commandLength = WIRE_HEADER_LENGTH + Math.max(packetLength, MESSAGE_BODY_OVERHEAD + maxPayload);
    if (commandLength > MAX_COMMAND_LENGTH) {
      throw lengthError(`commands of ${commandLength} bytes would not fit in one link message (at most ${MAX_COMMAND_LENGTH})`);
    }
    this.commandLength = commandLength;
    this.documentChunkLength = commandLength - WIRE_HEADER_LENGTH - DOCUMENT_BODY_OVERHEAD;
    this.maxTaggedPayload = Math.min(maxPayload, commandLength - WIRE_HEADER_LENGTH - MESSAGE_BODY_OVERHEAD - MAILBOX_ID_LENGTH);
  }

  /** Whether this codec's commands have room for the mailbox commands (every real geometry has). */
  get carriesMailboxes(): boolean {
    return this.commandLength - WIRE_HEADER_LENGTH >= MAILBOX_REPLY_BODY_LENGTH && this.maxTaggedPayload >= 0;
  }

  /**
   * Encodes `cmd` into a fresh array of exactly `commandLength` bytes.
   * @throws {BackchannelError} ERR_WIRE_LENGTH for a packet that is not `packetLength` bytes, a
   *   payload longer than `maxPayload` or a SURB id that is not 16 bytes; ERR_WIRE_COMMAND for an
   *   unknown kind, a field of the wrong type, an integer out of range, an unknown disconnect
   *   reason, an empty message with a payload or SURB id, or an unavailable document with a chunk
   *   count; ERR_WIRE_LENGTH also for document data of 0 or more than `documentChunkLength` bytes
   *   (any bytes when unavailable); for a mailbox command, ERR_WIRE_COMMAND for an unknown action
   *   or result, ERR_WIRE_LENGTH for a mailbox id that is not 32 bytes or a codec without room
   *   for one (`carriesMailboxes`).
   */
  encode(cmd: WireCommand): Uint8Array {
    if (typeof cmd !== 'object' || cmd === null) throw commandError('a command must be an object');
    const out = new Uint8Array(this.commandLength);
    out[0] = WIRE_VERSION;
    const body = WIRE_HEADER_LENGTH;
    switch (cmd.kind) {
      case 'noop':
        out[1] = WireCommandType.noop;
        break;
      case 'disconnect':
        checkUint('disconnect.reason', cmd.reason, MAX_DISCONNECT_REASON);
        out[1] = WireCommandType.disconnect;
        out[body] = cmd.reason;
        break;
      case 'send_packet':
        checkBytes('send_packet.packet', cmd.packet, this.packetLength, this.packetLength);
        out[1] = WireCommandType.send_packet;
        out.set(cmd.packet, body);
        break;
      case 'retrieve_message':
        checkUint('retrieve_message.sequence', cmd.sequence, MAX_UINT32);
        out[1] = WireCommandType.retrieve_message;
        writeU32(out, body, cmd.sequence);
        break;
      case 'message': {
        checkUint('message.sequence', cmd.sequence, MAX_UINT32);
        checkUint('message.queueHint', cmd.queueHint, MAX_UINT32);
        if (typeof cmd.empty !== 'boolean') throw commandError('message.empty must be a boolean');
        if (cmd.surbId !== null) checkBytes('message.surbId', cmd.surbId, SURB_ID_LENGTH, SURB_ID_LENGTH);
        const mailbox = cmd.mailbox ?? null;
        if (mailbox !== null) {
          if (!this.carriesMailboxes) throw lengthError('this codec has no room for a mailbox id');
          checkBytes('message.mailbox', mailbox, MAILBOX_ID_LENGTH, MAILBOX_ID_LENGTH);
        }
        checkBytes('message.payload', cmd.payload, 0, mailbox === null ? this.maxPayload : this.maxTaggedPayload);
        if (cmd.empty && (cmd.surbId !== null || mailbox !== null || cmd.payload.length !== 0)) {
          throw commandError('an empty message carries neither a SURB id, a mailbox nor a payload');
        }
        out[1] = WireCommandType.message;
        writeU32(out, body, cmd.sequence);
        writeU32(out, body + 4, cmd.queueHint);
        out[body + 8] = (cmd.empty ? FLAG_EMPTY : 0) | (cmd.surbId !== null ? FLAG_HAS_SURB_ID : 0) | (mailbox !== null ? FLAG_HAS_MAILBOX : 0);
        if (cmd.surbId !== null) out.set(cmd.surbId, body + 9);
        writeU16(out, body + 9 + SURB_ID_LENGTH, cmd.payload.length);
        let at = body + MESSAGE_BODY_OVERHEAD;
        if (mailbox !== null) {
          out.set(mailbox, at);
          at += MAILBOX_ID_LENGTH;
        }
        out.set(cmd.payload, at);
        break;
      }
      case 'ack':
        checkUint('ack.sequence', cmd.sequence, MAX_UINT32);
        out[1] = WireCommandType.ack;
        writeU32(out, body, cmd.sequence);
        break;
      case 'get_document':
        checkUint('get_document.epoch', cmd.epoch, MAX_UINT32);
        checkUint('get_document.chunk', cmd.chunk, MAX_DOCUMENT_CHUNKS - 1);
        out[1] = WireCommandType.get_document;
        writeU32(out, body, cmd.epoch);
        writeU16(out, body + 4, cmd.chunk);
        break;
      case 'document': {
        checkUint('document.epoch', cmd.epoch, MAX_UINT32);
        if (typeof cmd.available !== 'boolean') throw commandError('document.available must be a boolean');
        if (cmd.available) {
          checkUint('document.total', cmd.total, MAX_DOCUMENT_CHUNKS);
          if (cmd.total === 0) throw commandError('document.total must be at least 1 for an available document');
          checkUint('document.chunk', cmd.chunk, cmd.total - 1);
          checkBytes('document.data', cmd.data, 1, this.documentChunkLength);
        } else {
          checkUint('document.chunk', cmd.chunk, MAX_DOCUMENT_CHUNKS - 1);
          if (cmd.total !== 0) throw commandError('document.total must be 0 when no document is available');
          checkBytes('document.data', cmd.data, 0, 0);
        }
        out[1] = WireCommandType.document;
        writeU32(out, body, cmd.epoch);
        out[body + 4] = cmd.available ? DOCUMENT_CHUNK : DOCUMENT_UNAVAILABLE;
        writeU16(out, body + 5, cmd.chunk);
        writeU16(out, body + 7, cmd.total);
        writeU16(out, body + 9, cmd.data.length);
        out.set(cmd.data, body + DOCUMENT_BODY_OVERHEAD);
        break;
      }
      case 'mailbox_request':
      case 'mailbox_reply': {
        if (!this.carriesMailboxes) throw lengthError('this codec has no room for a mailbox command');
        if (!Object.hasOwn(MailboxAction, cmd.action)) throw commandError(`${cmd.kind}.action must be register or revoke`);
        checkBytes(`${cmd.kind}.mailbox`, cmd.mailbox, MAILBOX_ID_LENGTH, MAILBOX_ID_LENGTH);
        out[body] = MailboxAction[cmd.action];
        if (cmd.kind === 'mailbox_request') {
          out[1] = WireCommandType.mailbox_request;
          out.set(cmd.mailbox, body + 1);
        } else {
          if (!Object.hasOwn(MailboxResult, cmd.result)) throw commandError('mailbox_reply.result is not a known result');
          out[1] = WireCommandType.mailbox_reply;
          out[body + 1] = MailboxResult[cmd.result];
          out.set(cmd.mailbox, body + 2);
        }
        break;
      }
      default:
        throw commandError('unknown command kind');
    }
    return out;
  }

  /**
   * Decodes one command. Byte fields of the result are copies, never views into `bytes`.
   * @throws {BackchannelError} ERR_WIRE_LENGTH unless `bytes` is a Uint8Array of `commandLength`
   *   bytes; ERR_WIRE_VERSION for any version but 1; ERR_WIRE_COMMAND for an unknown type, an
   *   unknown disconnect reason, a reserved flag bit, an empty message with a payload or SURB id,
   *   a non-zero SURB id field without its flag, a payload length over `maxPayload` (over
   *   `maxTaggedPayload` with a mailbox id), a document chunk index, count, length or status out
   *   of range, an unknown mailbox action or result, a mailbox id or command in a codec without
   *   room for one, or any non-zero padding byte. Nothing else is ever thrown.
   */
  decode(bytes: Uint8Array): WireCommand {
    return this.#decode(bytes, true);
  }

  /**
   * Decodes one command as `decode` does (the same checks, the same errors), but its byte fields
   * are views into `bytes`: nothing is copied. For a receiver that owns `bytes` (a link hands each
   * message it receives to its reader) and may then forward a `send_packet` whole with
   * `sendPacketFrame`, after changing its packet in place.
   * @throws {BackchannelError} as `decode`.
   */
  decodeView(bytes: Uint8Array): WireCommand {
    return this.#decode(bytes, false);
  }

  /**
   * A new `send_packet` command whose packet is all zero, and the view of its packet to write the
   * packet into: whoever produces a packet for a link can build it where the command has it, and
   * `sendPacketFrame` then returns the command without a copy. `allocate` gives the command's
   * memory (`commandLength` zero bytes, nobody else's); a fresh array by default.
   * @throws {BackchannelError} ERR_WIRE_LENGTH when `allocate` gives an array of another length.
   */
  newSendPacket(allocate?: (length: number) => Uint8Array): { readonly frame: Uint8Array; readonly packet: Uint8Array } {
    const frame = allocate === undefined ? new Uint8Array(this.commandLength) : allocate(this.commandLength);
    if (!(frame instanceof Uint8Array) || frame.length !== this.commandLength) throw lengthError(`an allocated command must be ${this.commandLength} bytes`);
    frame[0] = WIRE_VERSION;
    frame[1] = WireCommandType.send_packet;
    return { frame, packet: frame.subarray(WIRE_HEADER_LENGTH, WIRE_HEADER_LENGTH + this.packetLength) };
  }

  /**
   * The `send_packet` command that carries `packet`. When `packet` is a view that sits where a
   * whole `send_packet` command has its packet (as `decodeView` and `newSendPacket` give), with
   * that command's header before it and zero padding after it, that command is returned as a view
   * of the same memory: no copy. Otherwise the packet is encoded into a fresh command, as `encode`.
   * The caller must own the memory around `packet` as well as the packet.
   * @throws {BackchannelError} ERR_WIRE_LENGTH for a packet that is not `packetLength` bytes;
   *   ERR_WIRE_COMMAND when it is not a Uint8Array.
   */
  sendPacketFrame(packet: Uint8Array): Uint8Array {
    // Shared memory (an unwrap ring) is never the caller's alone: always copied out of.
    if (packet instanceof Uint8Array && packet.length === this.packetLength && packet.buffer instanceof ArrayBuffer) {
      const start = packet.byteOffset - WIRE_HEADER_LENGTH;
      if (start < 0 || start + this.commandLength > packet.buffer.byteLength) return this.encode({ kind: 'send_packet', packet });
      const frame = new Uint8Array(packet.buffer, start, this.commandLength);
      if (frame[0] === WIRE_VERSION && frame[1] === WireCommandType.send_packet && zeroFrom(frame, WIRE_HEADER_LENGTH + this.packetLength)) return frame;
    }
    return this.encode({ kind: 'send_packet', packet });
  }

  #decode(bytes: Uint8Array, copy: boolean): WireCommand {
    if (!(bytes instanceof Uint8Array)) throw lengthError('a command must be a Uint8Array');
    if (bytes.length !== this.commandLength) {
      throw lengthError(`a command must be ${this.commandLength} bytes, got ${bytes.length}`);
    }
    if (bytes[0] !== WIRE_VERSION) throw new BackchannelError('ERR_WIRE_VERSION', `wire: unsupported version ${bytes[0]!}`);
    const type = bytes[1]!;
    const body = WIRE_HEADER_LENGTH;
    let cmd: WireCommand;
    let end: number; // where the padding starts
    switch (type) {
      case WireCommandType.noop:
        cmd = { kind: 'noop' };
        end = body;
        break;
      case WireCommandType.disconnect: {
        const reason = bytes[body]!;
        if (reason > MAX_DISCONNECT_REASON) throw commandError(`unknown disconnect reason ${reason}`);
        cmd = { kind: 'disconnect', reason };
        end = body + 1;
        break;
      }
      case WireCommandType.send_packet:
        end = body + this.packetLength;
        cmd = { kind: 'send_packet', packet: copy ? bytes.slice(body, end) : bytes.subarray(body, end) };
        break;
      case WireCommandType.retrieve_message:
        cmd = { kind: 'retrieve_message', sequence: readU32(bytes, body) };
        end = body + 4;
        break;
      case WireCommandType.message: {
        const flags = bytes[body + 8]!;
        if ((flags & ~FLAGS_KNOWN) !== 0) throw commandError('reserved message flag bits are set');
        const empty = (flags & FLAG_EMPTY) !== 0;
        const hasSurbId = (flags & FLAG_HAS_SURB_ID) !== 0;
        const surbField = bytes.subarray(body + 9, body + 9 + SURB_ID_LENGTH);
        if (!hasSurbId && !isZero(surbField)) throw commandError('SURB id field is non-zero without its flag');
        const hasMailbox = (flags & FLAG_HAS_MAILBOX) !== 0;
        if (hasMailbox && !this.carriesMailboxes) throw commandError('this codec has no room for a mailbox id');
        const payloadLength = readU16(bytes, body + 9 + SURB_ID_LENGTH);
        const max = hasMailbox ? this.maxTaggedPayload : this.maxPayload;
        if (payloadLength > max) {
          throw commandError(`payload length ${payloadLength} exceeds the maximum ${max}`);
        }
        if (empty && (hasSurbId || hasMailbox || payloadLength !== 0)) {
          throw commandError('an empty message carries neither a SURB id, a mailbox nor a payload');
        }
        let start = body + MESSAGE_BODY_OVERHEAD;
        let mailbox: Uint8Array | null = null;
        if (hasMailbox) {
          mailbox = copy ? bytes.slice(start, start + MAILBOX_ID_LENGTH) : bytes.subarray(start, start + MAILBOX_ID_LENGTH);
          start += MAILBOX_ID_LENGTH;
        }
        end = start + payloadLength;
        cmd = {
          kind: 'message',
          sequence: readU32(bytes, body),
          queueHint: readU32(bytes, body + 4),
          empty,
          surbId: !hasSurbId ? null : copy ? surbField.slice() : surbField,
          payload: copy ? bytes.slice(start, end) : bytes.subarray(start, end),
          // Absent for the main mailbox: a decoded command equals the command that was encoded.
          ...(mailbox === null ? {} : { mailbox }),
        };
        break;
      }
      case WireCommandType.ack:
        cmd = { kind: 'ack', sequence: readU32(bytes, body) };
        end = body + 4;
        break;
      case WireCommandType.get_document: {
        const chunk = readU16(bytes, body + 4);
        if (chunk >= MAX_DOCUMENT_CHUNKS) throw commandError(`document chunk index ${chunk} is not below ${MAX_DOCUMENT_CHUNKS}`);
        cmd = { kind: 'get_document', epoch: readU32(bytes, body), chunk };
        end = body + 6;
        break;
      }
      case WireCommandType.document: {
        const status = bytes[body + 4]!;
        const chunk = readU16(bytes, body + 5);
        const total = readU16(bytes, body + 7);
        const length = readU16(bytes, body + 9);
        if (chunk >= MAX_DOCUMENT_CHUNKS) throw commandError(`document chunk index ${chunk} is not below ${MAX_DOCUMENT_CHUNKS}`);
        if (status === DOCUMENT_CHUNK) {
          if (total === 0 || total > MAX_DOCUMENT_CHUNKS) throw commandError(`document chunk count ${total} is not in [1, ${MAX_DOCUMENT_CHUNKS}]`);
          if (chunk >= total) throw commandError('document chunk index is not below the chunk count');
          if (length === 0 || length > this.documentChunkLength) throw commandError(`document chunk length ${length} is not in [1, ${this.documentChunkLength}]`);
        } else if (status === DOCUMENT_UNAVAILABLE) {
          if (total !== 0 || length !== 0) throw commandError('an unavailable document carries no chunk');
        } else {
          throw commandError(`unknown document status ${status}`);
        }
        const start = body + DOCUMENT_BODY_OVERHEAD;
        end = start + length;
        cmd = { kind: 'document', epoch: readU32(bytes, body), available: status === DOCUMENT_CHUNK, chunk, total, data: copy ? bytes.slice(start, end) : bytes.subarray(start, end) };
        break;
      }
      case WireCommandType.mailbox_request:
      case WireCommandType.mailbox_reply: {
        if (!this.carriesMailboxes) throw commandError('this codec has no room for a mailbox command');
        const action = ACTION_NAMES[bytes[body]!];
        if (action === undefined) throw commandError(`unknown mailbox action ${bytes[body]!}`);
        const request = type === WireCommandType.mailbox_request;
        const start = request ? body + 1 : body + 2;
        end = start + MAILBOX_ID_LENGTH;
        const mailbox = copy ? bytes.slice(start, end) : bytes.subarray(start, end);
        if (request) {
          cmd = { kind: 'mailbox_request', action, mailbox };
        } else {
          const result = RESULT_NAMES[bytes[body + 1]!];
          if (result === undefined) throw commandError(`unknown mailbox result ${bytes[body + 1]!}`);
          cmd = { kind: 'mailbox_reply', action, mailbox, result };
        }
        break;
      }
      default:
        throw commandError(`unknown command type ${type}`);
    }
    if (!zeroFrom(bytes, end)) throw commandError('non-zero padding');
    return cmd;
  }
}
