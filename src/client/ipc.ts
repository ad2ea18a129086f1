/**
 * The client daemon's local socket, seen from the commands that talk to it (`backchannel client
 * status|send|recv`), and what both sides share: the socket's place, line framing and limits.
 *
 * The protocol (daemon.ts serves it): newline-delimited JSON over the Unix socket DIR/client.sock,
 * one request per connection, the request on the first line. Every answer is one JSON object
 * per line; `{"ok": false, "code", "error"}` reports an error and is the last line.
 */
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { Buffer } from 'node:buffer';
import { BackchannelError } from '../errors.js';
import type { ErrorCode } from '../errors.js';

/** The socket's file name in the client's directory. */
export const CLIENT_SOCKET_FILE = 'client.sock';
/** The longest socket path accepted: sun_path holds 104 bytes on macOS and 108 on Linux, NUL included. */
export const MAX_SOCKET_PATH_BYTES = 100;
/** The longest line a daemon reads (a request with a 1 MiB body in base64 fits with room to spare). */
export const MAX_REQUEST_LINE = 4 * 1024 * 1024;
/** The longest line a command reads from the daemon. */
export const MAX_RESPONSE_LINE = 8 * 1024 * 1024;

/** One JSON object of the protocol. */
export type IpcMessage = Record<string, unknown>;

function ipcError(message: string, cause?: unknown): BackchannelError {
  return new BackchannelError('ERR_CLIENT_IPC', `client ipc: ${message}`, cause === undefined ? {} : { cause });
}

/**
 * The socket of the client whose state is in `dir`: DIR/client.sock with DIR made absolute.
 * @throws {BackchannelError} ERR_CLIENT_STATE when the path is longer than a Unix socket allows.
 */
export function clientSocketPath(dir: string): string {
  const path = join(resolve(dir), CLIENT_SOCKET_FILE);
  const length = Buffer.byteLength(path);
  if (length > MAX_SOCKET_PATH_BYTES) {
    throw new BackchannelError(
      'ERR_CLIENT_STATE',
      `client state: the socket path ${path} is ${length} bytes, over the limit of ${MAX_SOCKET_PATH_BYTES} bytes for a Unix socket; use a shorter --dir`,
    );
  }
  return path;
}

