/**
 * A stand-in for the messenger's side of contacts by code, for the invite manager's own tests:
 * cards are random bytes of a given length, and a new contact is recorded in the store's settings
 * as `stub-contact:NAME` (JSON with both cards in hex), so that a test sees what each side got.
 * The running client uses the messenger (src/client/node-client.ts).
 */
import type { CryptoBackend } from '../../src/crypto/types.js';
import type { ContactExchange } from '../../src/messaging/invite.js';
import { toHex } from '../../src/util/bytes.js';
import type { ClientStore } from '../../src/client/store.js';

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
