import { BackchannelError } from '../errors.js';
import {
  AD_LENGTH,
  GROUP_ELEMENT_LENGTH,
  MAC_LENGTH,
  MAX_FORWARD_PAYLOAD_LENGTH,
  MAX_HOPS,
  NODE_ID_LENGTH,
  PAYLOAD_TAG_LENGTH,
  PER_HOP_ROUTING_INFO_LENGTH,
  PLAINTEXT_HEADER_LENGTH,
  SPRP_KEY_MATERIAL_LENGTH,
} from './constants.js';

/**
 * Every size of a Sphinx packet, derived from the number of hops and the payload size the way
 * Katzenpost's geo package derives them. One object per network; no other code computes a size.
 */
export interface Geometry {
  /** r in the Sphinx paper: the most hops a header can route through. */
  readonly hops: number;
  /** The bytes a sender puts into a packet (after the payload tag). */
  readonly forwardPayloadLength: number;
  /** The bytes left for the user once a SURB and its plaintext header are carried (equal to forwardPayloadLength without a SURB). */
  readonly userForwardPayloadLength: number;
  readonly withSurb: boolean;
  /** Routing commands per hop: the largest block, NextNodeHop then SURBReply. */
  readonly perHopRoutingInfoLength: number;
  /** beta: perHopRoutingInfoLength per hop. */
  readonly routingInfoLength: number;
  /** ad ‖ alpha ‖ beta ‖ gamma. */
  readonly headerLength: number;
  /** The encrypted payload: tag ‖ forward payload. */
  readonly payloadLength: number;
  readonly packetLength: number;
  /** header ‖ first hop id ‖ SPRP key ‖ SPRP IV. */
  readonly surbLength: number;
  /** Offsets inside a header. */
  readonly alphaOffset: number;
  readonly betaOffset: number;
  readonly gammaOffset: number;
}

function check(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BackchannelError('ERR_SPHINX_GEOMETRY', `sphinx: ${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}

function surbLengthFor(hops: number): number {
  const headerLength = AD_LENGTH + GROUP_ELEMENT_LENGTH + PER_HOP_ROUTING_INFO_LENGTH * hops + MAC_LENGTH;
  return headerLength + NODE_ID_LENGTH + SPRP_KEY_MATERIAL_LENGTH;
}

function build(hops: number, forwardPayloadLength: number, userForwardPayloadLength: number, withSurb: boolean): Geometry {
  const perHopRoutingInfoLength = PER_HOP_ROUTING_INFO_LENGTH;
  const routingInfoLength = perHopRoutingInfoLength * hops;
  const headerLength = AD_LENGTH + GROUP_ELEMENT_LENGTH + routingInfoLength + MAC_LENGTH;
  const payloadLength = PAYLOAD_TAG_LENGTH + forwardPayloadLength;
  return Object.freeze({
    hops,
    forwardPayloadLength,
    userForwardPayloadLength,
    withSurb,
    perHopRoutingInfoLength,
    routingInfoLength,
    headerLength,
    payloadLength,
    packetLength: headerLength + payloadLength,
    surbLength: surbLengthFor(hops),
    alphaOffset: AD_LENGTH,
    betaOffset: AD_LENGTH + GROUP_ELEMENT_LENGTH,
    gammaOffset: AD_LENGTH + GROUP_ELEMENT_LENGTH + routingInfoLength,
  });
}

/**
 * The geometry for `hops` hops and a user payload of `userPayloadLength` bytes, with room for a
 * SURB (and its 2-byte plaintext header) when `withSurb` is set; Katzenpost's
 * GeometryFromUserForwardPayloadLength.
 * @throws {BackchannelError} ERR_SPHINX_GEOMETRY for hops outside [1, 16] or a payload outside [0, 1 MiB].
 * @example geometryFromUserPayload(5, 2000, true).packetLength // 3082
 */
export function geometryFromUserPayload(hops: number, userPayloadLength: number, withSurb: boolean): Geometry {
  check('hops', hops, 1, MAX_HOPS);
  check('user payload length', userPayloadLength, 0, MAX_FORWARD_PAYLOAD_LENGTH);
  const forward = withSurb ? userPayloadLength + PLAINTEXT_HEADER_LENGTH + surbLengthFor(hops) : userPayloadLength;
  check('forward payload length', forward, 0, MAX_FORWARD_PAYLOAD_LENGTH);
  return build(hops, forward, userPayloadLength, withSurb);
}

/**
 * The geometry for `hops` hops and a forward payload of exactly `forwardPayloadLength` bytes
 * (whatever it carries); what the CLI's `--forward-payload` names.
 * @throws {BackchannelError} ERR_SPHINX_GEOMETRY for hops outside [1, 16] or a payload outside [0, 1 MiB].
 */
export function geometryFromForwardPayload(hops: number, forwardPayloadLength: number): Geometry {
  check('hops', hops, 1, MAX_HOPS);
  check('forward payload length', forwardPayloadLength, 0, MAX_FORWARD_PAYLOAD_LENGTH);
  return build(hops, forwardPayloadLength, forwardPayloadLength, false);
}

/** The network default: 5 hops (gateway, 3 mix layers, gateway), 2000 user bytes, with a SURB (DESIGN.md, Defaults). */
export const DEFAULT_HOPS = 5;
export const DEFAULT_USER_PAYLOAD_LENGTH = 2000;
export function defaultGeometry(): Geometry {
  return geometryFromUserPayload(DEFAULT_HOPS, DEFAULT_USER_PAYLOAD_LENGTH, true);
}

/**
 * The geometry that a network's parameters describe (its hops, user payload and whether packets
 * carry a SURB): what every server and client of that network builds, once.
 * @throws {BackchannelError} ERR_SPHINX_GEOMETRY for parameters out of range.
 */
export function geometryFromParameters(p: { readonly hops: number; readonly userPayloadLength: number; readonly withSurb: boolean }): Geometry {
  return geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb);
}
