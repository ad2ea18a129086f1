/**
 * The Sphinx packet format, byte-compatible with Katzenpost's X25519 NIKE Sphinx: packet creation,
 * per-hop unwrapping, SURBs and reply packets. Pure: the crypto backend (and with it the source of
 * randomness) is an argument; nothing here touches the network, a clock or a platform module.
 *
 * Wire format: docs/sphinx.md.
 */
import { sprpDecryptInPlace, sprpEncryptInPlace } from '../aez/index.js';
import type { CryptoBackend } from '../crypto/types.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { abytes, equalBytes, isZero, wipe, xorInto } from '../util/bytes.js';
import { decodeCommands, encodeCommands } from './commands.js';
import type { RoutingCommand } from './commands.js';
import {
  AD_LENGTH,
  GROUP_ELEMENT_LENGTH,
  MAC_LENGTH,
  NODE_ID_LENGTH,
  PAYLOAD_TAG_LENGTH,
  SPRP_KEY_LENGTH,
  SPRP_KEY_MATERIAL_LENGTH,
  VERSION,
  X25519_PRIVATE_KEY_LENGTH,
} from './constants.js';
import type { Geometry } from './geometry.js';
import { blindingFactor, deriveKeys } from './kdf.js';
import type { PacketFormat } from './format.js';
import { completeHopKeys, hopKeys, onCurveCache } from './header-keys.js';
import type { PreparedHeader } from './header-keys.js';
import type { PacketKeys } from './kdf.js';

/** One hop of a path: who it is, its mix key for the epoch, and the commands it should read. */
export interface PathHop {
  /** The node id that the previous hop's NextNodeHop names. */
  readonly id: Uint8Array;
  /** The hop's X25519 mix public key. */
  readonly publicKey: Uint8Array;
  /**
   * Commands for this hop, without NextNodeHop (header creation writes that). Intermediate hops
   * may carry a NodeDelay; the last hop must carry a Recipient and may carry a SURBReply.
   */
  readonly commands: readonly RoutingCommand[];
}

/** What a hop learns from a packet: a closed sum, switch over `kind`. */
export type UnwrapResult =
  | {
      readonly kind: 'forward';
      /** Node id of the next hop. */
      readonly nextHop: Uint8Array;
      /** How long the sender asked this hop to hold the packet. */
      readonly delayMs: number;
      /** The packet to send to the next hop (same length). */
      readonly packet: Uint8Array;
      /** SHA-512/256 of alpha: the key of the replay cache. */
      readonly replayTag: Uint8Array;
    }
  | {
      readonly kind: 'final';
      readonly recipient: Uint8Array;
      /** Set when this is a reply through a SURB; the payload is then still encrypted. */
      readonly surbId: Uint8Array | null;
      /** The forward payload without the zero tag, or for a SURB reply the whole encrypted payload. */
      readonly payload: Uint8Array;
      readonly replayTag: Uint8Array;
    };

/** A single-use reply block, and the keys its creator keeps to read the reply. */
export interface Surb {
  /** header ‖ first hop id ‖ SPRP key ‖ SPRP IV: what the creator hands to the replier. */
  readonly surb: Uint8Array;
  /** Per-hop SPRP keys, last hop first, then the SURB's own key: what the creator keeps. */
  readonly surbKeys: Uint8Array;
}

/**
 * Hop public keys whose on-curve test header creation remembers (header-keys.ts): every mix and
 * gateway key of a network for two epochs, many times over.
 */
const ON_CURVE_CACHE_KEYS = 4096;

function sphinxError(code: ErrorCode, message: string): BackchannelError {
  return new BackchannelError(code, `sphinx: ${message}`);
}

/** Sphinx for one geometry and one crypto backend. */
export class Sphinx implements PacketFormat {
  readonly geometry: Geometry;
  readonly #crypto: CryptoBackend;
  readonly #onCurve = onCurveCache(ON_CURVE_CACHE_KEYS);

  constructor(geometry: Geometry, crypto: CryptoBackend) {
    this.geometry = geometry;
    this.#crypto = crypto;
  }

