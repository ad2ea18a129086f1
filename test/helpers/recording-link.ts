/** A MessageLink that keeps what is sent on it: a client's link as a gateway's sessions see it, without a transport. */
import type { MessageLink } from '../../src/link/message-link.js';

export function recordingLink(remoteStatic: Uint8Array = new Uint8Array(32).fill(9)): MessageLink & { frames: Uint8Array[] } {
  const frames: Uint8Array[] = [];
  return {
    frames,
    remoteStatic,
    isOpen: true,
    trySend: (m) => {
      frames.push(m);
      return true;
    },
    send: () => Promise.resolve(),
    close: () => Promise.resolve(),
    [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true as const, value: undefined }) }),
  };
}
