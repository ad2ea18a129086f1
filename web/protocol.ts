/**
 * The messages between the page (web/main.ts) and the worker that runs the client engine
 * (web/worker.ts). Byte strings cross as hex; nothing secret crosses at all.
 */

/** What the page asks of the worker. */
export type ToWorker =
  /** Starts the client: `network` is the network file's JSON (served as /network.json); `gateway` a gateway's name for a new client, or null for one at random. */
  | { readonly type: 'start'; readonly network: unknown; readonly gateway: string | null }
  /** Stops the engine and closes the store once everything is on disk. */
  | { readonly type: 'stop' }
  /** Sends `text` (UTF-8) to an address: a one-off message through the engine, without the messaging layer. */
  | { readonly type: 'send'; readonly requestId: number; readonly to: string; readonly text: string };

export interface StatusView {
  readonly connected: boolean;
  readonly gateway: string | null;
  readonly epoch: number | null;
  readonly document: string;
  readonly pendingMessages: number;
  readonly packetsSent: { readonly real: number; readonly drop: number; readonly loop: number };
}

/** What the worker tells the page. */
export type FromWorker =
  /** The client's state: `fresh` when this start made its keys. */
  | { readonly type: 'identity'; readonly address: string; readonly gateway: string; readonly fresh: boolean }
  | { readonly type: 'state'; readonly state: 'starting' | 'connecting' | 'connected' | 'disconnected' | 'stopped' }
  /** Something the user must know: another tab holds this profile, the store cannot write, a bad network file. */
  | { readonly type: 'error'; readonly code: string; readonly message: string }
  | { readonly type: 'status'; readonly status: StatusView }
  /** The answer to a send: its id (hex) once the message is on disk (queued for good), or why it was refused. */
  | { readonly type: 'queued'; readonly requestId: number; readonly id: string | null; readonly error: string | null }
  /** A one-off message is delivered (acknowledged by the recipient's gateway) or failed. */
  | { readonly type: 'outgoing'; readonly id: string; readonly state: 'delivered' | 'sent' | 'failed' }
  /** A message in the inbox (each is posted once per start; the page keeps them by id). */
  | { readonly type: 'message'; readonly id: string; readonly text: string; readonly receivedAt: number };
