/**
 * The directory authority: collects signed descriptors from authorized nodes, votes, computes the
 * consensus with its peers, signs, exchanges signatures, and serves the documents that reach the
 * threshold. The protocol and its schedule are in docs/directory.md; in short, for target epoch E:
 *
 *   normal (run during E - 1):  vote at 1/2 of E - 1, compute at 3/4 (or as soon as every
 *                               authority's vote is in), then exchange signatures; a round that
 *                               has no published document when E starts has failed.
 *   bootstrap (no document for the current epoch E): vote as soon as every authorized node has a
 *                               descriptor for E, or a bootstrap wait has passed; compute once
 *                               every vote is in, or a short collection time after voting with at
 *                               least threshold votes; failed if nothing is published by the end
 *                               of E.
 *
 * In its first bootstrap-wait after starting, an authority votes in any round only once every
 * authorized node has a descriptor for the epoch: a fresh network that starts past the middle of
 * an epoch must not vote an empty set for the next one before its nodes upload.
 *
 * Every message to a peer is retried a bounded number of times; a message from a peer makes the
 * authority resend to it at once whatever that peer has not acknowledged. When this authority's
 * own round falls short but its peers published a document (seen through their signatures, at
 * start-up or at the failure deadline), it fetches that document from them and serves it.
 *
 * Time comes only from components.clock; logs carry epochs and counts, never keys or addresses.
 */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { AuthorizedNode } from '../config/types.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/log.js';
import { buildConsensus } from '../pki/consensus.js';
import { fetchDocument, httpRequest } from '../pki/client.js';
import { verifyDescriptor } from '../pki/descriptor.js';
import {
  checkParams,
  documentHash,
  encodeDocument,
  encodeSignedDocument,
  epochAt,
  epochStart,
  signDocumentHash,
  verifyDocumentSignature,
} from '../pki/document.js';
import type { Ed25519 } from '../pki/ed25519.js';
import type { AuthorityInfo, ConsensusDocument, Descriptor, DocumentSignature, NetworkParameters, SignedDocument } from '../pki/types.js';
import { MAX_DESCRIPTOR_MIX_KEYS } from '../pki/types.js';
import type { SignatureMessage, Vote, VotedDescriptor } from '../pki/vote.js';
import { MAX_VOTE_LENGTH, decodeSignatureMessage, encodeSignatureMessage, signVote, verifyVote } from '../pki/vote.js';
import { abytes, equalBytes, toHex, wipe } from '../util/bytes.js';
import type { ApiRequest, ApiResponse, ApiServer, RouteDecision } from './http.js';
import { jsonError, startApiServer } from './http.js';
import type { GateStats } from '../util/gate.js';

// ---------------------------------------------------------------------------------------------
// Schedule and limits (docs/directory.md, "Schedule")

/** Fractions of epoch E - 1 at which the normal round for E votes and computes. */
const VOTE_AT = 1 / 2;
const COMPUTE_AT = 3 / 4;
/** Bootstrap: vote at the latest this long after the round opens: min(period/4, 10 s). */
const bootstrapWaitMs = (p: number): number => Math.min(p / 4, 10_000);
/** Bootstrap: after voting, wait min(period/8, 2 s) for the other votes before computing with fewer than all. */
const bootstrapCollectMs = (p: number): number => Math.min(p / 8, 2000);
/** Timeout of one request to a peer. */
const PEER_TIMEOUT_MS = 2000;
/** After an unexpected failure inside the scheduler, try again this much later. */
const STEP_RETRY_MS = 1000;
/** Tries per message per peer (the first and the retries), spaced by period/40 within [200 ms, 5 s]. */
const MAX_SEND_ATTEMPTS = 6;
const retryIntervalMs = (p: number): number => Math.min(5000, Math.max(200, p / 40));
/** Descriptors are kept for the current epoch and this many ahead (a descriptor carries at most this many keys). */
const MAX_EPOCHS_AHEAD = MAX_DESCRIPTOR_MIX_KEYS;
/** Request body limits: descriptors are at most 4 KiB and signature messages 137 bytes; votes carry every descriptor. */
const DESCRIPTOR_BODY_LIMIT = 64 * 1024;
const SIGNATURE_BODY_LIMIT = 64 * 1024;
const VOTE_BODY_LIMIT = MAX_VOTE_LENGTH;

// ---------------------------------------------------------------------------------------------
// Public shapes

