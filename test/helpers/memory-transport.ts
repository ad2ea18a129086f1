/**
 * A ByteTransport pair joined in memory, where the test decides what crosses: every byte one side
 * writes is recorded, and the test delivers it to the other side whole, re-chunked, altered or
 * not at all. Used to fuzz the link's framing and state machine; the compliance suite runs the
 * same link over real TCP and WebSocket sockets.
 */
import type { ByteTransport, TransportHandlers } from '../../src/link/transport.js';

export class MemoryTransport implements ByteTransport {
  readonly kind = 'memory';
  readonly canPause = true;
  /** Bytes this side wrote and the test has not yet delivered. */
  readonly written: Uint8Array[] = [];
  handlers: TransportHandlers | null = null;
  paused = false;
  ended = false;
  destroyed = false;
  bufferedAmount = 0;

  start(h: TransportHandlers): void {
    this.handlers = h;
  }

  write(chunk: Uint8Array): boolean {
    if (!this.ended && !this.destroyed) this.written.push(Uint8Array.from(chunk));
    return true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  end(): void {
    this.ended = true;
  }

  destroy(): void {
    this.destroyed = true;
  }

  /** Delivers bytes to this side as if they came from the peer. */
  receive(bytes: Uint8Array): void {
    this.handlers?.onData(bytes);
  }

  /** Everything written so far, concatenated, and forgotten. */
  take(): Uint8Array {
    const total = this.written.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of this.written.splice(0)) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  /** The peer's connection went away. */
  closeFromPeer(error?: Error): void {
    this.handlers?.onClose(error);
  }
}

/** Moves whatever `from` wrote to `to`, in one chunk. */
export function pass(from: MemoryTransport, to: MemoryTransport): void {
  const bytes = from.take();
  if (bytes.length > 0) to.receive(bytes);
}
