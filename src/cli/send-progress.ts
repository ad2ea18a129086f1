/**
 * What `backchannel client send` says on stderr while the client sends a message: the events the
 * daemon streams (daemon.ts: attempt, progress, then delivered, sent or failed) turned into the
 * states a user can follow. The names, in docs/client.md:
 *
 * - sent: every fragment left this client (into the mix network, towards the recipient's gateway);
 * - stored at the recipient's gateway: every fragment was acknowledged by that gateway, which keeps
 *   it until the recipient's client fetches it (the engine's 'delivered'); the recipient may not
 *   have read it yet;
 * - retry N: no acknowledgement came in time for some fragment, which goes again (on a new path);
 * - failed: retries ran out (or the message could not be sent at all).
 *
 * For a message of several fragments a progress line: on a terminal one line redrawn in place,
 * elsewhere a line per tenth of the message stored (or, without a known length, at most every
 * 5 s). It says fragments sent and stored, the percentage stored, the bytes stored (when the
 * length is known) and the time since the start; no estimate of the time left, which the
 * retransmission backoff would make a guess.
 */
import { MAX_ATTEMPTS } from '../client/client.js';
import { clock } from './progress.js';

/** Plain progress lines (not on a terminal, without a known length) come at most this often. */
const PLAIN_INTERVAL_MS = 5000;

/** A byte count for people: "900 B", "12 kB", "1.2 MB" (powers of 1000). */
export function byteSize(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1_000_000) return `${Math.floor(n / 1000)} kB`;
  return `${(Math.floor(n / 100_000) / 10).toFixed(1)} MB`;
}

/** The engine's reason when retries run out (client.ts). */
const NO_ACK_REASON = 'no acknowledgement after every retry';

export interface SendReporterOptions {
  /** The message's fragments. */
  readonly fragments: number;
  /** A reply through SURBs: never acknowledged, done once it left. */
  readonly reply: boolean;
  /** Where the lines go (process.stderr). */
  readonly stream: { write(text: string): unknown; readonly isTTY?: boolean };
  /** Milliseconds, for the plain lines' throttle and the elapsed time (default Date.now). */
  readonly now?: () => number;
  /** The bytes the fragments carry (the file's length): shown, and off a terminal a line per tenth. */
  readonly length?: number;
  /** Whose gateway stores it, in the lines (default "the recipient's"). */
  readonly recipient?: string;
  /** When the sending started (ms of `now`; default: when the reporter was made). */
  readonly start?: number;
}

/**
 * Why a message failed, in words a user can act on: the engine's reason, and for retries that ran
 * out, what usually causes that.
 */
export function failureExplanation(reason: string): string {
  if (reason === NO_ACK_REASON) {
    return (
      `no acknowledgement from the recipient's gateway after ${MAX_ATTEMPTS} attempts. ` +
      "Likely causes: the recipient's gateway is down, the address is wrong, or the recipient's client " +
      'has never connected to its gateway (a gateway keeps mail only for clients it knows). Check the address, ' +
      'and try again later'
    );
  }
  return reason;
}

/** Turns the daemon's send events into lines on a stream; see the module comment for the states. */
export class SendReporter {
  readonly #o: SendReporterOptions;
  readonly #now: () => number;
  readonly #tty: boolean;
  readonly #left = new Set<number>();
  #acknowledged = 0;
  #sentSaid = false;
  #maxAttempt = 1;
  #barShown = false;
  #lastPlain: number;
  #lastTenth = 0;
  readonly #start: number;
  readonly #whose: string;

  constructor(options: SendReporterOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#tty = options.stream.isTTY === true;
    this.#lastPlain = this.#now();
    this.#start = options.start ?? this.#lastPlain;
    this.#whose = options.recipient === undefined ? "the recipient's" : `${options.recipient}'s`;
  }

  /** Fragment `index` left for the `attempt`-th time. */
  attempt(index: number, attempt: number): void {
    this.#left.add(index);
    if (attempt > this.#maxAttempt) {
      this.#maxAttempt = attempt;
      this.#line(`retry ${attempt - 1}: no acknowledgement yet, sending again (attempt ${attempt} of ${MAX_ATTEMPTS})`);
    }
    if (!this.#sentSaid && this.#left.size >= this.#o.fragments && !this.#o.reply) {
      this.#sentSaid = true;
      const what = this.#o.fragments === 1 ? 'the message left this client' : `all ${this.#o.fragments} fragments left this client`;
      this.#line(`sent: ${what}; waiting for ${this.#whose} gateway to acknowledge it`);
    }
    this.#bar();
  }

  /** `done` fragments acknowledged (a reply: sent). */
  progress(done: number): void {
    this.#acknowledged = done;
    this.#bar();
  }

  /** Clears the progress line, if one is drawn. */
  finish(): void {
    if (this.#barShown) this.#o.stream.write('\r\x1b[K');
    this.#barShown = false;
  }

  #line(text: string): void {
    this.finish();
    this.#o.stream.write(`${text}\n`);
  }

  /** For a message of several fragments: how many left, how many are stored, and since when. */
  #bar(): void {
    const n = this.#o.fragments;
    if (n <= 1) return;
    const done = Math.min(n, this.#o.reply ? this.#left.size : this.#acknowledged);
    const parts = [
      this.#o.reply
        ? `sending: ${this.#left.size}/${n} fragments sent`
        : `sending: ${this.#left.size}/${n} fragments sent, ${this.#acknowledged}/${n} stored at ${this.#whose} gateway`,
      `${Math.floor((100 * done) / n)}%`,
    ];
    const length = this.#o.length;
    if (length !== undefined) parts.push(`${byteSize(Math.floor((length * done) / n))} of ${byteSize(length)}`);
    const t = this.#now();
    parts.push(`${clock((t - this.#start) / 1000)} elapsed`);
    const text = parts.join(' · ');
    if (this.#tty) {
      this.#o.stream.write(`\r\x1b[K${text}`);
      this.#barShown = true;
      return;
    }
    if (length !== undefined) {
      const tenth = Math.floor((10 * done) / n);
      if (tenth <= this.#lastTenth) return;
      this.#lastTenth = tenth;
    } else {
      if (t - this.#lastPlain < PLAIN_INTERVAL_MS) return;
      this.#lastPlain = t;
    }
    this.#o.stream.write(`${text}\n`);
  }
}