export interface AuthorityInit {
  name: string;
  /** Ed25519 seed, 32 bytes (the authority's own key). Copied; the copy is wiped on close. */
  identitySeed: Uint8Array;
  /** HTTP API; port 0 = choose. */
  listen: { host: string; port: number };
  /** Every authority INCLUDING this one (matched by identity key). */
  authorities: readonly AuthorityInfo[];
  threshold: number;
  params: NetworkParameters;
  /** Who may upload descriptors, with the role and layer they must declare. */
  nodes: readonly AuthorizedNode[];
}

export interface AuthorityComponents {
  clock: Clock;
  log: Logger;
  registry: Registry;
  ed: Ed25519;
  fetch?: typeof fetch;
}

export interface RunningAuthority {
  readonly url: string;
  readonly port: number;
  /** The document for the current epoch, else the newest older one not yet expired; null when none. */
  current(): SignedDocument | null;
  /** Documents by epoch with ≥ threshold signatures. */
  document(epoch: number): SignedDocument | null;
  /** The HTTP listener's gate: connections admitted and refused (the server's metrics and health read it). */
  readonly gate: GateStats;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// State

interface Outgoing {
  readonly peer: string;
  readonly path: string;
  readonly bytes: Uint8Array;
  attempts: number;
  nextAt: number;
  state: 'idle' | 'sending' | 'done';
}

interface ComputedDocument {
  readonly bytes: Uint8Array;
  readonly hashHex: string;
  readonly document: ConsensusDocument;
}

interface Round {
  readonly epoch: number;
  readonly bootstrap: boolean;
  /** From when the round votes as soon as every authorized node has a descriptor for the epoch. */
  readonly earliestVote: number;
  /** When the round votes whatever it holds (once the authority is past its start-up wait). */
  readonly voteAt: number;
  computeAt: number;
  /** When a round without a published document counts as failed. */
  readonly deadline: number;
  voted: boolean;
  readonly votes: Map<string, { readonly bytes: Uint8Array; readonly vote: Vote }>;
  doc: ComputedDocument | null;
  /** The latest verified signature message from each authority (this one included), by authority. */
  readonly sigs: Map<string, { readonly hashHex: string; readonly sig: DocumentSignature }>;
  readonly outgoing: Outgoing[];
  failed: boolean;
  fetching: boolean;
}

interface Published extends ComputedDocument {
  readonly signatures: Map<string, DocumentSignature>;
}

interface Metrics {
  descriptors: Counter<'result'>;
  votes: Counter<'result'>;
  signatures: Counter<'result'>;
  documents: Counter;
  failures: Counter;
  epoch: Gauge;
}

const DESCRIPTOR_RESULTS = ['accepted', 'malformed', 'bad_signature', 'unauthorized', 'epoch', 'too_large'] as const;
const VOTE_RESULTS = ['accepted', 'duplicate', 'conflict', 'late', 'malformed', 'bad_signature', 'unauthorized', 'epoch', 'too_large'] as const;
const SIGNATURE_RESULTS = ['accepted', 'duplicate', 'pending', 'mismatch', 'late', 'malformed', 'bad_signature', 'unauthorized', 'epoch', 'too_large'] as const;

function counter(registry: Registry, name: string, help: string, results?: readonly string[]): Counter<'result'> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<'result'>;
  const c = results === undefined ? new Counter({ name, help, registers: [registry] }) : new Counter({ name, help, labelNames: ['result'] as const, registers: [registry] });
  for (const r of results ?? []) c.inc({ result: r }, 0);
  return c as Counter<'result'>;
}

function makeMetrics(registry: Registry): Metrics {
  const existingEpoch = registry.getSingleMetric('backchannel_epoch');
  return {
    descriptors: counter(registry, 'backchannel_authority_descriptors_total', 'Descriptor uploads, by result', DESCRIPTOR_RESULTS),
    votes: counter(registry, 'backchannel_authority_votes_total', 'Votes received from peers, by result', VOTE_RESULTS),
    signatures: counter(registry, 'backchannel_authority_signatures_total', 'Document signatures received from peers, by result', SIGNATURE_RESULTS),
    documents: counter(registry, 'backchannel_authority_documents_total', 'Documents that reached the signature threshold'),
    failures: counter(registry, 'backchannel_authority_consensus_failures_total', 'Epochs whose consensus failed at this authority'),
    epoch:
      existingEpoch instanceof Gauge
        ? (existingEpoch as Gauge)
        : new Gauge({ name: 'backchannel_epoch', help: 'Epoch of the consensus document in use', registers: [registry] }),
  };
}

function configError(message: string): BackchannelError {
  return new BackchannelError('ERR_CONFIG', `authority: ${message}`);
}

