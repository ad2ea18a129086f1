/**
 * The part of a Link (src/link/link.ts) that nodes use once it is open: what a transport must
 * offer to carry a node's packets. The Noise link is one; the simulator's in-memory link is
 * another. Types only; portable.
 */
import type { CloseReasonCode } from './link.js';

/**
 * A message received belongs to its reader, which may change it (a node opens a packet in place
 * and sends the same command on); a message sent belongs to the link from then on.
 */
export interface MessageLink {
  /** The peer's static public key, authenticated by the handshake. */
  readonly remoteStatic: Uint8Array;
  readonly isOpen: boolean;
  /** Queues a message if there is room now; false when the link is full (then use `send`). */
  trySend(message: Uint8Array): boolean;
  /** Queues a message, waiting for room; rejects when the link closes first. */
  send(message: Uint8Array): Promise<void>;
  close(reason?: CloseReasonCode): Promise<unknown>;
  /** Each message received, until the link closes. */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
  /**
   * Set by transports that can hand messages over by callback (the simulator's): the node then
   * receives through `handler` instead of iterating, synchronously and in order.
   */
  readonly setHandler?: (handler: (message: Uint8Array) => void) => void;
}
