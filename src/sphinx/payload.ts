/**
 * What a forward Sphinx payload carries, Katzenpost's layout: a plaintext header of two bytes
 * (flags, reserved), then, when flag SURB is set, a SURB the final gateway uses to acknowledge
 * delivery, then the user's bytes. Without a SURB in the geometry the payload is the user's bytes.
 *
 *     flags (1) ‖ reserved (1) ‖ SURB (geometry.surbLength) ‖ user payload (userForwardPayloadLength)
 *
 * Portable: no `node:` imports.
 */
import { BackchannelError } from '../errors.js';
import type { Geometry } from './geometry.js';
import { PLAINTEXT_HEADER_LENGTH } from './constants.js';
import { abytes } from '../util/bytes.js';

/** Bit 0 of the flags byte: a SURB follows the plaintext header. */
export const FLAG_SURB = 0x01;

export interface ForwardPayload {
  /** The SURB to acknowledge delivery with, or null. */
  readonly surb: Uint8Array | null;
  /** The user bytes (always userForwardPayloadLength long; the sender pads). */
  readonly body: Uint8Array;
}

function payloadError(message: string): BackchannelError {
  return new BackchannelError('ERR_PAYLOAD', `payload: ${message}`);
}

/**
 * Lays out a forward payload. `body` may be shorter than the room for it; the rest is zeros.
 * @throws {BackchannelError} ERR_PAYLOAD for a body too long, a SURB of the wrong length, or a
 *   SURB in a geometry without room for one.
 */
export function encodeForwardPayload(g: Geometry, body: Uint8Array, surb: Uint8Array | null): Uint8Array {
  abytes('body', body);
  if (body.length > g.userForwardPayloadLength) throw payloadError(`body longer than ${g.userForwardPayloadLength} bytes`);
  const out = new Uint8Array(g.forwardPayloadLength);
  if (!g.withSurb) {
    if (surb !== null) throw payloadError('this geometry carries no SURB');
    out.set(body);
    return out;
  }
  if (surb !== null) {
    abytes('surb', surb);
    if (surb.length !== g.surbLength) throw payloadError(`SURB must be ${g.surbLength} bytes`);
    out[0] = FLAG_SURB;
    out.set(surb, PLAINTEXT_HEADER_LENGTH);
  }
  out.set(body, PLAINTEXT_HEADER_LENGTH + g.surbLength);
  return out;
}

/**
 * Reads a forward payload (what the final hop's unwrap returns). Views into `payload`, no copies.
 * @throws {BackchannelError} ERR_PAYLOAD for a wrong length, unknown flags or a non-zero reserved byte.
 */
export function decodeForwardPayload(g: Geometry, payload: Uint8Array): ForwardPayload {
  abytes('payload', payload);
  if (payload.length !== g.forwardPayloadLength) throw payloadError(`expected ${g.forwardPayloadLength} bytes, got ${payload.length}`);
  if (!g.withSurb) return { surb: null, body: payload };
  const flags = payload[0]!;
  if ((flags & ~FLAG_SURB) !== 0 || payload[1] !== 0) throw payloadError('unknown flags in the plaintext header');
  const surbStart = PLAINTEXT_HEADER_LENGTH;
  const bodyStart = surbStart + g.surbLength;
  return {
    surb: flags & FLAG_SURB ? payload.subarray(surbStart, bodyStart) : null,
    body: payload.subarray(bodyStart),
  };
}