/** The error code of a rejected input, for a metric label and the JSON answer. */
function rejection(err: unknown): { status: 400 | 403; code: string; result: 'malformed' | 'bad_signature' | 'unauthorized' | 'epoch' } {
  if (isBackchannelError(err, 'ERR_PKI_SIGNATURE')) return { status: 400, code: 'ERR_PKI_SIGNATURE', result: 'bad_signature' };
  if (isBackchannelError(err, 'ERR_PKI_UNAUTHORIZED')) return { status: 403, code: 'ERR_PKI_UNAUTHORIZED', result: 'unauthorized' };
  if (isBackchannelError(err, 'ERR_PKI_EPOCH')) return { status: 400, code: 'ERR_PKI_EPOCH', result: 'epoch' };
  return { status: 400, code: 'ERR_PKI_ENCODING', result: 'malformed' };
}

const EPOCH_PATH = /^\/v1\/document\/(current|0|[1-9][0-9]{0,15})$/;

// ---------------------------------------------------------------------------------------------

class Authority {
  private readonly seed: Uint8Array;
  private readonly self: string;
  private readonly selfKey: Uint8Array;
  private readonly peers: readonly (AuthorityInfo & { readonly hex: string })[];
  private readonly authorized: Map<string, AuthorizedNode>;
  private readonly period: number;
  private readonly n: number;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly descriptors = new Map<number, Map<string, VotedDescriptor>>();
  private readonly rounds = new Map<number, Round>();
  private readonly published = new Map<number, Published>();
  private readonly aborter = new AbortController();
  private timer: unknown = null;
  private closed = false;
  private startedAt = 0;

  private readonly init: AuthorityInit;
  private readonly c: AuthorityComponents;

  constructor(init: AuthorityInit, c: AuthorityComponents) {
    this.init = init;
    this.c = c;
    abytes('identitySeed', init.identitySeed, 32);
    if (typeof init.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(init.name)) throw configError('name must be 1 to 64 of [A-Za-z0-9._-]');
    try {
      checkParams(init.params);
    } catch (err) {
      throw configError(`bad network parameters (${err instanceof Error ? err.message : 'invalid'})`);
    }
    this.seed = init.identitySeed.slice();
    this.selfKey = c.ed.publicKeyFromSeed(this.seed);
    this.self = toHex(this.selfKey);
    const keys = new Set<string>();
    for (const a of init.authorities) {
      if (!(a.identityKey instanceof Uint8Array) || a.identityKey.length !== 32) throw configError('an authority key is not 32 bytes');
      const hex = toHex(a.identityKey);
      if (keys.has(hex)) throw configError('an authority is listed twice');
      keys.add(hex);
    }
    if (!keys.has(this.self)) throw configError('this authority is not among the authorities');
    this.n = init.authorities.length;
    if (!Number.isInteger(init.threshold) || init.threshold < 1 || init.threshold > this.n) throw configError('threshold must be from 1 to the number of authorities');
    this.peers = init.authorities.filter((a) => toHex(a.identityKey) !== this.self).map((a) => ({ ...a, hex: toHex(a.identityKey) }));
    this.authorized = new Map();
    for (const node of init.nodes) {
      if (!(node.identityKey instanceof Uint8Array) || node.identityKey.length !== 32) throw configError('an authorized node key is not 32 bytes');
      const layerOk = node.role === 'gateway' ? node.layer === 0 : node.role === 'mix' && Number.isInteger(node.layer) && node.layer >= 1 && node.layer <= init.params.layers;
      if (!layerOk) throw configError(`node ${node.name} has a role and layer that do not fit the network`);
      this.authorized.set(toHex(node.identityKey), node);
    }
    this.period = init.params.epochPeriodMs;
    this.log = c.log.child('authority');
    this.metrics = makeMetrics(c.registry);
    if (init.threshold <= this.n / 2) this.log.warn('threshold is not a majority: two documents for one epoch could both be valid', { threshold: init.threshold, authorities: this.n });
  }

  // --- scheduling -----------------------------------------------------------------------------

