/**
 * Fixed sizes of the Katzenpost X25519 Sphinx packet format. Everything that depends on the
 * number of hops or the payload size is derived in geometry.ts; no other file writes a size.
 */

/** Version and reserved byte that start every header, and the MAC's associated data. */
export const AD_LENGTH = 2;
/** Header version 0 (both bytes zero). */
export const VERSION = 0x00;
/** alpha in the Sphinx paper: the X25519 group element. */
export const GROUP_ELEMENT_LENGTH = 32;
/** gamma in the Sphinx paper: HMAC-SHA256, untruncated. */
export const MAC_LENGTH = 32;
export const MAC_KEY_LENGTH = 32;
/** AES-256-CTR key and IV (the IV is reused as the SPRP nonce, as Katzenpost does). */
export const STREAM_KEY_LENGTH = 32;
export const STREAM_IV_LENGTH = 16;
/** AEZ key (Extract's 384-bit I‖J‖L) and nonce. */
export const SPRP_KEY_LENGTH = 48;
export const SPRP_IV_LENGTH = STREAM_IV_LENGTH;
export const SPRP_KEY_MATERIAL_LENGTH = SPRP_KEY_LENGTH + SPRP_IV_LENGTH;
/** The ChaCha20 key from which the blinding factor is drawn. */
export const BLINDING_SEED_LENGTH = 32;
/** HKDF output: header MAC key ‖ header stream key ‖ header IV ‖ payload key ‖ blinding seed. */
export const KDF_OUTPUT_LENGTH = MAC_KEY_LENGTH + STREAM_KEY_LENGTH + STREAM_IV_LENGTH + SPRP_KEY_LENGTH + BLINDING_SEED_LENGTH;
export const KDF_INFO = new TextEncoder().encode('katzenpost-kdf-v0-hkdf-sha256');
/** Zero bytes in front of the payload, checked at the last hop (the Sphinx payload tag). */
export const PAYLOAD_TAG_LENGTH = 32;
/** The flags and reserved bytes in front of a user payload that carries a SURB. */
export const PLAINTEXT_HEADER_LENGTH = 2;
export const NODE_ID_LENGTH = 32;
export const RECIPIENT_ID_LENGTH = 32;
export const SURB_ID_LENGTH = 16;
/** SHA-512/256 of alpha. */
export const REPLAY_TAG_LENGTH = 32;

/** Routing command tags (Katzenpost core/sphinx/commands). */
export const CMD_PADDING = 0x00;
export const CMD_NEXT_HOP = 0x01;
export const CMD_RECIPIENT = 0x02;
export const CMD_SURB_REPLY = 0x03;
export const CMD_NODE_DELAY = 0x80;

export const NEXT_HOP_COMMAND_LENGTH = 1 + NODE_ID_LENGTH + MAC_LENGTH;
export const RECIPIENT_COMMAND_LENGTH = 1 + RECIPIENT_ID_LENGTH;
export const SURB_REPLY_COMMAND_LENGTH = 1 + SURB_ID_LENGTH;
export const NODE_DELAY_COMMAND_LENGTH = 1 + 4;
/**
 * The largest routing block a hop can carry, NextNodeHop then SURBReply; every other combination
 * (NextNodeHop + NodeDelay, Recipient + SURBReply) is shorter. Katzenpost sizes it the same way.
 */
export const PER_HOP_ROUTING_INFO_LENGTH = NEXT_HOP_COMMAND_LENGTH + SURB_REPLY_COMMAND_LENGTH;

/**
 * Bounds on geometries we accept, so that a bad configuration or CLI argument fails early instead
 * of allocating without limit. 16 hops and 1 MiB are far past any deployment (Katzenpost runs
 * 5 to 8 hops and payloads of a few kB).
 */
export const MAX_HOPS = 16;
export const MAX_FORWARD_PAYLOAD_LENGTH = 1 << 20;
/** An X25519 private key (the mix key of a hop, or the sender's ephemeral x). */
export const X25519_PRIVATE_KEY_LENGTH = 32;