/** The error for a daemon that does not answer on `dir`'s socket. */
export function notRunningError(dir: string, cause?: unknown): BackchannelError {
  return new BackchannelError(
    'ERR_CLIENT_NOT_RUNNING',
    `the client is not running for ${dir}; start it with: npx backchannel client run --dir ${dir}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Splits a byte stream into lines (without the "\n"), refusing any line longer than `max` bytes
 * as soon as it is seen, so that a peer never makes the reader buffer more than `max` bytes.
 */
export class LineReader {
  readonly max: number;
  #parts: Buffer[] = [];
  #size = 0;

  constructor(max: number) {
    this.max = max;
  }

  /**
   * The lines that `chunk` completes.
   * @throws {BackchannelError} ERR_CLIENT_IPC for a line over the limit.
   */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      if (this.#size + (end - start) > this.max) {
        this.#parts = [];
        this.#size = 0;
        throw ipcError(`a line is longer than ${this.max} bytes`);
      }
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      lines.push(this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]));
      this.#parts = [];
      this.#size = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.#parts.push(chunk.subarray(start));
      this.#size += chunk.length - start;
    }
    return lines;
  }

  /** Bytes held of an unfinished line. */
  get pending(): number {
    return this.#size;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses one line as a JSON object.
 * @throws {BackchannelError} ERR_CLIENT_IPC when it is not UTF-8 JSON or not an object.
 */
export function parseLine(line: Uint8Array): IpcMessage {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(line));
  } catch {
    throw ipcError('malformed JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw ipcError('expected a JSON object');
  return value as IpcMessage;
}

/** A JSON line as bytes. */
export function encodeLine(message: IpcMessage): string {
  return `${JSON.stringify(message)}\n`;
}

/** What the error line `{"ok": false, "code", "error"}` stands for. */
export function errorFromLine(message: IpcMessage): BackchannelError {
  const code = typeof message['code'] === 'string' && /^ERR_[A-Z0-9_]{1,60}$/.test(message['code']) ? (message['code'] as ErrorCode) : 'ERR_CLIENT_IPC';
  const text = typeof message['error'] === 'string' ? message['error'].slice(0, 1000) : 'the client reported an error';
  return new BackchannelError(code, text);
}

/** The open connection, as `onLine` may use it. */
export interface IpcConnection {
  /** Writes one more line (e.g. a recv's `consume`). */
  send(message: IpcMessage): void;
  /** Closes our side once the lines written are sent; the request ends when the daemon closes too. */
  end(): void;
}

export interface IpcRequestOptions {
  /** The client's directory as the user named it, for messages (default: the socket's folder). */
  readonly dir?: string;
  /** Ends the request (our side of the connection) when fired. */
  readonly signal?: AbortSignal;
  /** Longest line read (default MAX_RESPONSE_LINE). */
  readonly maxLine?: number;
}

function connectError(e: NodeJS.ErrnoException, dir: string): BackchannelError {
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') return notRunningError(dir, e);
  if (e.code === 'EACCES' || e.code === 'EPERM') return ipcError(`permission denied on the client's socket in ${dir}`, e);
  return ipcError(`cannot connect to the client's socket in ${dir} (${e.code ?? 'error'})`, e);
}

/**
 * Sends `request` and hands every line the daemon answers to `onLine`, one at a time and in order
 * (an async `onLine` is awaited before the next line is read). Resolves once the daemon has closed
 * the connection and every line is handled; the caller tells from what it saw whether the answer
 * was complete.
 * @throws {BackchannelError} ERR_CLIENT_NOT_RUNNING when nothing listens on `path`; the error the
 *   daemon answered (its `code` and message); ERR_CLIENT_IPC for a broken exchange; or what
 *   `onLine` throws.
 */
export function ipcRequest(
  path: string,
  request: IpcMessage,
  onLine: (message: IpcMessage, connection: IpcConnection) => void | Promise<void>,
  opts: IpcRequestOptions = {},
): Promise<void> {
  const dir = opts.dir ?? dirname(path);
  const reader = new LineReader(opts.maxLine ?? MAX_RESPONSE_LINE);
  return new Promise<void>((resolvePromise, reject) => {
    const socket: Socket = createConnection({ path });
    let connected = false;
    let settled = false;
    let closed = false;
    let busy = false;
    const queue: Buffer[] = [];

    const onAbort = (): void => connection.end();
    const settle = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolvePromise();
      else {
        socket.destroy();
        reject(error);
      }
    };
    const connection: IpcConnection = {
      send: (message) => {
        if (!socket.destroyed && !socket.writableEnded) socket.write(encodeLine(message));
      },
      end: () => {
        if (!socket.destroyed && !socket.writableEnded) socket.end();
      },
    };

    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        while (queue.length > 0 && !settled) {
          const line = queue.shift()!;
          if (line.length === 0) continue;
          const message = parseLine(line);
          if (message['ok'] === false) throw errorFromLine(message);
          await onLine(message, connection);
        }
      } catch (e) {
        settle(e);
        return;
      } finally {
        busy = false;
      }
      if (closed) settle();
      else socket.resume();
    };

    socket.on('connect', () => {
      connected = true;
      socket.write(encodeLine(request));
    });
    socket.on('data', (chunk: Buffer) => {
      let lines: Buffer[];
      try {
        lines = reader.push(chunk);
      } catch (e) {
        settle(e);
        return;
      }
      if (lines.length === 0) return;
      queue.push(...lines);
      socket.pause();
      void pump();
    });
    let failure: NodeJS.ErrnoException | undefined;
    socket.on('error', (e: NodeJS.ErrnoException) => {
      failure = e;
    });
    socket.on('close', () => {
      closed = true;
      if (!connected) {
        settle(failure === undefined ? notRunningError(dir) : connectError(failure, dir));
        return;
      }
      if (!busy) void pump();
    });
    if (opts.signal !== undefined) {
      if (opts.signal.aborted) onAbort();
      else opts.signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}

/**
 * Sends `request` and returns the daemon's first answer (then closes).
 * @throws as ipcRequest, and ERR_CLIENT_IPC when the daemon closed without answering.
 */
export async function ipcCall(path: string, request: IpcMessage, opts: IpcRequestOptions = {}): Promise<IpcMessage> {
  let answer: IpcMessage | undefined;
  await ipcRequest(
    path,
    request,
    (message, connection) => {
      if (answer === undefined) answer = message;
      connection.end();
    },
    opts,
  );
  if (answer === undefined) throw ipcError('the client closed the connection without answering');
  return answer;
}

/** Whether something accepts connections on `path` (a running daemon). Connects and closes at once. */
export function daemonAnswers(path: string, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = createConnection({ path });
    // A listener that does not accept in time is still a listener.
    const timer = setTimeout(() => {
      socket.destroy();
      resolvePromise(true);
    }, timeoutMs);
    socket.on('connect', () => {
      clearTimeout(timer);
      socket.end();
      resolvePromise(true);
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolvePromise(false);
    });
  });
}