  /**
   * Creates a packet that travels `path` and delivers `payload` (exactly forwardPayloadLength bytes).
   * With `prepared` (header-keys.ts, prepareHeaderKeys over the public keys of every hop of `path`
   * but the last), its ephemeral secret and hop keys are used instead of drawing and computing
   * them: the same bytes as without it for the same x, and one X25519 instead of 2n. The entry is
   * wiped, used or not.
   * @throws {BackchannelError} ERR_SPHINX_PATH for an empty or too long path or misplaced commands,
   *   or a prepared entry made for another path (or already used); ERR_SPHINX_LENGTH for a payload
   *   of the wrong length.
   */
  createPacket(path: readonly PathHop[], payload: Uint8Array, prepared?: PreparedHeader): Uint8Array {
    const g = this.geometry;
    abytes('payload', payload);
    if (payload.length !== g.forwardPayloadLength) {
      prepared?.wipe();
      throw sphinxError('ERR_SPHINX_LENGTH', `payload must be ${g.forwardPayloadLength} bytes, got ${payload.length}`);
    }
    const { header, sprpKeys } = this.#createHeader(path, prepared);
    try {
      const packet = new Uint8Array(g.packetLength);
      packet.set(header);
      const body = packet.subarray(g.headerLength);
      body.set(payload, PAYLOAD_TAG_LENGTH);
      // Encrypt for the last hop first, so that each hop's decryption peels one layer.
      for (let i = sprpKeys.length - 1; i >= 0; i--) sprpEncryptInPlace(sprpKeys[i]!.payloadKey, sprpKeys[i]!.headerIv, body);
      return packet;
    } finally {
      for (const k of sprpKeys) k.wipe();
    }
  }

