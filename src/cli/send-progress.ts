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
 */
import { MAX_ATTEMPTS } from '../client/client.js';

/** Plain progress lines (not on a terminal) come at most this often. */
const PLAIN_INTERVAL_MS = 5000;

/** The engine's reason when retries run out (client.ts). */
const NO_ACK_REASON = 'no acknowledgement after every retry';

export interface SendReporterOptions {
  /** The message's fragments. */
  readonly fragments: number;
  /** A reply through SURBs: never acknowledged, done once it left. */
  readonly reply: boolean;
  /** Where the lines go (process.stderr). */
  readonly stream: { write(text: string): unknown; readonly isTTY?: boolean };
  /** Milliseconds, for the plain lines' throttle (default Date.now). */
  readonly now?: () => number;
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

  constructor(options: SendReporterOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#tty = options.stream.isTTY === true;
    this.#lastPlain = this.#now();
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
      this.#line(`sent: ${what}; waiting for the recipient's gateway to acknowledge it`);
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

  /** For a message of several fragments: how many left, how many are stored. */
  #bar(): void {
    const n = this.#o.fragments;
    if (n <= 1) return;
    const text = this.#o.reply
      ? `sending: ${this.#left.size}/${n} fragments sent`
      : `sending: ${this.#left.size}/${n} fragments sent, ${this.#acknowledged}/${n} stored at the recipient's gateway`;
    if (this.#tty) {
      this.#o.stream.write(`\r\x1b[K${text}`);
      this.#barShown = true;
      return;
    }
    const t = this.#now();
    if (t - this.#lastPlain < PLAIN_INTERVAL_MS) return;
    this.#lastPlain = t;
    this.#o.stream.write(`${text}\n`);
  }
}
