/**
 * Keeps a node (or any long-running process) on the current consensus document: fetches the
 * current epoch's document until it has one, fetches the next epoch's before the boundary and
 * switches to it on time, and when no document for a new epoch can be had, keeps the last valid
 * one until it expires (a document for epoch E is usable until the end of E + 1).
 *
 * Node only: it counts staleness in a prom-client registry. Time comes only from the Clock.
 */
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import { aint } from '../util/bytes.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/log.js';
import { fetchDocument } from './client.js';
import { documentExpiresAt, epochAt, epochStart } from './document.js';
import type { Ed25519 } from './ed25519.js';
import type { AuthorityInfo, SignedDocument } from './types.js';

/** Polls per epoch while waiting for a document: period/20, kept within [500 ms, 10 s]. */
const POLLS_PER_EPOCH = 20;
const MIN_POLL_MS = 500;
const MAX_POLL_MS = 10_000;
/** Poll interval before the first document tells the epoch period. */
const FIRST_POLL_MS = 1000;
/** The next epoch's document is published from 3/4 of an epoch (docs/directory.md); look for it from then. */
const NEXT_DOCUMENT_FROM = 3 / 4;

/** The counter of epochs in which the follower had to keep using an older document. */
export const STALE_DOCUMENT_METRIC = 'backchannel_pki_stale_document_total';

export interface DocumentFollowerInit {
  readonly authorities: readonly AuthorityInfo[];
  /** Valid signatures a document needs. */
  readonly threshold: number;
  /** Called each time the document in use changes (a newer epoch). Exceptions are logged, not propagated. */
  readonly onDocument: (signed: SignedDocument) => void;
  /** Called when the document in use expired and no newer one could be had. */
  readonly onExpired?: () => void;
  /** Per-request timeout. Default 5 s. */
  readonly timeoutMs?: number;
}

export interface DocumentFollowerComponents {
  readonly clock: Clock;
  readonly log: Logger;
  readonly registry: Registry;
  readonly ed: Ed25519;
  readonly fetch?: typeof fetch;
}

/** The poll interval for an epoch period. */
export function pollIntervalMs(periodMs: number): number {
  return Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, Math.floor(periodMs / POLLS_PER_EPOCH)));
}

/**
 * Follows the documents the authorities publish.
 * @example
 *   const f = new DocumentFollower({ authorities, threshold, onDocument: (d) => use(d) }, { clock, log, registry, ed });
 *   f.start(); ... f.stop();
 */
export class DocumentFollower {
  private readonly init: DocumentFollowerInit;
  private readonly c: DocumentFollowerComponents;
  private readonly log: Logger;
  private readonly stale: Counter;
  private inUse: SignedDocument | null = null;
  private upcoming: SignedDocument | null = null;
  private staleCountedFor = -1;
  private running = false;
  private timer: unknown = null;
  private abort: AbortController | null = null;

  /** @throws {RangeError} for a threshold outside 1..authorities.length. */
  constructor(init: DocumentFollowerInit, components: DocumentFollowerComponents) {
    aint('threshold', init.threshold, 1, Math.max(1, init.authorities.length));
    if (typeof init.onDocument !== 'function') throw new TypeError('"onDocument" expected a function');
    this.init = init;
    this.c = components;
    this.log = components.log.child('pki');
    const existing = components.registry.getSingleMetric(STALE_DOCUMENT_METRIC);
    this.stale =
      existing instanceof Counter
        ? (existing as Counter)
        : new Counter({ name: STALE_DOCUMENT_METRIC, help: 'Epochs in which a node kept using the previous document', registers: [components.registry] });
  }

  /** Starts polling (at once). Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake(0);
  }

  /** Stops polling and cancels a request in flight. */
  stop(): void {
    this.running = false;
    if (this.timer !== null) this.c.clock.clearTimer(this.timer);
    this.timer = null;
    this.abort?.abort();
    this.abort = null;
  }

  /** The document in use, or null before the first one and after it expired. */
  current(): SignedDocument | null {
    return this.inUse;
  }

  /** The next epoch's document when it has already been fetched, or null. */
  next(): SignedDocument | null {
    return this.upcoming;
  }

  private wake(delayMs: number): void {
    if (!this.running) return;
    if (this.timer !== null) this.c.clock.clearTimer(this.timer);
    this.timer = this.c.clock.setTimer(() => {
      this.timer = null;
      void this.poll();
    }, Math.max(0, delayMs));
  }

