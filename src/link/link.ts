/**
 * An encrypted, authenticated, framed duplex channel over any ByteTransport (docs/link.md).
 *
 * On the wire every frame is a 2-byte big-endian length and one Noise message. The handshake is
 * Noise XK (the initiator knows the responder's static key; the responder learns the
 * initiator's in the third message and decides whether to accept it). After the handshake each
 * frame's plaintext is one kind byte and a body: data, keepalive, close or ready; a rekey rides on
 * the next data or keepalive frame that would go out anyway (kinds 5 and 6), so it never makes a
 * frame of its own, and its point is drawn at random, not a fixed period from the link's set-up.
 *
 * Every buffer is bounded: a frame is at most 65535 bytes, at most `maxQueuedMessages` received
 * messages wait for `recv` (beyond that the transport is paused), at most `maxQueuedSends` sends
 * wait for the transport to drain (beyond that `send` fails with ERR_LINK_BACKPRESSURE).
 *
 * Portable: no `node:` imports; the primitives come in through `crypto`.
 */
import { BackchannelError, isBackchannelError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { abytes } from '../util/bytes.js';
import type { NoiseCrypto } from '../noise/crypto.js';
import type { CipherState, Handshake } from '../noise/state.js';
import { createHandshakeWith } from '../noise/state.js';
import type { Clock } from '../ops/clock.js';
import type { ByteTransport } from './transport.js';

/** The link's Noise protocol (../shared/DESIGN.md). */
export const LINK_PROTOCOL = 'Noise_XK_25519_ChaChaPoly_BLAKE2b';
/**
 * Bound into the handshake hash: a peer speaking another link version fails the handshake.
 * v2: rekeying rides on data and keepalive frames (kinds 5 and 6); v1's rekey frame (kind 2) is
 * gone, so a v1 peer is refused at the handshake rather than failing at its first rekey.
 */
export const LINK_PROLOGUE = new TextEncoder().encode('backchannel link v2');

const HEADER_LENGTH = 2;
const TAG_LENGTH = 16;
/** The largest frame body: one Noise message. */
export const MAX_FRAME_LENGTH = 65535;
/** The largest message `send` takes: a Noise message less its tag and the kind byte. */
export const MAX_LINK_MESSAGE = MAX_FRAME_LENGTH - TAG_LENGTH - 1;
/** XK messages are 48, 48 and 64 + HANDSHAKE_PAYLOAD_LENGTH bytes; anything longer than this is not ours. */
const MAX_HANDSHAKE_FRAME = 256;
/**
 * The third handshake message always carries this many bytes of payload (encrypted and bound to
 * the initiator's static key): a client's admission to its gateway (src/wire/admission.ts), zeros
 * from every other initiator, so that every link's handshake has the same size on the wire.
 */
export const HANDSHAKE_PAYLOAD_LENGTH = 33;

/**
 * The kind byte that starts every transport frame's plaintext. 2 was v1's rekey frame, shorter
 * than a data frame and sent on a timer, which an observer could see; it is never reused.
 * `dataThenRekey` and `keepaliveThenRekey` are a data or keepalive frame (same body, same size)
 * after which the receiver moves its receiving key forward, as the sender did after sealing it.
 */
const Kind = { data: 0, keepalive: 1, close: 3, ready: 4, dataThenRekey: 5, keepaliveThenRekey: 6 } as const;

/** The rekey point is drawn uniformly in [REKEY_JITTER_LOW, REKEY_JITTER_HIGH] × the configured frames and time. */
const REKEY_JITTER_LOW = 0.5;
const REKEY_JITTER_HIGH = 1.5;

/** Why a link was closed, carried in the close frame. */
export const CloseReason = {
  normal: 0,
  rejected: 1,
  protocol: 2,
  timeout: 3,
  overloaded: 4,
  /** Refusals of a gateway's admission (src/server/admission.ts): an invitation token is required. */
  tokenRequired: 5,
  /** ... the token is not one the operator issued, or another key used it already. */
  tokenInvalid: 6,
  /** ... the gateway holds as many clients as it takes. */
  full: 7,
} as const;
/**
 * Refused until the initiator shows a proof of work of (reason − WORK_REQUIRED_BASE) bits; the
 * close frame's one reason byte carries the cost, so the client learns it without a frame of its own.
 */
export const WORK_REQUIRED_BASE = 64;
/** The highest work a refusal can ask for (bits). */
export const MAX_WORK_BITS = 63;
export type CloseReasonCode = (typeof CloseReason)[keyof typeof CloseReason] | number;

/** What an accept policy may answer: keep the link, refuse it, or refuse it with a reason the initiator is told. */
export type AcceptVerdict = boolean | { readonly refuse: CloseReasonCode };

/** Whether a close reason byte is one this link version knows. */
function knownReason(r: number): boolean {
  return r <= CloseReason.full || (r >= WORK_REQUIRED_BASE && r <= WORK_REQUIRED_BASE + MAX_WORK_BITS);
}

export interface LinkOptions {
  /** Seconds are milliseconds here. The whole handshake, acceptance included. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Send a keepalive after this long without sending. Default 15 s. */
  keepaliveMs?: number;
  /** Fail the link after this long without receiving. Default 60 s; must exceed keepaliveMs. */
  idleTimeoutMs?: number;
  /**
   * Rekey the sending key after about this many data frames: each rekey point is drawn uniformly
   * in [0.5, 1.5] × this. Default 65536.
   */
  rekeyAfterFrames?: number;
  /**
   * ... or after about this long (drawn in [0.5, 1.5] × this), on the first data or keepalive
   * frame after it. Default 10 minutes.
   */
  rekeyAfterMs?: number;
  /** The largest message either side may send. Default and maximum MAX_LINK_MESSAGE. */
  maxMessageLength?: number;
  /** Received messages waiting for `recv` before reading pauses. Default 256. */
  maxQueuedMessages?: number;
  /** Sends waiting for the transport to drain before `send` fails. Default 1024. */
  maxQueuedSends?: number;
  /** Received bytes held while reading is paused on a transport that cannot pause. Default 4 MiB. */
  maxBufferedBytes?: number;
  /**
   * Time for the handshake timeout, keepalives, idle detection and rekeying: the monotonic clock
   * and the platform's timers by default; a test or the simulator passes its own (virtual time).
   */
  clock?: Clock;
}

export interface InitiatorOptions extends LinkOptions {
  /** This node's static X25519 private key. */
  staticKey: Uint8Array;
  /** The responder's static X25519 public key, known beforehand (from the directory). */
  remoteStatic: Uint8Array;
  /** The third handshake message's payload, HANDSHAKE_PAYLOAD_LENGTH bytes (a client's admission); zeros by default. */
  handshakePayload?: Uint8Array;
}

export interface ResponderOptions extends LinkOptions {
  /** This node's static X25519 private key. */
  staticKey: Uint8Array;
  /**
   * Decides whether to keep a link with the peer holding this static public key, given the
   * payload of its third handshake message (HANDSHAKE_PAYLOAD_LENGTH bytes from this version).
   */
  accept(remoteStatic: Uint8Array, payload: Uint8Array): AcceptVerdict | Promise<AcceptVerdict>;
}

export interface LinkCloseInfo {
  /** Who closed it: this side, the peer (with a close frame), or a failure. */
  by: 'local' | 'remote' | 'error';
  /** The close frame's reason, when there was one. */
  reason?: CloseReasonCode;
  /** The failure, when `by` is 'error'. */
  error?: BackchannelError;
}

export interface LinkStats {
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  rekeys: number;
}

interface Resolved<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Resolved<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function linkError(code: ErrorCode, message: string, cause?: unknown): BackchannelError {
  return new BackchannelError(code, `link: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * The responder refused this initiator, with the reason its close frame gave: `ERR_LINK_REJECTED`
 * for a plain refusal, or an admission code a client can explain to its user.
 */
export class LinkRefusedError extends BackchannelError {
  /** The close frame's reason byte. */
  readonly reason: number;
  /** For ERR_ADMISSION_WORK: the bits of work the gateway asks for. */
  readonly workBits: number | null;

  constructor(reason: number) {
    const work = reason >= WORK_REQUIRED_BASE ? reason - WORK_REQUIRED_BASE : null;
    const [code, message]: [ErrorCode, string] =
      work !== null
        ? ['ERR_ADMISSION_WORK', `the gateway requires a proof of work of ${work} bits for a new client (none given, or too weak)`]
        : reason === CloseReason.tokenRequired
          ? ['ERR_ADMISSION_TOKEN_REQUIRED', 'this gateway requires an invitation token from its operator']
          : reason === CloseReason.tokenInvalid
            ? ['ERR_ADMISSION_TOKEN_INVALID', 'the gateway refused the invitation token: not one it issued, or already used by another client']
            : reason === CloseReason.full
              ? ['ERR_ADMISSION_FULL', 'the gateway takes no new clients: it holds as many as its operator allows']
              : ['ERR_LINK_REJECTED', 'the responder refused this static key'];
    super(code, `link: ${message}`);
    this.reason = reason;
    this.workBits = work;
  }
}

function refusal(reason: number): LinkRefusedError {
  return new LinkRefusedError(reason);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`link: ${name} must be a positive integer`);
  return value;
}

interface Settings {
  handshakeTimeoutMs: number;
  keepaliveMs: number;
  idleTimeoutMs: number;
  rekeyAfterFrames: number;
  rekeyAfterMs: number;
  maxMessageLength: number;
  maxQueuedMessages: number;
  maxQueuedSends: number;
  maxBufferedBytes: number;
}

function settings(o: LinkOptions): Settings {
  const s: Settings = {
    handshakeTimeoutMs: positive('handshakeTimeoutMs', o.handshakeTimeoutMs, 10_000),
    keepaliveMs: positive('keepaliveMs', o.keepaliveMs, 15_000),
    idleTimeoutMs: positive('idleTimeoutMs', o.idleTimeoutMs, 60_000),
    rekeyAfterFrames: positive('rekeyAfterFrames', o.rekeyAfterFrames, 65_536),
    rekeyAfterMs: positive('rekeyAfterMs', o.rekeyAfterMs, 600_000),
    maxMessageLength: positive('maxMessageLength', o.maxMessageLength, MAX_LINK_MESSAGE),
    maxQueuedMessages: positive('maxQueuedMessages', o.maxQueuedMessages, 256),
    maxQueuedSends: positive('maxQueuedSends', o.maxQueuedSends, 1024),
    maxBufferedBytes: positive('maxBufferedBytes', o.maxBufferedBytes, 4 << 20),
  };
  if (s.maxMessageLength > MAX_LINK_MESSAGE) throw new RangeError(`link: maxMessageLength must be at most ${MAX_LINK_MESSAGE}`);
  if (s.idleTimeoutMs <= s.keepaliveMs) throw new RangeError('link: idleTimeoutMs must exceed keepaliveMs');
  return s;
}

/**
 * The default clock: monotonic (a wall-clock step must not fire a keepalive or an idle timeout),
 * with timers that never keep a Node process alive on their own.
 */
const monotonicClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const t: unknown = setTimeout(fn, Math.max(0, ms));
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clearTimer(handle) {
    clearTimeout(handle as Parameters<typeof clearTimeout>[0]);
  },
};

type Phase = 'handshake' | 'accepting' | 'awaiting-ready' | 'open' | 'closing' | 'closed';

/**
 * One end of an established link. Create with `Link.initiate` or `Link.respond` (or the TCP and
 * WebSocket helpers, which call them).
 */
export class Link {
  readonly #transport: ByteTransport;
  readonly #s: Settings;
  readonly #initiator: boolean;
  readonly #accept: ResponderOptions['accept'] | undefined;
  #hs: Handshake | null;
  #send: CipherState | null = null;
  #recv: CipherState | null = null;
  #phase: Phase = 'handshake';
  #remoteStatic: Uint8Array | null = null;
  /** The initiator's payload for the third handshake message; the responder's copy of what came in it. */
  #handshakePayload: Uint8Array;
  #handshakeWrites = 0;
  #handshakeHash: Uint8Array | null = null;

  // receive side: unparsed chunks, then decrypted messages waiting for recv()
  readonly #chunks: Uint8Array[] = [];
  #chunkOffset = 0;
  #pendingBytes = 0;
  #paused = false;
  readonly #inbox: Uint8Array[] = [];
  readonly #readers: Resolved<Uint8Array | null>[] = [];

  // send side: sealed frames waiting for the transport to drain
  readonly #outbox: { frame: Uint8Array; done?: Resolved<void> }[] = [];
  #queuedSends = 0;
  #choked = false;

  readonly #clock: Clock;
  #lastSent: number;
  #lastReceived: number;
  /** Randomness for the rekey points: the platform CSPRNG behind `crypto`. */
  readonly #randomBytes: (n: number) => Uint8Array;
  /** The data frame count, and the time, from which the next frame carries a rekey. */
  #rekeyAtFrames = 0;
  #rekeyAtMs = 0;
  #framesSinceRekey = 0;
  #timer: unknown = null;
  readonly #ready = deferred<Link>();
  readonly #closed = deferred<LinkCloseInfo>();
  #closeInfo: LinkCloseInfo | null = null;
  readonly stats: LinkStats = { framesSent: 0, framesReceived: 0, bytesSent: 0, bytesReceived: 0, rekeys: 0 };

  private constructor(transport: ByteTransport, crypto: NoiseCrypto, initiator: boolean, opts: InitiatorOptions | ResponderOptions) {
    this.#transport = transport;
    this.#s = settings(opts);
    this.#clock = opts.clock ?? monotonicClock;
    this.#lastSent = this.#lastReceived = this.#clock.now();
    this.#randomBytes = (n) => crypto.dh.randomBytes(n);
    this.#initiator = initiator;
    this.#accept = initiator ? undefined : (opts as ResponderOptions).accept;
    abytes('staticKey', opts.staticKey, 32);
    if (initiator) abytes('remoteStatic', (opts as InitiatorOptions).remoteStatic, 32);
    else if (typeof this.#accept !== 'function') throw new TypeError('link: accept must be a function');
    const payload = initiator ? (opts as InitiatorOptions).handshakePayload : undefined;
    if (payload !== undefined) abytes('handshakePayload', payload, HANDSHAKE_PAYLOAD_LENGTH);
    this.#handshakePayload = payload === undefined ? new Uint8Array(HANDSHAKE_PAYLOAD_LENGTH) : Uint8Array.from(payload);
    this.#hs = createHandshakeWith(crypto, {
      protocolName: LINK_PROTOCOL,
      initiator,
      prologue: LINK_PROLOGUE,
      s: opts.staticKey,
      ...(initiator ? { rs: (opts as InitiatorOptions).remoteStatic } : {}),
    });
    // The 'closed' promise never rejects; readiness failures reach whoever awaits `ready`.
    this.#ready.promise.catch(() => undefined);
  }

  /** Runs the initiator's side of the handshake over `transport`; resolves once the responder accepted. */
  static initiate(transport: ByteTransport, crypto: NoiseCrypto, opts: InitiatorOptions): Promise<Link> {
    const link = new Link(transport, crypto, true, opts);
    link.#start();
    return link.#ready.promise;
  }

  /** Runs the responder's side; resolves once the initiator is authenticated and accepted. */
  static respond(transport: ByteTransport, crypto: NoiseCrypto, opts: ResponderOptions): Promise<Link> {
    const link = new Link(transport, crypto, false, opts);
    link.#start();
    return link.#ready.promise;
  }

  /** The peer's static public key (a copy). */
  get remoteStatic(): Uint8Array {
    return Uint8Array.from(this.#remoteStatic!);
  }

  /** The Noise handshake hash: the same on both ends, unique to this session. */
  get handshakeHash(): Uint8Array {
    return Uint8Array.from(this.#handshakeHash!);
  }

  get transportKind(): string {
    return this.#transport.kind;
  }

  /** True while messages can be sent. */
  get isOpen(): boolean {
    return this.#phase === 'open';
  }

  /** Resolves once the link is closed, however that happened. Never rejects. */
  get closed(): Promise<LinkCloseInfo> {
    return this.#closed.promise;
  }

  #start(): void {
    this.#timer = this.#clock.setTimer(() => this.#fail(linkError('ERR_LINK_TIMEOUT', 'handshake timed out')), this.#s.handshakeTimeoutMs);
    this.#transport.start({
      onData: (chunk) => this.#onData(chunk),
      onDrain: () => this.#onDrain(),
      onClose: (error) => this.#onTransportClose(error),
    });
    if (this.#initiator) this.#writeHandshake();
  }

  // ---- sending -------------------------------------------------------------------------------

  /**
   * Sends one message. Resolves once it is handed to the transport; waits while the transport's
   * buffer is full. The message is encrypted (and copied) before this returns.
   * @throws {BackchannelError} ERR_LINK_CLOSED when the link is not open, ERR_LINK_FRAME for a
   *   message longer than maxMessageLength, ERR_LINK_BACKPRESSURE when maxQueuedSends sends
   *   already wait.
   */
  send(message: Uint8Array): Promise<void> {
    try {
      this.#checkSendable(message);
      if (!this.#choked && this.#outbox.length === 0) {
        this.#sendData(message);
        return Promise.resolve();
      }
      if (this.#queuedSends >= this.#s.maxQueuedSends) throw linkError('ERR_LINK_BACKPRESSURE', `${this.#queuedSends} sends already wait for the transport`);
      const done = deferred<void>();
      this.#sendData(message, done);
      return done.promise;
    } catch (e) {
      // Only a transport's write can throw something that is not an Error; callers still get a code.
      return Promise.reject(e instanceof Error ? e : linkError('ERR_LINK_TRANSPORT', 'the transport threw a non-Error value', e));
    }
  }

  /**
   * Sends one message if the transport has room now, and returns true; returns false (and sends
   * nothing) when it is full. For senders that drop rather than wait, such as a mix node.
   * @throws {BackchannelError} as `send`, but never ERR_LINK_BACKPRESSURE.
   */
  trySend(message: Uint8Array): boolean {
    this.#checkSendable(message);
    if (this.#choked || this.#outbox.length > 0) return false;
    this.#sendData(message);
    return true;
  }

  /** True when `trySend` would send now. */
  get writable(): boolean {
    return this.#phase === 'open' && !this.#choked && this.#outbox.length === 0;
  }

  #checkSendable(message: Uint8Array): void {
    if (this.#phase !== 'open') throw linkError('ERR_LINK_CLOSED', 'link is not open');
    abytes('message', message);
    if (message.length > this.#s.maxMessageLength) throw linkError('ERR_LINK_FRAME', `message of ${message.length} bytes exceeds the link's limit of ${this.#s.maxMessageLength}`);
  }

  #sendData(message: Uint8Array, done?: Resolved<void>): void {
    if (done) this.#queuedSends++;
    const rekey = ++this.#framesSinceRekey >= this.#rekeyAtFrames || this.#clock.now() >= this.#rekeyAtMs;
    this.#sendFrame(rekey ? Kind.dataThenRekey : Kind.data, message, done);
    if (rekey) this.#rekeyed();
  }

  /** One transport frame: length, then kind and body encrypted in place under the sending key. */
  #seal(kind: number, body: Uint8Array | null): Uint8Array {
    const plainLength = 1 + (body ? body.length : 0);
    const frame = new Uint8Array(HEADER_LENGTH + plainLength + TAG_LENGTH);
    frame[HEADER_LENGTH] = kind;
    if (body) frame.set(body, HEADER_LENGTH + 1);
    const sealed = frame.subarray(HEADER_LENGTH);
    this.#send!.encryptInto(sealed, EMPTY, sealed.subarray(0, plainLength));
    const length = plainLength + TAG_LENGTH;
    frame[0] = length >>> 8;
    frame[1] = length & 0xff;
    return frame;
  }

  /** Seals one transport frame and writes it (or queues it behind earlier frames). */
  #sendFrame(kind: number, body: Uint8Array | null, done?: Resolved<void>): void {
    const frame = this.#seal(kind, body);
    this.#lastSent = this.#clock.now();
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
    if (!this.#choked && this.#outbox.length === 0) {
      this.#write(frame);
      done?.resolve();
      if (done) this.#queuedSends--;
    } else {
      this.#outbox.push(done ? { frame, done } : { frame });
    }
  }

  #write(frame: Uint8Array): void {
    if (!this.#transport.write(frame)) this.#choked = true;
  }

  #writeRaw(message: Uint8Array): void {
    const frame = new Uint8Array(HEADER_LENGTH + message.length);
    frame[0] = message.length >>> 8;
    frame[1] = message.length & 0xff;
    frame.set(message, HEADER_LENGTH);
    this.#lastSent = this.#clock.now();
    this.#write(frame);
  }

  #onDrain(): void {
    this.#choked = false;
    while (!this.#choked && this.#outbox.length > 0) {
      const { frame, done } = this.#outbox.shift()!;
      this.#write(frame);
      if (done) {
        this.#queuedSends--;
        done.resolve();
      }
    }
    if (this.#phase === 'closing' && this.#outbox.length === 0) this.#transport.end();
  }

  /**
   * After sealing a frame that tells the peer to rekey: moves the sending key forward (Noise
   * REKEY, section 11.3) and draws the next rekey point.
   */
  #rekeyed(): void {
    this.#send!.rekey();
    this.stats.rekeys++;
    this.#drawRekeyPoint();
  }

  /**
   * The next rekey point: a frame count and a time, each uniform in [0.5, 1.5] × the configured
   * value, from now. A fixed period would not show on the wire (the rekey rides on frames that
   * go out anyway), but a drawn one leaves nothing to line up even if a frame size ever did.
   */
  #drawRekeyPoint(): void {
    const n = this.#s.rekeyAfterFrames;
    const lo = Math.max(1, Math.ceil(n * REKEY_JITTER_LOW));
    const hi = Math.max(lo, Math.floor(n * REKEY_JITTER_HIGH));
    this.#rekeyAtFrames = lo + Math.floor(this.#uniform() * (hi - lo + 1));
    this.#framesSinceRekey = 0;
    this.#rekeyAtMs = this.#clock.now() + this.#s.rekeyAfterMs * (REKEY_JITTER_LOW + this.#uniform() * (REKEY_JITTER_HIGH - REKEY_JITTER_LOW));
  }

  /** A uniform draw in [0, 1) with 48 random bits. */
  #uniform(): number {
    const b = this.#randomBytes(6);
    let v = 0;
    for (let i = 0; i < 6; i++) v = v * 256 + b[i]!;
    return v / 2 ** 48;
  }

  // ---- receiving -----------------------------------------------------------------------------

  /**
   * The next message; null once the link closed cleanly (the peer's close frame or ours) and
   * every message before it was read.
   * @throws {BackchannelError} the failure that ended the link, when it did not close cleanly.
   */
  recv(): Promise<Uint8Array | null> {
    const m = this.#inbox.shift();
    if (m !== undefined) {
      this.#maybeResume();
      return Promise.resolve(m);
    }
    if (this.#closeInfo) {
      return this.#closeInfo.error ? Promise.reject(this.#closeInfo.error) : Promise.resolve(null);
    }
    const d = deferred<Uint8Array | null>();
    this.#readers.push(d);
    return d.promise;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const m = await this.recv();
      if (m === null) return;
      yield m;
    }
  }

  #onData(chunk: Uint8Array): void {
    if (this.#phase === 'closed' || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#pendingBytes += chunk.length;
    this.stats.bytesReceived += chunk.length;
    if (this.#pendingBytes > this.#s.maxBufferedBytes) {
      this.#fail(linkError('ERR_LINK_BACKPRESSURE', 'peer sent more than the receive buffer holds'), CloseReason.overloaded);
      return;
    }
    this.#pump();
  }

  /** Handles every complete frame buffered, unless the inbox is full. */
  #pump(): void {
    while (!this.#paused && this.#phase !== 'closed') {
      if (this.#phase === 'accepting') return; // frames wait until the accept callback answers
      try {
        const frame = this.#takeFrame();
        if (frame === null) return;
        this.#onFrame(frame);
      } catch (e) {
        this.#fail(isBackchannelError(e) ? e : linkError('ERR_LINK_PROTOCOL', 'frame handling failed', e), CloseReason.protocol);
        return;
      }
      if (this.#inbox.length >= this.#s.maxQueuedMessages) {
        this.#paused = true;
        if (this.#transport.canPause) this.#transport.pause();
      }
    }
  }

  #maybeResume(): void {
    if (this.#paused && this.#inbox.length <= this.#s.maxQueuedMessages >>> 1) {
      this.#paused = false;
      if (this.#transport.canPause) this.#transport.resume();
      this.#pump();
    }
  }

  #byteAt(i: number): number {
    let off = this.#chunkOffset + i;
    for (const c of this.#chunks) {
      if (off < c.length) return c[off]!;
      off -= c.length;
    }
    return 0;
  }

  /** The next frame body (without its length), a view where it lies in one chunk; null if incomplete. */
  #takeFrame(): Uint8Array | null {
    if (this.#pendingBytes < HEADER_LENGTH) return null;
    const length = (this.#byteAt(0) << 8) | this.#byteAt(1);
    const limit = this.#phase === 'open' || this.#phase === 'closing' || this.#phase === 'awaiting-ready' ? this.#s.maxMessageLength + 1 + TAG_LENGTH : MAX_HANDSHAKE_FRAME;
    if (length === 0 || length > limit) throw linkError('ERR_LINK_FRAME', `frame length ${length} outside 1..${limit}`);
    if (this.#pendingBytes < HEADER_LENGTH + length) return null;
    const first = this.#chunks[0]!;
    let frame: Uint8Array;
    if (first.length - this.#chunkOffset >= HEADER_LENGTH + length) {
      frame = first.subarray(this.#chunkOffset + HEADER_LENGTH, this.#chunkOffset + HEADER_LENGTH + length);
      this.#consume(HEADER_LENGTH + length);
    } else {
      this.#consume(HEADER_LENGTH);
      frame = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const c = this.#chunks[0]!;
        const n = Math.min(length - filled, c.length - this.#chunkOffset);
        frame.set(c.subarray(this.#chunkOffset, this.#chunkOffset + n), filled);
        filled += n;
        this.#consume(n);
      }
    }
    return frame;
  }

  #consume(n: number): void {
    this.#pendingBytes -= n;
    while (n > 0) {
      const c = this.#chunks[0]!;
      const left = c.length - this.#chunkOffset;
      if (n < left) {
        this.#chunkOffset += n;
        return;
      }
      n -= left;
      this.#chunks.shift();
      this.#chunkOffset = 0;
    }
  }

  #onFrame(frame: Uint8Array): void {
    this.#lastReceived = this.#clock.now();
    this.stats.framesReceived++;
    if (this.#phase === 'handshake') {
      this.#readHandshake(frame);
      return;
    }
    const plain = new Uint8Array(frame.length - TAG_LENGTH);
    this.#recv!.decryptInto(plain, EMPTY, frame);
    const kind = plain[0];
    if (kind === undefined) throw linkError('ERR_LINK_PROTOCOL', 'empty frame');
    if (this.#phase === 'awaiting-ready') {
      if (kind === Kind.ready && plain.length === 1) {
        this.#open();
        return;
      }
      if (kind === Kind.close && plain.length === 2 && (plain[1] === CloseReason.rejected || (plain[1]! > CloseReason.overloaded && knownReason(plain[1]!)))) {
        this.#fail(refusal(plain[1]!));
        return;
      }
      throw linkError('ERR_LINK_PROTOCOL', 'expected the ready frame');
    }
    switch (kind) {
      case Kind.data:
        this.#deliver(plain.subarray(1));
        return;
      case Kind.dataThenRekey:
        this.#recv!.rekey();
        this.#deliver(plain.subarray(1));
        return;
      case Kind.keepalive:
        if (plain.length !== 1) break;
        return;
      case Kind.keepaliveThenRekey:
        if (plain.length !== 1) break;
        this.#recv!.rekey();
        return;
      case Kind.close:
        if (plain.length !== 2 || !knownReason(plain[1]!)) break;
        this.#finish({ by: 'remote', reason: plain[1] as CloseReasonCode });
        return;
    }
    throw linkError('ERR_LINK_PROTOCOL', `unexpected frame kind ${kind} of ${plain.length} bytes`);
  }

  #deliver(message: Uint8Array): void {
    const reader = this.#readers.shift();
    if (reader) reader.resolve(message);
    else this.#inbox.push(message);
  }

  // ---- handshake -----------------------------------------------------------------------------

  #writeHandshake(): void {
    // XK: the initiator writes messages 1 and 3, the payload goes in 3 (under every DH, bound to its static key).
    const third = this.#initiator && this.#handshakeWrites++ === 1;
    this.#writeRaw(this.#hs!.writeMessage(third ? this.#handshakePayload : undefined));
    if (this.#hs!.finished) this.#afterHandshake();
  }

  #readHandshake(frame: Uint8Array): void {
    const hs = this.#hs!;
    try {
      const payload = hs.readMessage(frame);
      if (hs.finished && !this.#initiator) this.#handshakePayload = payload.slice();
    } catch (e) {
      throw linkError('ERR_LINK_HANDSHAKE', 'handshake failed', e);
    }
    if (hs.finished) this.#afterHandshake();
    else this.#writeHandshake();
  }

  #afterHandshake(): void {
    const hs = this.#hs!;
    this.#remoteStatic = hs.remoteStatic;
    this.#handshakeHash = hs.handshakeHash;
    const [i2r, r2i] = hs.split();
    this.#send = this.#initiator ? i2r : r2i;
    this.#recv = this.#initiator ? r2i : i2r;
    this.#hs = null;
    if (this.#initiator) {
      this.#phase = 'awaiting-ready';
      return;
    }
    this.#phase = 'accepting';
    let verdict: AcceptVerdict | Promise<AcceptVerdict>;
    try {
      verdict = this.#accept!(Uint8Array.from(this.#remoteStatic!), this.#handshakePayload);
    } catch (e) {
      // #decide wraps whatever the policy threw in ERR_LINK_REJECTED, keeping it as the cause.
      verdict = Promise.reject(e);
    }
    Promise.resolve(verdict).then(
      (v) => this.#decide(v === true, undefined, typeof v === 'object' && v !== null && knownReason(v.refuse) ? v.refuse : CloseReason.rejected),
      (e: unknown) => this.#decide(false, e),
    );
  }

  #decide(ok: boolean, cause?: unknown, reason: CloseReasonCode = CloseReason.rejected): void {
    if (this.#phase !== 'accepting') return; // failed or timed out meanwhile
    if (!ok) {
      // Tell the initiator (its connect fails with ERR_LINK_REJECTED or the admission's code), flush, then close.
      const error = linkError('ERR_LINK_REJECTED', cause === undefined ? 'peer refused by the accept policy' : 'accept policy failed', cause);
      this.#sendFrame(Kind.close, Uint8Array.of(reason));
      this.#phase = 'closed';
      this.#closeInfo = { by: 'error', error };
      this.#clearTimer();
      this.#ready.reject(error);
      this.#transport.end();
      const t = this.#clock.setTimer(() => this.#transport.destroy(), this.#s.handshakeTimeoutMs);
      void this.#closed.promise.then(() => this.#clock.clearTimer(t));
      return;
    }
    this.#sendFrame(Kind.ready, null);
    this.#open();
    this.#pump();
  }

  #open(): void {
    this.#phase = 'open';
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#lastReceived = this.#clock.now();
    this.#drawRekeyPoint();
    this.#scheduleTick();
    this.#ready.resolve(this);
  }

  /**
   * One timer for keepalives and the idle timeout, set for the earlier of their deadlines as they
   * stand (the last send plus keepaliveMs, the last receipt plus idleTimeoutMs). Sends and
   * receipts only move the deadlines later, so the timer is not reset per frame: when it fires
   * early it is set again for the deadlines as they are then. A keepalive thus leaves exactly
   * keepaliveMs after the last frame sent, never on a period of its own.
   */
  #scheduleTick(): void {
    const now = this.#clock.now();
    let keepalive = this.#lastSent + this.#s.keepaliveMs;
    // Frames waiting for the transport to drain are sending enough: look again a keepalive later.
    if (this.#outbox.length > 0 && keepalive <= now) keepalive = now + this.#s.keepaliveMs;
    const due = Math.min(keepalive, this.#lastReceived + this.#s.idleTimeoutMs);
    this.#timer = this.#clock.setTimer(() => this.#tick(), Math.max(MIN_TICK_MS, due - now));
  }

  #tick(): void {
    this.#timer = null;
    if (this.#phase !== 'open') return;
    const t = this.#clock.now();
    if (t - this.#lastReceived >= this.#s.idleTimeoutMs) {
      this.#fail(linkError('ERR_LINK_TIMEOUT', `nothing received for ${this.#s.idleTimeoutMs} ms`), CloseReason.timeout);
      return;
    }
    // Only after keepaliveMs without sending: a short frame then tells nothing silence did not.
    // A rekey that fell due while the link was quiet rides on it (same size as any keepalive).
    if (t - this.#lastSent >= this.#s.keepaliveMs && this.#outbox.length === 0) {
      const rekey = t >= this.#rekeyAtMs;
      this.#sendFrame(rekey ? Kind.keepaliveThenRekey : Kind.keepalive, null);
      if (rekey) this.#rekeyed();
    }
    this.#scheduleTick();
  }

  // ---- closing -------------------------------------------------------------------------------

  /**
   * Closes cleanly: queued messages are flushed, then a close frame tells the peer, then the
   * transport ends. Resolves when the transport is closed.
   */
  close(reason: CloseReasonCode = CloseReason.normal): Promise<LinkCloseInfo> {
    if (this.#phase === 'open') {
      this.#sendFrame(Kind.close, Uint8Array.of(reason));
      this.#phase = 'closing';
      this.#readersDone();
      if (this.#outbox.length === 0) this.#transport.end();
      const t = this.#clock.setTimer(() => this.#transport.destroy(), this.#s.handshakeTimeoutMs);
      void this.#closed.promise.then(() => this.#clock.clearTimer(t));
    } else if (this.#phase !== 'closing' && this.#phase !== 'closed') {
      this.#fail(linkError('ERR_LINK_CLOSED', 'closed before the handshake finished'));
    }
    return this.#closed.promise;
  }

  /** Pending readers get null (or the queued messages first); later sends fail. */
  #readersDone(): void {
    if (this.#inbox.length === 0) for (const r of this.#readers.splice(0)) r.resolve(null);
  }

  /** The peer closed with a close frame. */
  #finish(info: LinkCloseInfo): void {
    this.#phase = 'closed';
    this.#closeInfo = info;
    this.#clearTimer();
    this.#rejectSends(linkError('ERR_LINK_CLOSED', 'the peer closed the link'));
    this.#readersDone();
    this.#transport.end();
  }

  #onTransportClose(error?: Error): void {
    if (this.#phase === 'closing') {
      this.#phase = 'closed';
      this.#closeInfo ??= { by: 'local' };
      this.#clearTimer();
      this.#rejectSends(linkError('ERR_LINK_CLOSED', 'the connection ended before queued messages were written'));
      this.#wipeKeys();
      this.#readersDone();
      this.#closed.resolve(this.#closeInfo);
      return;
    }
    if (this.#phase === 'closed') {
      this.#wipeKeys();
      this.#closed.resolve(this.#closeInfo!);
      return;
    }
    if (this.#phase !== 'open') {
      this.#fail(linkError('ERR_LINK_HANDSHAKE', 'connection closed during the handshake', error));
      return;
    }
    this.#fail(linkError('ERR_LINK_CLOSED', error ? 'transport failed' : 'the peer closed the connection without a close frame', error));
  }

  /** Ends the link after an error: tells the peer when it can, drops the transport, wakes everyone. */
  #fail(error: BackchannelError, reason?: CloseReasonCode): void {
    if (this.#phase === 'closed') return;
    if (reason !== undefined && this.#send && (this.#phase === 'open' || this.#phase === 'awaiting-ready')) {
      try {
        this.#write(this.#seal(Kind.close, Uint8Array.of(reason)));
      } catch {
        // the transport is already failing
      }
    }
    this.#phase = 'closed';
    this.#closeInfo = { by: 'error', error };
    this.#clearTimer();
    this.#hs?.destroy();
    this.#rejectSends(error);
    for (const r of this.#readers.splice(0)) r.reject(error);
    this.#inbox.length = 0;
    this.#chunks.length = 0;
    this.#pendingBytes = 0;
    this.#ready.reject(error);
    this.#transport.destroy();
    this.#wipeKeys();
    this.#closed.resolve(this.#closeInfo);
  }

  #rejectSends(error: BackchannelError): void {
    for (const { done } of this.#outbox.splice(0)) done?.reject(error);
    this.#queuedSends = 0;
  }

  #clearTimer(): void {
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  #wipeKeys(): void {
    this.#send?.destroy();
    this.#recv?.destroy();
  }
}

const EMPTY = new Uint8Array(0);
/** The shortest wait of the keepalive timer, so that a deadline just passed never spins it. */
const MIN_TICK_MS = 1;