  start(): void {
    this.startedAt = this.c.clock.now();
    this.log.info('authority started', { authorities: this.n, threshold: this.init.threshold, nodes: this.authorized.size });
    this.step();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) this.c.clock.clearTimer(this.timer);
    this.timer = null;
    this.aborter.abort();
    wipe(this.seed);
  }

  /**
   * Does whatever is due, then sleeps until the next thing that can be. Synchronous, so that calls
   * from timers, request handlers and completed sends never interleave. Never throws: a failure is
   * logged and the step is tried again a second later.
   */
  private step(): void {
    if (this.closed) return;
    try {
      this.stepUnsafe();
    } catch (err) {
      this.log.error('scheduler step failed', { code: err instanceof BackchannelError ? err.code : 'exception' });
      if (this.timer !== null) this.c.clock.clearTimer(this.timer);
      this.timer = this.c.clock.setTimer(() => {
        this.timer = null;
        this.step();
      }, STEP_RETRY_MS);
    }
  }

  private stepUnsafe(): void {
    const now = this.c.clock.now();
    const p = this.period;
    const cur = epochAt(now, p);
    this.roundFor(cur, now); // bootstrap when there is no document for the current epoch
    if (now >= epochStart(cur, p) + VOTE_AT * p) this.roundFor(cur + 1, now);
    for (const r of this.rounds.values()) this.advance(r, now);
    this.prune(cur);
    this.metrics.epoch.set(this.current()?.document.epoch ?? 0);
    this.schedule(now, cur);
  }

  private schedule(now: number, cur: number): void {
    const p = this.period;
    let next = epochStart(cur + 1, p);
    const consider = (t: number): void => {
      if (t > now && t < next) next = t;
    };
    consider(epochStart(cur, p) + VOTE_AT * p);
    for (const r of this.rounds.values()) {
      if (!r.voted) {
        consider(Math.max(r.voteAt, this.startedAt + bootstrapWaitMs(p)));
        consider(r.earliestVote);
      } else if (r.doc === null) {
        consider(r.computeAt);
      }
      if (!this.published.has(r.epoch) && !r.failed) consider(r.deadline);
      for (const o of r.outgoing) if (o.state === 'idle' && o.attempts < MAX_SEND_ATTEMPTS) consider(o.nextAt);
    }
    if (this.timer !== null) this.c.clock.clearTimer(this.timer);
    this.timer = this.c.clock.setTimer(() => {
      this.timer = null;
      this.step();
    }, next - now);
  }

  /** The round for `epoch`, opened when it is the current epoch without a document (bootstrap) or the next one in time to vote. */
  private roundFor(epoch: number, now: number): Round | null {
    const existing = this.rounds.get(epoch);
    if (existing !== undefined) return existing;
    if (this.published.has(epoch)) return null;
    const p = this.period;
    const cur = epochAt(now, p);
    let round: Round;
    if (epoch === cur) {
      round = this.newRound(epoch, true, now, now + bootstrapWaitMs(p), Infinity, epochStart(epoch + 1, p));
      this.log.info('bootstrap round', { epoch });
      this.adoptFromPeers(round);
    } else if (epoch === cur + 1) {
      const base = epochStart(cur, p);
      if (now >= base + COMPUTE_AT * p) return null; // too late to take part
      round = this.newRound(epoch, false, base + VOTE_AT * p, base + VOTE_AT * p, base + COMPUTE_AT * p, epochStart(epoch, p));
    } else {
      return null;
    }
    this.rounds.set(epoch, round);
    return round;
  }

  private newRound(epoch: number, bootstrap: boolean, earliestVote: number, voteAt: number, computeAt: number, deadline: number): Round {
    return {
      epoch,
      bootstrap,
      earliestVote,
      voteAt,
      computeAt,
      deadline,
      voted: false,
      votes: new Map(),
      doc: null,
      sigs: new Map(),
      outgoing: [],
      failed: false,
      fetching: false,
    };
  }

  /**
   * Whether the round votes now. A round votes at its vote time, but never in the authority's
   * first bootstrap-wait after start (its nodes may not have uploaded yet: a vote with no
   * descriptors would make an empty document) unless every authorized node has a descriptor for
   * the epoch. A bootstrap round votes early the same way.
   */
  private voteDue(r: Round, now: number): boolean {
    if (now >= Math.max(r.voteAt, this.startedAt + bootstrapWaitMs(this.period))) return true;
    return now >= r.earliestVote && this.allNodesHaveDescriptors(r.epoch);
  }

  private advance(r: Round, now: number): void {
    if (!this.published.has(r.epoch)) {
      if (!r.voted && this.voteDue(r, now)) this.vote(r, now);
      if (r.voted && r.doc === null && (r.votes.size === this.n || (now >= r.computeAt && r.votes.size >= this.init.threshold))) this.compute(r);
      if (!r.failed && now >= r.deadline) {
        r.failed = true;
        this.metrics.failures.inc();
        this.log.warn('consensus failed', { epoch: r.epoch, votes: r.votes.size, signatures: this.matchingSignatures(r), threshold: this.init.threshold });
        this.adoptFromPeers(r);
      }
    }
    this.flush(r, now);
  }

  private allNodesHaveDescriptors(epoch: number): boolean {
    const held = this.descriptors.get(epoch);
    for (const id of this.authorized.keys()) if (held?.has(id) !== true) return false;
    return true;
  }

  private prune(cur: number): void {
    for (const e of this.descriptors.keys()) if (e < cur) this.descriptors.delete(e);
    for (const e of this.rounds.keys()) if (e < cur - 1) this.rounds.delete(e);
    for (const e of this.published.keys()) if (e < cur - 2) this.published.delete(e);
  }

  // --- the round ------------------------------------------------------------------------------

  private vote(r: Round, now: number): void {
    const held = [...(this.descriptors.get(r.epoch)?.values() ?? [])];
    r.voted = true;
    let bytes: Uint8Array;
    try {
      bytes = signVote(r.epoch, held, this.seed, this.c.ed);
    } catch {
      // Only a vote past MAX_VOTE_LENGTH (thousands of nodes) gets here; the round then fails at its deadline.
      this.log.error('could not make a vote', { epoch: r.epoch, descriptors: held.length });
      return;
    }
    r.votes.set(this.self, { bytes, vote: { epoch: r.epoch, authority: this.selfKey, descriptors: held } });
    // Leave the peers time to vote too when voting late or early (bootstrap, start-up).
    r.computeAt = Math.max(r.computeAt === Infinity ? 0 : r.computeAt, now + bootstrapCollectMs(this.period));
    this.log.info('voted', { epoch: r.epoch, descriptors: held.length, bootstrap: r.bootstrap });
    for (const peer of this.peers) r.outgoing.push({ peer: peer.hex, path: '/v1/vote', bytes, attempts: 0, nextAt: now, state: 'idle' });
  }

  private compute(r: Round): void {
    let document: ConsensusDocument;
    let bytes: Uint8Array;
    try {
      document = buildConsensus({
        epoch: r.epoch,
        params: this.init.params,
        votes: [...r.votes.values()].map((v) => v.vote),
        threshold: this.init.threshold,
        accept: (d) => this.isAuthorized(d),
      });
      bytes = encodeDocument(document);
    } catch (err) {
      // Nothing to sign this epoch: the deadline counts the failure once.
      r.computeAt = Infinity;
      this.log.error('consensus could not be built', { epoch: r.epoch, code: err instanceof BackchannelError ? err.code : 'exception' });
      return;
    }
    const hash = documentHash(bytes);
    r.doc = { bytes, hashHex: toHex(hash), document };
    const signature = signDocumentHash(hash, this.seed, this.c.ed);
    r.sigs.set(this.self, { hashHex: r.doc.hashHex, sig: { authority: this.selfKey, signature } });
    this.log.info('computed consensus', { epoch: r.epoch, votes: r.votes.size, nodes: document.nodes.length });
    const message = encodeSignatureMessage({ epoch: r.epoch, documentHash: hash, authority: this.selfKey, signature });
    const now = this.c.clock.now();
    for (const peer of this.peers) r.outgoing.push({ peer: peer.hex, path: '/v1/signature', bytes: message, attempts: 0, nextAt: now, state: 'idle' });
    this.checkPublish(r);
  }

  private isAuthorized(d: Descriptor): boolean {
    const a = this.authorized.get(toHex(d.identityKey));
    return a !== undefined && a.role === d.role && a.layer === d.layer;
  }

  private matchingSignatures(r: Round): number {
    if (r.doc === null) return 0;
    let n = 0;
    for (const s of r.sigs.values()) if (s.hashHex === r.doc.hashHex) n++;
    return n;
  }

  /** Publishes the round's document once enough signatures agree; fetches the peers' document when they agree on another. */
  private checkPublish(r: Round): void {
    if (this.published.has(r.epoch)) return;
    if (r.doc !== null && this.matchingSignatures(r) >= this.init.threshold) {
      const signatures = new Map<string, DocumentSignature>();
      for (const [id, s] of r.sigs) if (s.hashHex === r.doc.hashHex) signatures.set(id, s.sig);
      this.publish(r.epoch, { ...r.doc, signatures }, 'own');
      return;
    }
    const tally = new Map<string, number>();
    for (const s of r.sigs.values()) tally.set(s.hashHex, (tally.get(s.hashHex) ?? 0) + 1);
    for (const [hashHex, count] of tally) {
      if (hashHex !== r.doc?.hashHex && count >= this.init.threshold) {
        this.adoptFromPeers(r);
        return;
      }
    }
  }

  private publish(epoch: number, doc: Published, source: 'own' | 'peers'): void {
    if (this.published.has(epoch)) return;
    this.published.set(epoch, doc);
    this.metrics.documents.inc();
    this.log.info('document published', { epoch, nodes: doc.document.nodes.length, signatures: doc.signatures.size, source });
    this.metrics.epoch.set(this.current()?.document.epoch ?? 0);
  }

  /** Fetches the document for the round's epoch from the peers; serves it when it carries threshold signatures. */
  private adoptFromPeers(r: Round): void {
    if (r.fetching || this.peers.length === 0 || this.closed) return;
    r.fetching = true;
    fetchDocument({
      authorities: this.init.authorities,
      threshold: this.init.threshold,
      epoch: r.epoch,
      ed: this.c.ed,
      clock: this.c.clock,
      timeoutMs: PEER_TIMEOUT_MS,
      signal: this.aborter.signal,
      ...(this.c.fetch === undefined ? {} : { fetch: this.c.fetch }),
    })
      .then((signed) => {
        if (this.closed || this.published.has(r.epoch)) return;
        const signatures = new Map(signed.signatures.map((s) => [toHex(s.authority), s] as const));
        this.publish(r.epoch, { bytes: signed.bytes, hashHex: toHex(documentHash(signed.bytes)), document: signed.document, signatures }, 'peers');
      })
      .catch(() => undefined)
      .finally(() => {
        r.fetching = false;
        this.step();
      });
  }

  // --- sending to peers -----------------------------------------------------------------------

  private flush(r: Round, now: number): void {
    for (const o of r.outgoing) {
      if (o.state !== 'idle' || o.attempts >= MAX_SEND_ATTEMPTS || o.nextAt > now) continue;
      const peer = this.peers.find((x) => x.hex === o.peer);
      if (peer === undefined) continue;
      o.state = 'sending';
      o.attempts++;
      httpRequest(`${peer.url}${o.path}`, { method: 'POST', body: o.bytes, maxBytes: 64 * 1024 }, this.httpOptions())
        .then((res) => {
          // 2xx: delivered. 4xx: the peer refuses this message for good; resending will not help.
          if (res.status < 500) {
            o.state = 'done';
            if (res.status >= 400) this.log.warn('peer refused a message', { epoch: r.epoch, peer: peer.name, status: res.status });
          } else {
            o.state = 'idle';
          }
        })
        .catch(() => {
          o.state = 'idle';
        })
        .finally(() => {
          if (o.state === 'idle') {
            o.nextAt = this.c.clock.now() + retryIntervalMs(this.period);
            if (o.attempts >= MAX_SEND_ATTEMPTS) this.log.warn('gave up sending to a peer', { epoch: r.epoch, peer: peer.name });
          }
          this.step();
        });
    }
  }

  private httpOptions(): { clock: Clock; timeoutMs: number; signal: AbortSignal; fetch?: typeof fetch } {
    return { clock: this.c.clock, timeoutMs: PEER_TIMEOUT_MS, signal: this.aborter.signal, ...(this.c.fetch === undefined ? {} : { fetch: this.c.fetch }) };
  }

  /** A peer is up: resend at once whatever it has not acknowledged. */
  private heardFrom(peer: string, now: number): void {
    for (const r of this.rounds.values()) {
      for (const o of r.outgoing) {
        if (o.peer === peer && o.state === 'idle') {
          o.attempts = 0;
          o.nextAt = now;
        }
      }
    }
  }

  // --- HTTP API -------------------------------------------------------------------------------

  route(method: string, path: string): RouteDecision {
    const limits: Record<string, number> = { '/v1/descriptor': DESCRIPTOR_BODY_LIMIT, '/v1/vote': VOTE_BODY_LIMIT, '/v1/signature': SIGNATURE_BODY_LIMIT };
    const limit = limits[path];
    if (limit !== undefined) return method === 'POST' ? { bodyLimit: limit } : { status: 405, error: 'ERR_METHOD_NOT_ALLOWED' };
    if (path.startsWith('/v1/document/')) return method === 'GET' ? { bodyLimit: 0 } : { status: 405, error: 'ERR_METHOD_NOT_ALLOWED' };
    return { status: 404, error: 'ERR_NOT_FOUND' };
  }

  handle(req: ApiRequest): ApiResponse {
    if (this.closed) return jsonError(503, 'ERR_SERVER');
    let out: ApiResponse;
    switch (req.path) {
      case '/v1/descriptor':
        out = this.onDescriptor(req.body);
        break;
      case '/v1/vote':
        out = this.onVote(req.body);
        break;
      case '/v1/signature':
        out = this.onSignature(req.body);
        break;
      default:
        return this.onGetDocument(req.path);
    }
    this.step();
    return out;
  }

  countTooLarge(path: string): void {
    if (path === '/v1/descriptor') this.metrics.descriptors.inc({ result: 'too_large' });
    else if (path === '/v1/vote') this.metrics.votes.inc({ result: 'too_large' });
    else if (path === '/v1/signature') this.metrics.signatures.inc({ result: 'too_large' });
  }

  private onDescriptor(body: Uint8Array): ApiResponse {
    let d: Descriptor;
    try {
      d = verifyDescriptor(body, this.c.ed);
    } catch (err) {
      const rej = rejection(err);
      this.metrics.descriptors.inc({ result: rej.result });
      return jsonError(rej.status, rej.code);
    }
    if (!this.isAuthorized(d)) {
      this.metrics.descriptors.inc({ result: 'unauthorized' });
      this.log.warn('descriptor from a node that is not authorized in that role and layer');
      return jsonError(403, 'ERR_PKI_UNAUTHORIZED');
    }
    const cur = epochAt(this.c.clock.now(), this.period);
    const epochs = d.mixKeys.map((k) => k.epoch).filter((e) => e >= cur && e <= cur + MAX_EPOCHS_AHEAD);
    if (epochs.length === 0) {
      this.metrics.descriptors.inc({ result: 'epoch' });
      return jsonError(400, 'ERR_PKI_EPOCH');
    }
    const id = toHex(d.identityKey);
    const entry: VotedDescriptor = { bytes: body, descriptor: d };
    for (const e of epochs) {
      let held = this.descriptors.get(e);
      if (held === undefined) this.descriptors.set(e, (held = new Map()));
      held.set(id, entry);
    }
    this.metrics.descriptors.inc({ result: 'accepted' });
    this.log.debug('descriptor accepted', { node: d.name, epochs: epochs.length });
    return { status: 200, json: { epochs } };
  }

  private onVote(body: Uint8Array): ApiResponse {
    let vote: Vote;
    try {
      vote = verifyVote(body, { authorities: this.peers, ed: this.c.ed });
    } catch (err) {
      const rej = rejection(err);
      this.metrics.votes.inc({ result: rej.result });
      return jsonError(rej.status, rej.code);
    }
    const now = this.c.clock.now();
    const cur = epochAt(now, this.period);
    const from = toHex(vote.authority);
    this.heardFrom(from, now);
    if (vote.epoch < cur || vote.epoch > cur + 1) {
      this.metrics.votes.inc({ result: 'epoch' });
      return jsonError(400, 'ERR_PKI_EPOCH');
    }
    const r = this.roundFor(vote.epoch, now);
    const held = r?.votes.get(from);
    let result: 'accepted' | 'duplicate' | 'conflict' | 'late';
    if (held !== undefined) result = equalBytes(held.bytes, body) ? 'duplicate' : 'conflict';
    else if (r === null || r.doc !== null || this.published.has(vote.epoch)) result = 'late';
    else {
      result = 'accepted';
      r.votes.set(from, { bytes: body, vote });
    }
    this.metrics.votes.inc({ result });
    if (result === 'conflict') this.log.warn('a peer sent a second, different vote', { epoch: vote.epoch });
    return { status: 200, json: { result } };
  }

  private onSignature(body: Uint8Array): ApiResponse {
    let m: SignatureMessage;
    try {
      m = decodeSignatureMessage(body);
    } catch (err) {
      const rej = rejection(err);
      this.metrics.signatures.inc({ result: rej.result });
      return jsonError(rej.status, rej.code);
    }
    const from = toHex(m.authority);
    if (!this.peers.some((p) => p.hex === from)) {
      this.metrics.signatures.inc({ result: 'unauthorized' });
      return jsonError(403, 'ERR_PKI_UNAUTHORIZED');
    }
    if (!verifyDocumentSignature(m.authority, m.documentHash, m.signature, this.c.ed)) {
      this.metrics.signatures.inc({ result: 'bad_signature' });
      return jsonError(400, 'ERR_PKI_SIGNATURE');
    }
    const now = this.c.clock.now();
    const cur = epochAt(now, this.period);
    this.heardFrom(from, now);
    if (m.epoch < cur - 1 || m.epoch > cur + 1) {
      this.metrics.signatures.inc({ result: 'epoch' });
      return jsonError(400, 'ERR_PKI_EPOCH');
    }
    const hashHex = toHex(m.documentHash);
    const sig: DocumentSignature = { authority: m.authority, signature: m.signature };
    let result: 'accepted' | 'duplicate' | 'pending' | 'mismatch' | 'late';
    const pub = this.published.get(m.epoch);
    const r = this.rounds.get(m.epoch) ?? this.roundFor(m.epoch, now);
    if (pub !== undefined && pub.hashHex === hashHex) {
      result = pub.signatures.has(from) ? 'duplicate' : 'accepted';
      pub.signatures.set(from, sig);
      r?.sigs.set(from, { hashHex, sig });
    } else if (r !== null) {
      const prev = r.sigs.get(from);
      r.sigs.set(from, { hashHex, sig });
      if (prev !== undefined && prev.hashHex === hashHex) result = 'duplicate';
      else if (r.doc === null) result = 'pending';
      else result = r.doc.hashHex === hashHex ? 'accepted' : 'mismatch';
      this.checkPublish(r);
    } else {
      result = 'late';
    }
    this.metrics.signatures.inc({ result });
    return { status: 200, json: { result } };
  }

  private onGetDocument(path: string): ApiResponse {
    const m = EPOCH_PATH.exec(path);
    if (m === null) return jsonError(400, 'ERR_PKI_EPOCH');
    let body: Uint8Array | null = null;
    if (m[1] === 'current') {
      const doc = this.current();
      if (doc !== null) body = encodeSignedDocument(doc.bytes, doc.signatures);
    } else {
      const epoch = Number(m[1]);
      if (!Number.isSafeInteger(epoch)) return jsonError(400, 'ERR_PKI_EPOCH');
      const pub = this.published.get(epoch);
      const r = this.rounds.get(epoch);
      if (pub !== undefined) body = encodeSignedDocument(pub.bytes, [...pub.signatures.values()]);
      else if (r !== undefined && r.doc !== null) {
        // Not yet at the threshold here: serve the signatures so far; a client merges them with other authorities'.
        const hashHex = r.doc.hashHex;
        body = encodeSignedDocument(r.doc.bytes, [...r.sigs.values()].filter((s) => s.hashHex === hashHex).map((s) => s.sig));
      }
    }
    return body === null ? jsonError(404, 'ERR_NOT_FOUND') : { status: 200, bytes: body };
  }

  // --- RunningAuthority -----------------------------------------------------------------------

  current(): SignedDocument | null {
    const cur = epochAt(this.c.clock.now(), this.period);
    let best: Published | undefined;
    for (const [e, d] of this.published) if (e <= cur && e >= cur - 1 && (best === undefined || e > best.document.epoch)) best = d;
    return best === undefined ? null : toSigned(best);
  }

  document(epoch: number): SignedDocument | null {
    const d = this.published.get(epoch);
    return d === undefined ? null : toSigned(d);
  }
}