  private async fetch(epoch: number | 'current'): Promise<SignedDocument | null> {
    const abort = new AbortController();
    this.abort = abort;
    try {
      return await fetchDocument({
        authorities: this.init.authorities,
        threshold: this.init.threshold,
        epoch,
        ed: this.c.ed,
        clock: this.c.clock,
        signal: abort.signal,
        ...(this.c.fetch === undefined ? {} : { fetch: this.c.fetch }),
        ...(this.init.timeoutMs === undefined ? {} : { timeoutMs: this.init.timeoutMs }),
      });
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : 'unknown';
      this.log.debug('no document', { epoch: epoch === 'current' ? -1 : epoch, code });
      return null;
    } finally {
      if (this.abort === abort) this.abort = null;
    }
  }

  private adopt(signed: SignedDocument): void {
    this.inUse = signed;
    if (this.upcoming !== null && this.upcoming.document.epoch <= signed.document.epoch) this.upcoming = null;
    this.log.info('document in use', { epoch: signed.document.epoch, nodes: signed.document.nodes.length, signatures: signed.signatures.length });
    try {
      this.init.onDocument(signed);
    } catch (err) {
      this.log.error('onDocument failed', { code: err instanceof Error && 'code' in err ? String(err.code) : 'exception' });
    }
  }

  private async poll(): Promise<void> {
    if (!this.running) return;
    try {
      await this.step();
    } catch (err) {
      this.log.error('follower step failed', { code: err instanceof Error && 'code' in err ? String(err.code) : 'exception' });
    }
    if (this.running) this.wake(this.nextDelay());
  }

  private async step(): Promise<void> {
    if (this.inUse === null) {
      const up = this.upcoming;
      if (up !== null && epochAt(this.c.clock.now(), up.document.params.epochPeriodMs) >= up.document.epoch) {
        this.adopt(up);
        this.noteStaleness();
        return;
      }
      const got = await this.fetch('current');
      if (!this.running || got === null) return;
      const period = got.document.params.epochPeriodMs;
      const now = this.c.clock.now();
      if (now >= documentExpiresAt(got.document.epoch, period)) return;
      if (got.document.epoch > epochAt(now, period)) {
        // An authority's clock runs ahead of ours: this is the next epoch's document.
        this.upcoming = got;
        return;
      }
      this.adopt(got);
      this.noteStaleness();
      return;
    }
    const period = this.inUse.document.params.epochPeriodMs;
    const now = this.c.clock.now();
    const cur = epochAt(now, period);
    if (this.inUse.document.epoch < cur) {
      if (this.upcoming !== null && this.upcoming.document.epoch === cur) {
        this.adopt(this.upcoming);
        return;
      }
      const got = await this.fetch(cur);
      if (!this.running) return;
      if (got !== null) {
        this.adopt(got);
        return;
      }
      this.noteStaleness();
      return;
    }
    if (this.inUse.document.epoch === cur && this.upcoming === null && now >= epochStart(cur, period) + NEXT_DOCUMENT_FROM * period) {
      const got = await this.fetch(cur + 1);
      if (this.running && got !== null && this.inUse.document.epoch < got.document.epoch) this.upcoming = got;
    }
  }

  /** Counts (once per epoch) a document in use that is not the current epoch's; drops it once expired. */
  private noteStaleness(): void {
    const inUse = this.inUse;
    if (inUse === null) return;
    const period = inUse.document.params.epochPeriodMs;
    const now = this.c.clock.now();
    const cur = epochAt(now, period);
    if (inUse.document.epoch >= cur) return;
    if (now >= documentExpiresAt(inUse.document.epoch, period)) {
      this.inUse = null;
      this.log.warn('document expired, none newer available', { epoch: inUse.document.epoch, current: cur });
      try {
        this.init.onExpired?.();
      } catch {
        this.log.error('onExpired failed');
      }
      return;
    }
    if (this.staleCountedFor !== cur) {
      this.staleCountedFor = cur;
      this.stale.inc();
      this.log.warn('using the previous epoch document', { epoch: inUse.document.epoch, current: cur });
    }
  }

  private nextDelay(): number {
    if (this.inUse === null) {
      const up = this.upcoming;
      if (up === null) return FIRST_POLL_MS;
      return Math.min(FIRST_POLL_MS, epochStart(up.document.epoch, up.document.params.epochPeriodMs) - this.c.clock.now());
    }
    const period = this.inUse.document.params.epochPeriodMs;
    const poll = pollIntervalMs(period);
    const now = this.c.clock.now();
    const cur = epochAt(now, period);
    const boundary = epochStart(cur + 1, period);
    if (this.inUse.document.epoch < cur) return poll;
    if (this.upcoming !== null) return boundary - now;
    const lookFrom = epochStart(cur, period) + NEXT_DOCUMENT_FROM * period;
    return Math.min(boundary, now < lookFrom ? lookFrom : now + poll) - now;
  }
}
