/**
 * A byte transport under a link: TCP, a WebSocket in Node, or the browser's WebSocket. The link
 * treats every transport as an ordered byte stream (WebSocket messages are concatenated), so one
 * framing and one state machine serve them all. Portable: no `node:` imports.
 */

export interface TransportHandlers {
  /** Bytes arrived, in order. The chunk is the link's to keep. */
  onData(chunk: Uint8Array): void;
  /** The write buffer fell below its low-water mark after `write` returned false. */
  onDrain(): void;
  /** The transport closed: `error` is set when it failed rather than ended. Called once. */
  onClose(error?: Error): void;
}

export interface ByteTransport {
  /** 'tcp' or 'websocket'; for logs and metrics. */
  readonly kind: string;
  /** Starts delivering events; called once, by the link. */
  start(handlers: TransportHandlers): void;
  /** Queues bytes; false means the buffer is above its high-water mark (wait for onDrain). */
  write(chunk: Uint8Array): boolean;
  /** Bytes queued in this process and not yet handed to the operating system. */
  readonly bufferedAmount: number;
  /** False where reading cannot be paused (the browser's WebSocket). */
  readonly canPause: boolean;
  pause(): void;
  resume(): void;
  /** Flushes what is queued, then closes. */
  end(): void;
  /** Closes now, dropping what is queued. */
  destroy(): void;
}