function toSigned(d: Published): SignedDocument {
  const signatures = [...d.signatures.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s);
  return { document: d.document, bytes: d.bytes, signatures };
}

/**
 * Starts an authority: validates the configuration, binds the HTTP API, and runs the schedule.
 * @throws {BackchannelError} ERR_CONFIG for an inconsistent configuration (this authority not
 *   listed, bad threshold, node roles that do not fit the layers).
 * @throws {BackchannelError} ERR_SERVER_LISTEN when the address cannot be bound.
 * @example const a = await startAuthority(init, { clock: systemClock, log, registry, ed: nodeEd25519 });
 */
export async function startAuthority(init: AuthorityInit, components: AuthorityComponents): Promise<RunningAuthority> {
  const authority = new Authority(init, components);
  let server: ApiServer;
  try {
    server = await startApiServer({
      host: init.listen.host,
      port: init.listen.port,
      log: components.log.child('authority'),
      route: (method, path) => authority.route(method, path),
      handle: (req) => authority.handle(req),
      onTooLarge: (path) => authority.countTooLarge(path),
    });
  } catch (err) {
    await authority.close();
    throw err;
  }
  authority.start();
  return {
    url: server.url,
    port: server.port,
    gate: server.gate,
    current: () => authority.current(),
    document: (epoch) => authority.document(epoch),
    close: async () => {
      await authority.close();
      await server.close();
    },
  };
}
