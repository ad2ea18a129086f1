/**
 * A stand-in for the messenger's side of contacts by code, until the messenger is wired in: cards
 * are random bytes of a given length, and a new contact is recorded in the store's settings as
 * `stub-contact:NAME` (JSON with both cards in hex), so that tests can see what each side got.
 * The integrator replaces it with the messenger (`newCard()` / `addContact(name, ours, theirs)`).
 * Portable: no `node:` imports.
 */
import type { CryptoBackend } from '../crypto/types.js';
import type { ContactExchange } from '../messaging/invite.js';
import { toHex } from '../util/bytes.js';
import type { ClientStore } from './store.js';

/** A card's length in the stub: a messaging bundle (1,253 bytes) and an address, rounded up. */
export const STUB_CARD_LENGTH = 1400;
/** The settings key prefix under which the stub records a contact. */
export const STUB_CONTACT_PREFIX = 'stub-contact:';

export function stubContactExchange(crypto: CryptoBackend, store: Pick<ClientStore, 'setSetting'>, cardLength = STUB_CARD_LENGTH): ContactExchange {
  return {
    newCard: () => crypto.randomBytes(cardLength),
    addContact(name, ourCard, theirCard) {
      store.setSetting(`${STUB_CONTACT_PREFIX}${name}`, new TextEncoder().encode(JSON.stringify({ ours: toHex(ourCard), theirs: toHex(theirCard) })));
    },
  };
}
