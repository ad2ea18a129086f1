/**
 * The messaging layer's constants: sizes, limits and domain-separation strings. Every limit says
 * where it comes from; every size that the code checks is derived here and nowhere else.
 */

const te = new TextEncoder();

/** Version byte of every encoding this module writes (identity, prekeys, bundle, state, message). */
export const MESSAGING_VERSION = 1;

/** X25519 public and private keys, and DH outputs (RFC 7748). */
export const DH_LENGTH = 32;
/** ML-KEM-768 sizes (FIPS 203, table 3): encapsulation key, decapsulation key, ciphertext, shared secret. */
export const KEM_PUBLIC_LENGTH = 1184;
export const KEM_SECRET_LENGTH = 2400;
export const KEM_CIPHERTEXT_LENGTH = 1088;
export const KEM_SHARED_LENGTH = 32;
/** FIPS 203 ML-KEM.KeyGen_internal(d, z): 32 + 32 bytes of randomness; what an identity stores. */
export const KEM_SEED_LENGTH = 64;
/** FIPS 203 ML-KEM.Encaps_internal: the 32-byte message m. */
export const KEM_ENCAPS_RANDOM_LENGTH = 32;

/** Root, chain, message and header keys (Double Ratchet spec, section 5.2: 32-byte keys). */
export const KEY_LENGTH = 32;
/** XChaCha20-Poly1305 nonce: random for every header, since one header key seals a whole chain. */
export const HEADER_NONCE_LENGTH = 24;
/** Poly1305 tag, on headers and on bodies. */
export const TAG_LENGTH = 16;

/**
 * Double Ratchet spec, section 3.5 (MAX_SKIP): how many message keys one receiving chain may skip
 * ahead in a single step. A message further ahead than this is reported lost (ERR_MSG_SKIP_LIMIT)
 * instead of making the receiver compute thousands of keys for a forged counter. 1,000 covers a
 * burst of mixnet losses far past what retransmission leaves (the client retries until a SURB
 * acknowledgement comes back) at a cost of 1,000 HMACs, about a millisecond.
 */
export const MAX_SKIP_PER_CHAIN = 1000;
/**
 * Skipped message keys kept at most, over every chain; the oldest are dropped first (their
 * messages are then reported as not decryptable). Twice a full chain's skip, so that one chain
 * skipped to the limit does not evict another's keys; 2,000 × 68 bytes in the state.
 */
export const MAX_SKIPPED_KEYS = 2000;
/**
 * Distinct header keys with skipped message keys kept at most: a message that arrives is tried
 * against each of them (spec section 4, TrySkippedMessageKeysHE), so this bounds the trial
 * decryptions per message. Keys of the oldest chains go first.
 */
export const MAX_SKIPPED_HEADER_KEYS = 8;

/**
 * The post-quantum ratchet runs at least this often in each direction: once a party has sent
 * this many messages since its last completed post-quantum step, it offers a fresh ML-KEM-768
 * key (issue 18 and DESIGN.md: "at least every 50 messages or 24 hours per direction").
 */
export const PQ_RATCHET_MESSAGES = 50;
/** ... or once this much time has passed since its last completed step (milliseconds, injected clock). */
export const PQ_RATCHET_INTERVAL_MS = 24 * 60 * 60 * 1000;

/** The user payload of one mixnet packet (DESIGN.md defaults: 2000 bytes with a SURB): every message fits in it. */
export const MAX_MESSAGE_LENGTH = 2000;

/** Message type bytes: the first message(s) of a session carry the set-up; the rest are plain ratchet messages. */
export const MESSAGE_TYPE_PREKEY = 0x01;
export const MESSAGE_TYPE_RATCHET = 0x02;

/** Header kinds: nothing, an offered ML-KEM key, or a ciphertext answering the peer's offer. */
export const PQ_NONE = 0;
export const PQ_OFFER = 1;
export const PQ_ANSWER = 2;

/** Header plaintext: ratchet key (32) ‖ PN (u32) ‖ N (u32) ‖ kind (u8), then for an offer id (u32) ‖ key, for an answer id (u32) ‖ ciphertext. */
export const HEADER_BASE_LENGTH = DH_LENGTH + 4 + 4 + 1;
export const HEADER_OFFER_LENGTH = HEADER_BASE_LENGTH + 4 + KEM_PUBLIC_LENGTH;
export const HEADER_ANSWER_LENGTH = HEADER_BASE_LENGTH + 4 + KEM_CIPHERTEXT_LENGTH;
/** Ratchet message framing: type ‖ header nonce ‖ header length (u16) ‖ sealed header ‖ sealed body. */
export const RATCHET_FRAMING_LENGTH = 1 + HEADER_NONCE_LENGTH + 2 + TAG_LENGTH + TAG_LENGTH;
/** Set-up fields in front of the first messages: initiator identity key ‖ ephemeral key ‖ prekey id (u32) ‖ KEM ciphertext. */
export const PREKEY_FIELDS_LENGTH = DH_LENGTH + DH_LENGTH + 4 + KEM_CIPHERTEXT_LENGTH;

/**
 * The largest plaintext that one message carries, whatever its header holds: the worst case is a
 * header with an ML-KEM offer (a prekey message carries no offer: see ratchet.ts): 59 bytes of
 * framing and tags and a 1,229-byte header leave 2000 − 1,288 = 712 bytes; the client fragments anything longer.
 */
export const MAX_PLAINTEXT_LENGTH =
  MAX_MESSAGE_LENGTH - RATCHET_FRAMING_LENGTH - Math.max(HEADER_OFFER_LENGTH, HEADER_ANSWER_LENGTH, HEADER_BASE_LENGTH + PREKEY_FIELDS_LENGTH);

/** HKDF info strings, one per use (domain separation). */
export const INFO_X3DH = te.encode('Backchannel messaging v1 X3DH');
export const INFO_ROOT = te.encode('Backchannel messaging v1 root');
/** X3DH spec section 2.2: 32 0xFF bytes in front of the DH outputs, so that no input to the KDF is a valid X25519 output alone. */
export const X3DH_PREFIX = new Uint8Array(32).fill(0xff);
/** Chain KDF inputs (Double Ratchet spec section 5.2 recommends HMAC with constants 0x01 and 0x02). */
export const CHAIN_MESSAGE_CONSTANT = Uint8Array.of(0x01);
export const CHAIN_NEXT_CONSTANT = Uint8Array.of(0x02);
