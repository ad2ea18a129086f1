/**
 * Contact cards: what two people hand each other (through a PAKE, an introducer, or by copying
 * text) to become contacts. A card is one bundle (identity keys and one one-time prekey) and the
 * address its holder reads mail at:
 *
 *     version (1) ‖ bundle (BUNDLE_LENGTH) ‖ gateway identity key (32) ‖ mailbox id (32)
 *
 * 1,318 bytes. Nothing in it is signed (no signatures in the messaging layer): the channel that
 * carried it vouches for it, and safety numbers check it afterwards. Portable.
 */
import { BackchannelError } from '../errors.js';
import { abytes } from '../util/bytes.js';
import { Reader, Writer } from './_codec.js';
import { type Bundle, BUNDLE_LENGTH, decodeBundle, encodeBundle } from './identity.js';

export const CARD_VERSION = 1;
/** Gateway identity key and mailbox id: 32 bytes each, as in an address (src/client/address.ts). */
export const CARD_KEY_LENGTH = 32;
export const CARD_LENGTH = 1 + BUNDLE_LENGTH + 2 * CARD_KEY_LENGTH;

/** Where a contact's messages go: its gateway (Ed25519 identity key) and its mailbox there. */
export interface MailAddress {
  readonly gateway: Uint8Array;
  readonly mailbox: Uint8Array;
}

export interface Card {
  readonly bundle: Bundle;
  readonly address: MailAddress;
}

export function encodeCard(card: Card): Uint8Array {
  abytes('card.address.gateway', card.address.gateway, CARD_KEY_LENGTH);
  abytes('card.address.mailbox', card.address.mailbox, CARD_KEY_LENGTH);
  return new Writer(CARD_LENGTH).u8(CARD_VERSION).bytes(encodeBundle(card.bundle)).bytes(card.address.gateway).bytes(card.address.mailbox).finish();
}

/**
 * @throws {BackchannelError} ERR_MSG_ENCODING for a wrong version or length, or a bad bundle.
 */
export function decodeCard(bytes: Uint8Array): Card {
  if (!(bytes instanceof Uint8Array)) throw new BackchannelError('ERR_MSG_ENCODING', 'messaging: invalid card: not bytes');
  const r = new Reader(bytes, 'card');
  if (r.u8() !== CARD_VERSION) r.fail('unknown version');
  const bundle = decodeBundle(r.view(BUNDLE_LENGTH));
  const gateway = r.bytes(CARD_KEY_LENGTH);
  const mailbox = r.bytes(CARD_KEY_LENGTH);
  r.end();
  return { bundle, address: { gateway, mailbox } };
}

/** A card as base64url text without padding (what `client contact export` prints). */
export function cardToText(card: Uint8Array): string {
  let bin = '';
  for (const b of card) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * The bytes of a card's text form; white space anywhere is ignored (a card pasted across lines).
 * @throws {BackchannelError} ERR_MSG_ENCODING when the text is not base64url of a card's length.
 */
export function cardFromText(text: string): Uint8Array {
  const t = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9_-]+$/.test(t) || t.length !== Math.ceil((CARD_LENGTH * 4) / 3)) {
    throw new BackchannelError('ERR_MSG_ENCODING', `messaging: invalid card: expected ${Math.ceil((CARD_LENGTH * 4) / 3)} base64url characters`);
  }
  const b64 = t.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (cardToText(out) !== t) throw new BackchannelError('ERR_MSG_ENCODING', 'messaging: invalid card: not a canonical encoding');
  return out;
}
