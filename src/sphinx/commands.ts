/**
 * Per-hop routing commands: what each hop finds in its slice of beta. Encoding and decoding are
 * strict: a block is a sequence of known commands, then a padding command (0x00) followed only by
 * zero bytes, or nothing when the commands fill it exactly.
 */
import { BackchannelError } from '../errors.js';
import { abytes, aint, isZero } from '../util/bytes.js';
import {
  CMD_NEXT_HOP,
  CMD_NODE_DELAY,
  CMD_PADDING,
  CMD_RECIPIENT,
  CMD_SURB_REPLY,
  MAC_LENGTH,
  NEXT_HOP_COMMAND_LENGTH,
  NODE_DELAY_COMMAND_LENGTH,
  NODE_ID_LENGTH,
  RECIPIENT_COMMAND_LENGTH,
  RECIPIENT_ID_LENGTH,
  SURB_ID_LENGTH,
  SURB_REPLY_COMMAND_LENGTH,
} from './constants.js';

/** One routing command. `nextHop` is written by header creation, never by the caller. */
export type RoutingCommand =
  | { readonly type: 'nextHop'; readonly id: Uint8Array; readonly mac: Uint8Array }
  | { readonly type: 'recipient'; readonly id: Uint8Array }
  | { readonly type: 'surbReply'; readonly id: Uint8Array }
  | { readonly type: 'nodeDelay'; readonly delayMs: number };

export type RoutingCommandType = RoutingCommand['type'];

const MAX_UINT32 = 0xffffffff;

const COMMAND_LENGTH_BY_TAG: ReadonlyMap<number, number> = new Map([
  [CMD_NEXT_HOP, NEXT_HOP_COMMAND_LENGTH],
  [CMD_RECIPIENT, RECIPIENT_COMMAND_LENGTH],
  [CMD_SURB_REPLY, SURB_REPLY_COMMAND_LENGTH],
  [CMD_NODE_DELAY, NODE_DELAY_COMMAND_LENGTH],
]);

function commandError(message: string): BackchannelError {
  return new BackchannelError('ERR_SPHINX_COMMAND', `sphinx: invalid routing command, ${message}`);
}

/** Encoded length of one command. */
export function commandLength(cmd: RoutingCommand): number {
  switch (cmd.type) {
    case 'nextHop':
      return NEXT_HOP_COMMAND_LENGTH;
    case 'recipient':
      return RECIPIENT_COMMAND_LENGTH;
    case 'surbReply':
      return SURB_REPLY_COMMAND_LENGTH;
    case 'nodeDelay':
      return NODE_DELAY_COMMAND_LENGTH;
  }
}

/**
 * Writes `cmd` into `out` at `offset` and returns the offset after it.
 * @throws {TypeError|RangeError} when a field has the wrong type, length or range.
 */
export function writeCommand(cmd: RoutingCommand, out: Uint8Array, offset: number): number {
  switch (cmd.type) {
    case 'nextHop':
      abytes('nextHop.id', cmd.id, NODE_ID_LENGTH);
      abytes('nextHop.mac', cmd.mac, MAC_LENGTH);
      out[offset] = CMD_NEXT_HOP;
      out.set(cmd.id, offset + 1);
      out.set(cmd.mac, offset + 1 + NODE_ID_LENGTH);
      break;
    case 'recipient':
      abytes('recipient.id', cmd.id, RECIPIENT_ID_LENGTH);
      out[offset] = CMD_RECIPIENT;
      out.set(cmd.id, offset + 1);
      break;
    case 'surbReply':
      abytes('surbReply.id', cmd.id, SURB_ID_LENGTH);
      out[offset] = CMD_SURB_REPLY;
      out.set(cmd.id, offset + 1);
      break;
    case 'nodeDelay': {
      aint('nodeDelay.delayMs', cmd.delayMs, 0, MAX_UINT32);
      out[offset] = CMD_NODE_DELAY;
      new DataView(out.buffer, out.byteOffset + offset + 1, 4).setUint32(0, cmd.delayMs, false);
      break;
    }
  }
  return offset + commandLength(cmd);
}

/** Encodes one command on its own (used by tests and the vectors). */
export function encodeCommand(cmd: RoutingCommand): Uint8Array {
  const out = new Uint8Array(commandLength(cmd));
  writeCommand(cmd, out, 0);
  return out;
}

/**
 * Encodes `cmds` into a zero-padded block of `blockLength` bytes.
 * @throws {BackchannelError} ERR_SPHINX_COMMAND when they do not fit.
 */
export function encodeCommands(cmds: readonly RoutingCommand[], blockLength: number): Uint8Array {
  let n = 0;
  for (const c of cmds) n += commandLength(c);
  if (n > blockLength) throw commandError(`${n} bytes of commands do not fit in ${blockLength}`);
  const out = new Uint8Array(blockLength);
  let off = 0;
  for (const c of cmds) off = writeCommand(c, out, off);
  return out;
}

/**
 * Decodes a routing block. Each command type may appear at most once.
 * @throws {BackchannelError} ERR_SPHINX_COMMAND for an unknown tag, a truncated command, a
 *   repeated command or non-zero bytes after the padding command.
 */
export function decodeCommands(block: Uint8Array): RoutingCommand[] {
  const cmds: RoutingCommand[] = [];
  const seen = new Set<RoutingCommandType>();
  let off = 0;
  while (off < block.length) {
    const tag = block[off]!;
    if (tag === CMD_PADDING) {
      if (!isZero(block.subarray(off + 1))) throw commandError('non-zero bytes after padding');
      break;
    }
    const len = COMMAND_LENGTH_BY_TAG.get(tag);
    if (len === undefined) throw commandError(`unknown tag 0x${tag.toString(16).padStart(2, '0')}`);
    if (off + len > block.length) throw commandError('truncated command');
    const body = block.subarray(off + 1, off + len);
    let cmd: RoutingCommand;
    switch (tag) {
      case CMD_NEXT_HOP:
        cmd = { type: 'nextHop', id: body.slice(0, NODE_ID_LENGTH), mac: body.slice(NODE_ID_LENGTH) };
        break;
      case CMD_RECIPIENT:
        cmd = { type: 'recipient', id: body.slice() };
        break;
      case CMD_SURB_REPLY:
        cmd = { type: 'surbReply', id: body.slice() };
        break;
      default: // CMD_NODE_DELAY, the only other tag in the table
        cmd = { type: 'nodeDelay', delayMs: new DataView(body.buffer, body.byteOffset, 4).getUint32(0, false) };
    }
    if (seen.has(cmd.type)) throw commandError(`repeated ${cmd.type} command`);
    seen.add(cmd.type);
    cmds.push(cmd);
    off += len;
  }
  return cmds;
}