  /**
   * Unwraps one layer with this hop's X25519 private key. The result's packet (forward) or payload
   * (final) is written into `into` (packetLength bytes; the payload at the headerLength offset, as
   * in a packet) when it is given, or into a fresh array. `into` may be `packet` itself: the packet
   * is then opened in place, with no allocation or copy of its payload (an unwrap worker does this
   * in its ring). Nothing is written before the MAC and the commands have been checked, so a
   * packet that fails under one key is intact for the next; a payload found tampered with at the
   * last hop (ERR_SPHINX_TAG) leaves the payload part of `into` zeroed.
   * @throws {BackchannelError} ERR_SPHINX_LENGTH, ERR_SPHINX_VERSION, ERR_SPHINX_POINT (alpha of
   *   small order), ERR_SPHINX_MAC, ERR_SPHINX_COMMAND (bad or inconsistent commands),
   *   ERR_SPHINX_TAG (payload tampered with, at the last hop). {RangeError} for an `into` that is
   *   not packetLength bytes.
   */
  unwrap(privateKey: Uint8Array, packet: Uint8Array, into?: Uint8Array): UnwrapResult {
    const g = this.geometry;
    abytes('privateKey', privateKey, X25519_PRIVATE_KEY_LENGTH);
    abytes('packet', packet);
    if (packet.length !== g.packetLength) {
      throw sphinxError('ERR_SPHINX_LENGTH', `invalid packet, expected ${g.packetLength} bytes, got ${packet.length}`);
    }
    if (into !== undefined) abytes('into', into, g.packetLength);
    if (packet[0] !== VERSION || packet[1] !== 0) throw sphinxError('ERR_SPHINX_VERSION', 'invalid packet, unknown version');

    const alpha = packet.subarray(g.alphaOffset, g.betaOffset);
    const sharedSecret = this.#x25519(privateKey, alpha);
    const keys = deriveKeys(this.#crypto, sharedSecret);
    wipe(sharedSecret);
    let routing: Uint8Array | undefined;
    try {
      // gamma = HMAC(mu, ad ‖ alpha ‖ beta), checked before anything else is read.
      const mac = this.#crypto.hmacSha256(keys.headerMac, packet.subarray(0, g.gammaOffset));
      if (!equalBytes(mac, packet.subarray(g.gammaOffset, g.headerLength))) {
        throw sphinxError('ERR_SPHINX_MAC', 'invalid packet, MAC mismatch');
      }
      const replayTag = this.#crypto.sha512_256(alpha);

      // Decrypt beta ‖ zeros: the first slice is ours, the rest is the next hop's beta.
      const padded = new Uint8Array(g.routingInfoLength + g.perHopRoutingInfoLength);
      padded.set(packet.subarray(g.betaOffset, g.gammaOffset));
      routing = this.#crypto.aes256Ctr(keys.headerKey, keys.headerIv, padded);
      const cmds = decodeCommands(routing.subarray(0, g.perHopRoutingInfoLength));

      let nextHop: Extract<RoutingCommand, { type: 'nextHop' }> | undefined;
      let recipient: Uint8Array | undefined;
      let surbId: Uint8Array | null = null;
      let delayMs: number | undefined;
      for (const c of cmds) {
        switch (c.type) {
          case 'nextHop':
            nextHop = c;
            break;
          case 'recipient':
            recipient = c.id;
            break;
          case 'surbReply':
            surbId = c.id;
            break;
          case 'nodeDelay':
            delayMs = c.delayMs;
            break;
        }
      }

      // Check the commands make sense before spending an AEZ pass on the payload.
      if (nextHop !== undefined && (recipient !== undefined || surbId !== null)) {
        throw sphinxError('ERR_SPHINX_COMMAND', 'invalid packet, a forward hop carries final-hop commands');
      }
      if (nextHop === undefined && recipient === undefined) throw sphinxError('ERR_SPHINX_COMMAND', 'invalid packet, no next hop and no recipient');
      if (nextHop === undefined && delayMs !== undefined) throw sphinxError('ERR_SPHINX_COMMAND', 'invalid packet, a final hop carries a delay');

      // The payload is decrypted in place in the outgoing packet, which saves a copy of ~3 kB
      // (and, unwrapping in place, the whole packet).
      const out = into ?? new Uint8Array(g.packetLength);
      const body = out.subarray(g.headerLength);
      if (out !== packet) body.set(packet.subarray(g.headerLength));
      sprpDecryptInPlace(keys.payloadKey, keys.headerIv, body);

      if (nextHop !== undefined) {
        const b = blindingFactor(this.#crypto, keys);
        try {
          // alpha' = X25519(b, alpha): the next hop's group element (alpha is read before this
          // overwrites it, when unwrapping in place).
          out.set(this.#x25519(b, alpha), g.alphaOffset);
        } finally {
          wipe(b);
        }
        out[0] = VERSION;
        out[1] = 0;
        out.set(routing.subarray(g.perHopRoutingInfoLength), g.betaOffset);
        out.set(nextHop.mac, g.gammaOffset);
        return { kind: 'forward', nextHop: nextHop.id, delayMs: delayMs ?? 0, packet: out, replayTag };
      }
      // Checked before the AEZ pass already; repeated because the compiler cannot follow that check.
      if (recipient === undefined) throw sphinxError('ERR_SPHINX_COMMAND', 'invalid packet, no next hop and no recipient');
      if (surbId !== null) {
        // A reply: the payload is encrypted under the SURB creator's keys; only they can check it.
        return { kind: 'final', recipient, surbId, payload: body, replayTag };
      }
      if (!isZero(body.subarray(0, PAYLOAD_TAG_LENGTH))) {
        wipe(body);
        throw sphinxError('ERR_SPHINX_TAG', 'payload authentication failed');
      }
      return { kind: 'final', recipient, surbId: null, payload: body.subarray(PAYLOAD_TAG_LENGTH), replayTag };
    } finally {
      keys.wipe();
      wipe(routing);
    }
  }

  /**
   * Creates a SURB for `path` (its last hop carries the Recipient and SURBReply commands), with
   * its header's keys from `prepared` when it is given (see createPacket).
   * @throws {BackchannelError} ERR_SPHINX_PATH as createPacket.
   */
  createSurb(path: readonly PathHop[], prepared?: PreparedHeader): Surb {
    const g = this.geometry;
    const own = this.#crypto.randomBytes(SPRP_KEY_MATERIAL_LENGTH);
    let made: { header: Uint8Array; sprpKeys: PacketKeys[] };
    try {
      made = this.#createHeader(path, prepared);
    } catch (e) {
      wipe(own);
      throw e;
    }
    const { header, sprpKeys } = made;
    try {
      const surbKeys = new Uint8Array(SPRP_KEY_MATERIAL_LENGTH * (sprpKeys.length + 1));
      // Last hop first, so that decryption walks the array forwards.
      let off = 0;
      for (let i = sprpKeys.length - 1; i >= 0; i--) {
        surbKeys.set(sprpKeys[i]!.payloadKey, off);
        surbKeys.set(sprpKeys[i]!.headerIv, off + SPRP_KEY_LENGTH);
        off += SPRP_KEY_MATERIAL_LENGTH;
      }
      surbKeys.set(own, off);
      const surb = new Uint8Array(g.surbLength);
      surb.set(header);
      surb.set(path[0]!.id, g.headerLength);
      surb.set(own, g.headerLength + NODE_ID_LENGTH);
      return { surb, surbKeys };
    } finally {
      wipe(own);
      for (const k of sprpKeys) k.wipe();
    }
  }

  /**
   * Builds the reply packet a SURB holder sends, and the node id of its first hop.
   * @throws {BackchannelError} ERR_SPHINX_LENGTH for a SURB or payload of the wrong length.
   */
  createPacketFromSurb(surb: Uint8Array, payload: Uint8Array): { packet: Uint8Array; firstHop: Uint8Array } {
    const g = this.geometry;
    abytes('surb', surb);
    abytes('payload', payload);
    if (surb.length !== g.surbLength) throw sphinxError('ERR_SPHINX_LENGTH', `invalid SURB, expected ${g.surbLength} bytes, got ${surb.length}`);
    if (payload.length !== g.forwardPayloadLength) {
      throw sphinxError('ERR_SPHINX_LENGTH', `payload must be ${g.forwardPayloadLength} bytes, got ${payload.length}`);
    }
    const keyOff = g.headerLength + NODE_ID_LENGTH;
    const packet = new Uint8Array(g.packetLength);
    packet.set(surb.subarray(0, g.headerLength));
    const body = packet.subarray(g.headerLength);
    body.set(payload, PAYLOAD_TAG_LENGTH);
    sprpEncryptInPlace(surb.subarray(keyOff, keyOff + SPRP_KEY_LENGTH), surb.subarray(keyOff + SPRP_KEY_LENGTH, keyOff + SPRP_KEY_MATERIAL_LENGTH), body);
    return { packet, firstHop: surb.slice(g.headerLength, keyOff) };
  }

  /**
   * Decrypts the payload of a reply that arrived through one of our SURBs.
   * @throws {BackchannelError} ERR_SPHINX_LENGTH for malformed keys or payload; ERR_SPHINX_TAG
   *   when the keys do not match or the payload was tampered with.
   */
  decryptSurbPayload(payload: Uint8Array, surbKeys: Uint8Array): Uint8Array {
    const g = this.geometry;
    abytes('payload', payload);
    abytes('surbKeys', surbKeys);
    const n = surbKeys.length / SPRP_KEY_MATERIAL_LENGTH;
    if (!Number.isInteger(n) || n < 2 || n > g.hops + 1) {
      throw sphinxError('ERR_SPHINX_LENGTH', `invalid SURB keys, expected 2 to ${g.hops + 1} keys of ${SPRP_KEY_MATERIAL_LENGTH} bytes`);
    }
    if (payload.length !== g.payloadLength) {
      throw sphinxError('ERR_SPHINX_LENGTH', `invalid SURB payload, expected ${g.payloadLength} bytes, got ${payload.length}`);
    }
    const b = payload.slice();
    for (let i = 0; i < n; i++) {
      const off = i * SPRP_KEY_MATERIAL_LENGTH;
      const key = surbKeys.subarray(off, off + SPRP_KEY_LENGTH);
      const iv = surbKeys.subarray(off + SPRP_KEY_LENGTH, off + SPRP_KEY_MATERIAL_LENGTH);
      // Each hop decrypted once: undo that with an encryption, then remove the replier's layer.
      if (i === n - 1) sprpDecryptInPlace(key, iv, b);
      else sprpEncryptInPlace(key, iv, b);
    }
    if (!isZero(b.subarray(0, PAYLOAD_TAG_LENGTH))) {
      wipe(b);
      throw sphinxError('ERR_SPHINX_TAG', 'SURB payload authentication failed');
    }
    return b.subarray(PAYLOAD_TAG_LENGTH);
  }

  /** X25519 that reports a small-order alpha as a Sphinx error. */
  #x25519(scalar: Uint8Array, point: Uint8Array): Uint8Array {
    try {
      return this.#crypto.x25519(scalar, point);
    } catch (e) {
      if (isBackchannelError(e, 'ERR_CRYPTO_LOW_ORDER')) throw sphinxError('ERR_SPHINX_POINT', 'invalid packet, bad group element');
      throw e;
    }
  }

  #checkPath(path: readonly PathHop[]): void {
    const g = this.geometry;
    if (!Array.isArray(path as unknown) || path.length < 1 || path.length > g.hops) {
      throw sphinxError('ERR_SPHINX_PATH', `invalid path, expected 1 to ${g.hops} hops`);
    }
    path.forEach((hop, i) => {
      abytes(`path[${i}].id`, hop.id, NODE_ID_LENGTH);
      abytes(`path[${i}].publicKey`, hop.publicKey, GROUP_ELEMENT_LENGTH);
      const last = i === path.length - 1;
      const types = hop.commands.map((c) => c.type);
      if (new Set(types).size !== types.length) throw sphinxError('ERR_SPHINX_PATH', `invalid path, hop ${i} repeats a command`);
      for (const t of types) {
        const allowed = last ? t === 'recipient' || t === 'surbReply' : t === 'nodeDelay';
        if (!allowed) throw sphinxError('ERR_SPHINX_PATH', `invalid path, hop ${i} may not carry ${t}`);
      }
      if (last && !types.includes('recipient')) throw sphinxError('ERR_SPHINX_PATH', 'invalid path, the last hop needs a recipient');
    });
  }

  /** The header and per-hop keys for `path` (from `prepared` when given; it is wiped); the caller wipes the keys. */
  #createHeader(path: readonly PathHop[], prepared?: PreparedHeader): { header: Uint8Array; sprpKeys: PacketKeys[] } {
    try {
      this.#checkPath(path);
      if (prepared !== undefined) this.#checkPrepared(path, prepared);
    } catch (e) {
      prepared?.wipe();
      throw e;
    }
    const g = this.geometry;
    const c = this.#crypto;
    const n = path.length;
    const perHop = g.perHopRoutingInfoLength;

    // x in the Sphinx paper: the ephemeral secret; alpha_0 = X25519(x, 9). Drawn now unless prepared.
    const x = prepared === undefined ? c.randomBytes(X25519_PRIVATE_KEY_LENGTH) : undefined;
    let keys: PacketKeys[] = [];
    const keystreams: Uint8Array[] = [];
    try {
      // alpha_i and every hop's keys, with one X25519 per group element (header-keys.ts).
      const hops =
        x !== undefined
          ? hopKeys(c, x, path.map((h) => h.publicKey), this.#onCurve)
          : completeHopKeys(c, prepared!, path[n - 1]!.publicKey, this.#onCurve);
      const alphas = hops.alphas;
      keys = hops.keys;

      // Each hop's key stream over beta ‖ zeros. The tail of hop i's stream that falls past the
      // header, XORed with the tails before it, is the filler phi_i that hop i+1 will see.
      const fillers: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const ks = c.aes256Ctr(keys[i]!.headerKey, keys[i]!.headerIv, new Uint8Array(g.routingInfoLength + perHop));
        keystreams.push(ks);
        const split = ks.length - (i + 1) * perHop;
        const filler = ks.slice(split);
        if (i > 0) xorInto(filler.subarray(0, fillers[i - 1]!.length), filler, fillers[i - 1]!);
        fillers.push(filler);
      }

      // Build beta from the last hop back. Unused hop slots at the end are random, as in Katzenpost.
      const skipped = (g.hops - n) * perHop;
      let beta = c.randomBytes(skipped);
      let mac: Uint8Array = new Uint8Array(MAC_LENGTH);
      for (let i = n - 1; i >= 0; i--) {
        const cmds: RoutingCommand[] = [...path[i]!.commands];
        if (i < n - 1) cmds.push({ type: 'nextHop', id: path[i + 1]!.id, mac });
        let block: Uint8Array;
        try {
          block = encodeCommands(cmds, perHop);
        } catch (e) {
          if (isBackchannelError(e, 'ERR_SPHINX_COMMAND')) throw sphinxError('ERR_SPHINX_PATH', `invalid path, hop ${i}: ${e.message}`);
          throw e;
        }
        const next = new Uint8Array(block.length + beta.length);
        next.set(block);
        next.set(beta, block.length);
        xorInto(next, next, keystreams[i]!);
        beta = next;
        // gamma_i = HMAC(mu_i, ad ‖ alpha_i ‖ beta_i), where beta_i ends with the filler phi_{i-1}.
        const filler = i > 0 ? fillers[i - 1]! : new Uint8Array(0);
        const macInput = new Uint8Array(AD_LENGTH + GROUP_ELEMENT_LENGTH + beta.length + filler.length);
        macInput.set(alphas[i]!, AD_LENGTH);
        macInput.set(beta, AD_LENGTH + GROUP_ELEMENT_LENGTH);
        macInput.set(filler, AD_LENGTH + GROUP_ELEMENT_LENGTH + beta.length);
        mac = c.hmacSha256(keys[i]!.headerMac, macInput);
      }

      const header = new Uint8Array(g.headerLength);
      header[0] = VERSION;
      header.set(alphas[0]!, g.alphaOffset);
      header.set(beta, g.betaOffset);
      header.set(mac, g.gammaOffset);
      return { header, sprpKeys: keys };
    } catch (e) {
      for (const k of keys) k.wipe();
      throw e;
    } finally {
      wipe(x, ...keystreams);
      prepared?.wipe();
    }
  }

  /** A prepared header fits `path` when it was made for the public keys of all its hops but the last, and not used yet. */
  #checkPrepared(path: readonly PathHop[], prepared: PreparedHeader): void {
    const known = prepared.publicKeys;
    const fits = !prepared.wiped && known.length === path.length - 1 && known.every((y, i) => equalBytes(y, path[i]!.publicKey));
    if (!fits) throw sphinxError('ERR_SPHINX_PATH', 'invalid path, the prepared header keys are for another path or were used');
  }
}
