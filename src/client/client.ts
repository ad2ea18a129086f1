/**
 * The client engine: Loopix traffic, reliable delivery, reassembly (docs/client.md).
 *
 * - Sending: one Poisson clock at the consensus send rate. At each of its events the client puts
 *   exactly one packet on its gateway link: the most overdue real fragment (new or due for
 *   retransmission), or else a drop cover packet. A second Poisson clock sends loop cover packets
 *   that come back to our main mailbox. Real and cover packets cost the same work (a path, a
 *   SURB, an envelope, a Sphinx packet), so neither the link nor the CPU tells them apart.
 * - Reliability: every real fragment carries a SURB; the recipient's gateway sends it back as an
 *   acknowledgement to our own mailbox (src/pki/intake.ts, `ownMailbox`) once the fragment is on
 *   disk. A fragment not acknowledged in time goes again on a fresh path with a fresh SURB, after
 *   a timeout that is adaptive (RFC 6298 on the acks' round trips), grows by BACKOFF per attempt
 *   and carries a random exponential excess, so that no fixed retry pattern confirms a sender.
 *   After MAX_ATTEMPTS the message is reported failed.
 * - Receiving: the mailbox is fetched at a constant rate, whether or not mail waits. Each entry is
 *   processed and its effect stored in the same transaction as the next mailbox position, so a
 *   crash neither loses nor repeats anything: the gateway deletes an entry only when we ask for a
 *   later one.
 * - The directory: with `directory` among the components, the consensus document comes from our
 *   gateway, never from an authority: a fetch tick carries a `get_document` in place of its
 *   `retrieve_message` when a document is wanted (directory.ts), so the link does not show it.
 *   Until the first document, the gateway's contact and the network's parameters that `client
 *   init` recorded (`bootstrap`) are enough to link to the gateway. A document that expires with
 *   no newer one is reported (status, log); real fragments then wait, and cover keeps the clocks.
 * - Extra mailboxes (one per contact): key pairs of ours whose public keys are further recipients
 *   at our gateway. A fetch tick carries a `mailbox_request` (register, revoke) in place of its
 *   `retrieve_message` when one is needed (mailboxes.ts); their mail comes in our one fetch
 *   stream, tagged with the mailbox, and is opened with that mailbox's key.
 *
 * - Rendezvous requests (contacts by code, src/client/invites.ts): `rendezvous()` queues a request
 *   for the gateway that serves a channel; the next send tick carries it in place of a fragment or
 *   a drop cover, with a SURB whose answer comes back to our mailbox. Their SURB keys live in
 *   memory only: an answer that comes after a restart has nobody waiting, and the invite asks again.
 *   A request whose answer is late is asked again by its caller; the late answer still counts for
 *   the same request asked again (requests are idempotent), so a slow mailbox costs no extra trip.
 *
 * Everything that outlives a restart is in the ClientStore; the engine holds only caches of it.
 * Portable: no `node:` imports (the browser runs the same engine).
 */
import { RECIPIENT_ID_LENGTH, SURB_ID_LENGTH } from '../sphinx/constants.js';
import type { CryptoBackend } from '../crypto/types.js';
import type { AsyncX25519 } from '../crypto/async-x25519.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import { encodeForwardPayload } from '../sphinx/payload.js';
import { chooseMixes, gateways, pathHops, randomIntFrom } from '../pki/route.js';
import type { RandomInt } from '../pki/route.js';
import type { NoiseAead } from '../noise/crypto.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';
import { documentExpiresAt, epochAt } from '../pki/document.js';
import { ownMailbox, senderPace } from '../pki/intake.js';
import type { DocumentNode, NetworkParameters, SignedDocument } from '../pki/types.js';
import { geometryFromUserPayload } from '../sphinx/geometry.js';
import type { Geometry } from '../sphinx/geometry.js';
import { Sphinx } from '../sphinx/sphinx.js';
import type { PacketFormat, PacketFormatFactory } from '../sphinx/format.js';
import { equalBytes, idKey, toHex, wipe } from '../util/bytes.js';
import { TokenBucket } from '../util/token-bucket.js';
import { RENDEZVOUS_RECIPIENT, rendezvousGateway } from '../messaging/rendezvous.js';
import { MAX_EXTRA_MAILBOXES, WireCodec } from '../wire/commands.js';
import type { WireCommand } from '../wire/commands.js';
import { decodeAddress, encodeAddress } from './address.js';
import { MIN_ID_PREFIX_HEX } from './api.js';
import type { ClientApi, ClientEvent, ClientStatus, DocumentState, MailboxInfo, NewMailbox, SendReceipt, SendRequest } from './api.js';
import { DEFAULT_ROTATION_GRACE_MS, MailboxRegistrar } from './mailboxes.js';
import { HeaderKeyPool } from './header-pool.js';
import type { PooledRoute } from './header-pool.js';
import { ClientAdmission } from './admission.js';
import { GatewayDirectory } from './directory.js';
import type { DirectoryTrust } from './directory.js';
import { open, seal } from './envelope.js';
import { MAX_REPLY_SURBS, MESSAGE_ID_LENGTH, decodeFrame, decodeMessage, encodeMessage, fragmentFrames, frameLength, loopFrame } from './frames.js';
import { PeriodicClock, PoissonClock, exponentialMs, hopDelaysMs, uniform01 } from './poisson.js';
import { COVER_RESERVE, preparedDepth } from './link-clocks.js';
import type { ClockRates, TickKind, TickSource } from './link-clocks.js';
import type { ClientStore, Destination, ExtraMailbox, InboxMessage, OutgoingFragment, OutgoingMessage } from './store.js';

/** Attempts per fragment before its message is reported failed. With the backoff below they span about 4 to 8 minutes. */
export const MAX_ATTEMPTS = 12;
/**
 * Bounds of the retransmission timeout: RFC 6298 keeps at least a second; 30 s caps the backoff,
 * so that a fragment lost while a dead mix is still listed (an epoch or two) goes again soon after.
 */
export const MIN_RTO_MS = 1000;
export const MAX_RTO_MS = 30_000;
/**
 * Growth of the timeout per attempt. Losses here come from failed nodes more than from congestion
 * (the send clock fixes the rate anyway), so the backoff is gentler than TCP's doubling.
 */
export const BACKOFF = 1.5;
/** A mailbox recipient of all zeros: the gateway drops such a packet (drop cover). */
export const DROP_MAILBOX = new Uint8Array(RECIPIENT_ID_LENGTH);
/** Timed-out rendezvous requests whose SURB keys are kept for a late answer (an open invite has one request at a time). */
const MAX_LATE_RENDEZVOUS = 64;
/** How often old SURBs, stale fragments and finished messages are pruned. */
const PRUNE_INTERVAL_MS = 60_000;
/** Finished outgoing messages are kept this long for `outgoing(id)`. */
const KEEP_FINISHED_MS = 24 * 3_600_000;
/** Incomplete incoming messages are dropped after this long without completing. */
const KEEP_FRAGMENTS_MS = 24 * 3_600_000;
/** Reconnection backoff to the gateway: from a second, doubling, to a minute, jittered. */
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 60_000;
/** Addresses whose last taken entry is remembered (our main mailbox and the extra ones, with room). */
const MAX_TAKEN_MARKS = 4_096;

/** The part of a Link (src/link/link.ts) the client uses; tests may supply a stand-in. */
export interface GatewayLink {
  trySend(message: Uint8Array): boolean;
  send(message: Uint8Array): Promise<void>;
  recv(): Promise<Uint8Array | null>;
  close(): Promise<unknown>;
  /**
   * A link that sends on a thread of its own (node-link-worker.ts) has these three. The engine's
   * clocks then run LINK_LEAD_MS ahead: each tick's frame is made early and handed over with the
   * tick's ideal time, at which the link's thread sends it (at once when that time has passed).
   */
  sendAt?(message: Uint8Array, atMs: number): void;
  /** Sends a `retrieve_message` for the last sequence set below, made when it leaves, at `atMs`. */
  fetchAt?(atMs: number): void;
  /** The sequence the next fetches ask for (the entries before it are ours, committed). */
  setFetchSequence?(sequence: number): void;
  /**
   * A link whose thread runs the send, loop and fetch clocks itself (link-clocks.ts) has this.
   * The engine's send and loop clocks then stand still while it is up: the engine keeps a few
   * frames prepared for each of the link's clocks and a reserve of drop cover, and prepares the
   * next frame of a clock each time the link reports one of its ticks.
   */
  readonly clocks?: LinkClockControl;
}

/** The engine's hold on the clocks of a link that runs them (GatewayLink.clocks). */
export interface LinkClockControl {
  /** Starts the clocks, or changes their rates. */
  setRates(rates: ClockRates): void;
  /** A frame for the next free tick of `kind`. */
  prepare(kind: TickKind, frame: Uint8Array): void;
  /** Drop cover for ticks that find nothing prepared; `replace` drops the reserve first (a new epoch). */
  reserve(frames: Uint8Array[], replace: boolean): void;
  /** A frame (a document or mailbox request) to send in place of the next fetch. */
  replaceFetch(frame: Uint8Array): void;
  /** Set by the engine: called for each send or loop tick of the link's thread, with what it sent, when (the link thread's clock), and the clocks' restarts. */
  onTick: ((kind: TickKind, source: TickSource, at: number, restarts: { send: number; loop: number; fetch: number }) => void) | null;
}

/**
 * How far ahead of their ideal times the clocks tick when the link sends on a thread of its own:
 * a stall of this thread shorter than this (a commit waiting for the disk, a large message being
 * reassembled) no longer moves any frame. It is also how much later a real fragment leaves than
 * it would have (it is chosen at the early tick). A longer stall still shows: the frame then
 * leaves late, at once. (How long the client's commits stall under load is not measured yet;
 * `clockRestarts` in the status counts stalls long enough to drop events.)
 */
export const LINK_LEAD_MS = 250;

export interface ClientInit {
  /** 32-byte X25519 private key of our links; its public key is our mailbox id. */
  readonly linkPrivateKey: Uint8Array;
  /** Our gateway's Ed25519 identity key. */
  readonly gateway: Uint8Array;
  /**
   * What links us to our gateway before any document: its entry (address, link key) and the
   * network's parameters (the wire length follows from them), as `client init` recorded them.
   * A document's entry for our gateway takes its place once there is one.
   */
  readonly bootstrap?: { readonly gateway: DocumentNode; readonly params: NetworkParameters };
}

export interface ClientComponents {
  readonly clock: Clock;
  readonly crypto: CryptoBackend;
  /** ChaCha20-Poly1305, for envelopes. */
  readonly aead: NoiseAead;
  readonly store: ClientStore;
  readonly log: Logger;
  /**
   * Opens a link to `gateway` as a client with our static key; `maxMessageLength` is the wire
   * codec's command length; `admission` the third handshake message's payload (admission.ts).
   */
  readonly connect: (gateway: DocumentNode, staticKey: Uint8Array, maxMessageLength: number, admission?: Uint8Array) => Promise<GatewayLink>;
  /** The packet format for a geometry: Sphinx over `crypto` by default; the simulator's labelled packets. */
  readonly packetFormat?: PacketFormatFactory;
  /**
   * The authorities we trust: when given, documents come from our gateway on the fetch clock and
   * are verified against them. Without it, documents are fed with `setDocument` (the simulator).
   */
  readonly directory?: DirectoryTrust;
  /** Called with each document the gateway gave once it is in use (e.g. to record the gateway's entry for the next start). Exceptions are logged. */
  readonly onDocument?: (doc: SignedDocument) => void;
  /**
   * False while the store cannot write (the browser's IndexedDB over its quota): entries the
   * gateway hands out are then left to it, not taken in memory only, and once writes work again
   * the link is made anew so that the gateway hands them out again. Without it, always writable.
   */
  readonly storeWritable?: () => boolean;
  /**
   * An X25519 that answers later (WebCrypto in the browser, src/crypto/async-x25519.ts): with it,
   * header keys are made ahead of the ticks in a pool (header-pool.ts) and the ticks build their
   * packets from it (the same bytes; synchronously when it is empty). Without it, nothing changes.
   */
  readonly headerKeys?: { readonly x25519: AsyncX25519; readonly poolSize?: number };
}

/** A rendezvous request queued for a send slot, then in flight until its answer or its timeout. */
interface RendezvousCall {
  readonly channel: number;
  readonly body: Uint8Array;
  readonly timeoutMs: number;
  readonly resolve: (answer: Uint8Array | null) => void;
  keys: Uint8Array | null;
  timer: unknown;
}

interface Pending {
  readonly messageId: Uint8Array;
  /** The message id in hex, the key of `Client.#messages`. */
  readonly message: string;
  readonly index: number;
  readonly frame: Uint8Array;
  readonly destination: Destination;
  readonly replySurb: Uint8Array | null;
  attempts: number;
  dueAt: number;
}

/** Per-geometry tools, rebuilt when the consensus changes the parameters. */
interface Tools {
  readonly params: NetworkParameters;
  readonly geometry: Geometry;
  readonly sphinx: PacketFormat;
  readonly codec: WireCodec;
  readonly frameLength: number;
}

function clientError(code: 'ERR_CLIENT_MESSAGE' | 'ERR_CLIENT_STATE' | 'ERR_CLIENT_MAILBOX' | 'ERR_CLIENT_MAILBOX_LIMIT', message: string): BackchannelError {
  return new BackchannelError(code, `client: ${message}`);
}

function sameParams(a: NetworkParameters, b: NetworkParameters): boolean {
  return a.hops === b.hops && a.userPayloadLength === b.userPayloadLength && a.withSurb === b.withSurb;
}

export class Client implements ClientApi {
  readonly address: string;
  readonly #init: ClientInit;
  readonly #c: ClientComponents;
  readonly #log: Logger;
  readonly #mailbox: Uint8Array;
  /**
   * Our own mailbox at our gateway (src/pki/intake.ts, `ownMailbox`): the recipient of every SURB
   * we make (acknowledgements, of fragments and of loops, rendezvous answers and anonymous
   * replies), under an intake bucket sized for them, so that our main mailbox's is left to
   * forward mail (others', and our loops). The gateway refuses forward mail for it.
   */
  readonly #own: Uint8Array;
  readonly #rand: RandomInt;
  readonly #u01: () => number;
  readonly #pending = new Map<string, Pending>();
  /**
   * Per message with fragments in `#pending`: how many, and when it last had a fragment sent (a
   * count of sends, 0 for never), so that the pace is shared round-robin by message.
   */
  readonly #messages = new Map<string, { pending: number; served: number }>();
  #sends = 0;
  /**
   * The real fragments sent lately, at `senderPace` (src/pki/intake.ts), so that a recipient's
   * mailbox does not meet its intake limit at its gateway: a send tick when the bucket is empty
   * sends drop cover.
   * Null until the first document.
   */
  #pace: TokenBucket | null = null;
  readonly #listeners = new Set<(e: ClientEvent) => void>();
  readonly #sendClock: PoissonClock;
  readonly #loopClock: PoissonClock;
  readonly #fetchClock: PeriodicClock;
  #doc: SignedDocument | null = null;
  /** The next epoch's document, verified, adopted when its epoch begins. */
  #upcoming: SignedDocument | null = null;
  readonly #directory: GatewayDirectory | null;
  readonly #registrar = new MailboxRegistrar();
  /** Our extra mailboxes as the store has them (without keys), by id in hex. */
  readonly #extra = new Map<string, ExtraMailbox>();
  /** Whether the last fetch tick carried a mailbox request: the next one then fetches, so that requests never starve the mailbox. */
  #lastTickMailbox = false;
  #expiredReported = false;
  #tools: Tools | null = null;
  #link: GatewayLink | null = null;
  #connecting = false;
  #reconnectDelay = RECONNECT_MIN_MS;
  #reconnectTimer: unknown = null;
  #pruneTimer: unknown = null;
  #running = false;
  #nextSeq = 0;
  /**
   * Per address ('' our main mailbox, else the extra or own mailbox's id): the last entry taken from it.
   * The gateway answers our addresses in turn, each in sequence order (src/server/fetch.ts), so an
   * entry at or below its address's mark is one we took already: handed again after a reconnect
   * or a gateway restart. Memory only, at most MAX_TAKEN_MARKS addresses.
   */
  readonly #taken = new Map<string, number>();
  /** The ideal time of the send or loop tick being handled (for a link that sends at set times). */
  #departAt: number | null = null;
  /** The link clock a frame is being prepared for (a link that runs the clocks). */
  #preparing: TickKind | null = null;
  /** Frames prepared for each of the link's clocks and not reported sent. */
  readonly #outstanding: Record<TickKind, number> = { send: 0, loop: 0 };
  /** Drop cover in the link's reserve, and the epoch whose keys made it. */
  #reserveCount = 0;
  #reserveEpoch: number | null = null;
  #linkRestarts = { send: 0, loop: 0, fetch: 0 };
  /** An entry was left at the gateway on this link because the store could not write (storeWritable). */
  #leftWhileUnwritable = false;
  readonly #linkTicks = { reserve: 0, missed: 0 };
  #srtt: number | null = null;
  #rttvar = 0;
  readonly #sent = { real: 0, drop: 0, loop: 0 };
  readonly #rendezvousQueue: RendezvousCall[] = [];
  /** In-flight rendezvous requests by the idKey of their SURB id. */
  readonly #rendezvousInFlight = new Map<string, RendezvousCall>();
  /** SURB keys of requests that timed out, by SURB id: a late answer still serves the same request asked again. */
  readonly #rendezvousLate = new Map<string, { readonly body: string; readonly keys: Uint8Array }>();
  readonly #received = { fragment: 0, ack: 0, loop: 0, reply: 0, invalid: 0 };
  readonly #admission: ClientAdmission;
  /** Header keys made ahead of the ticks; null without `headerKeys`. */
  readonly #pool: HeaderKeyPool | null;

  constructor(init: ClientInit, components: ClientComponents) {
    if (init.linkPrivateKey.length !== 32 || init.gateway.length !== 32) throw new RangeError('client: keys must be 32 bytes');
    this.#init = init;
    this.#c = components;
    this.#log = components.log.child('client');
    this.#mailbox = components.crypto.x25519Base(init.linkPrivateKey);
    this.#own = ownMailbox(components.crypto, this.#mailbox);
    this.address = encodeAddress(components.crypto, { gateway: init.gateway, mailbox: this.#mailbox });
    this.#rand = randomIntFrom(components.crypto.randomBytes);
    this.#u01 = uniform01(components.crypto.randomBytes);
    const hk = components.headerKeys;
    this.#pool = hk === undefined ? null : new HeaderKeyPool({ crypto: components.crypto, x25519: hk.x25519, log: this.#log, ...(hk.poolSize === undefined ? {} : { size: hk.poolSize }) });
    const lead = (): number => (this.#link?.sendAt !== undefined ? LINK_LEAD_MS : 0);
    const at = (fn: () => void) => (idealAt: number): void => {
      this.#departAt = idealAt;
      try {
        fn();
      } finally {
        this.#departAt = null;
      }
    };
    // With a link that runs the clocks these two are stopped (#onLinkUp); the guard covers a tick already due.
    this.#sendClock = new PoissonClock(components.clock, () => this.#tools?.params.sendRatePerS ?? 0, this.#u01, at(() => {
      if (this.#link?.clocks === undefined) this.#onSendTick();
    }), lead);
    this.#loopClock = new PoissonClock(components.clock, () => this.#tools?.params.loopRatePerS ?? 0, this.#u01, at(() => {
      if (this.#link?.clocks === undefined) this.#onLoopTick();
    }), lead);
    this.#directory = components.directory === undefined ? null : new GatewayDirectory(components.directory);
    if (init.bootstrap !== undefined) {
      if (!equalBytes(init.bootstrap.gateway.identityKey, init.gateway)) throw new RangeError('client: the bootstrap gateway is not our gateway');
      this.#setTools(init.bootstrap.params);
    }
    this.#fetchClock = new PeriodicClock(components.clock, () => this.#tools?.params.fetchRatePerS ?? 0, at(() => this.#onFetchTick()), lead);
    this.#admission = new ClientAdmission({
      store: components.store,
      linkPublicKey: this.#mailbox,
      log: this.#log,
      yieldNow: () => new Promise((resolve) => void components.clock.setTimer(resolve, 0)),
      cancelled: () => !this.#running,
    });
  }

  // ---- life cycle ----

  /** Loads the pending fragments and starts the clocks; traffic flows once a document and a link exist. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#nextSeq = this.#c.store.nextMailboxSeq();
    for (const f of this.#c.store.pendingFragments()) this.#track(f);
    for (const m of this.#c.store.mailboxes()) this.#extra.set(toHex(m.id), m);
    this.#sendClock.start();
    this.#loopClock.start();
    this.#fetchClock.start();
    this.#retargetPool();
    this.#prune();
    this.#maybeConnect();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#sendClock.stop();
    this.#loopClock.stop();
    this.#fetchClock.stop();
    for (const t of [this.#reconnectTimer, this.#pruneTimer]) if (t !== null) this.#c.clock.clearTimer(t);
    this.#reconnectTimer = this.#pruneTimer = null;
    for (const call of [...this.#rendezvousQueue.splice(0), ...this.#rendezvousInFlight.values()]) this.#settleRendezvous(call, null);
    this.#rendezvousInFlight.clear();
    for (const late of this.#rendezvousLate.values()) wipe(late.keys);
    this.#rendezvousLate.clear();
    this.#pool?.stop();
    const link = this.#link;
    this.#link = null;
    if (link !== null) await link.close().catch(() => undefined);
  }

  /** Feeds a verified consensus document. */
  setDocument(doc: SignedDocument): void {
    this.#setTools(doc.document.params);
    this.#doc = doc;
    if (this.#upcoming !== null && this.#upcoming.document.epoch <= doc.document.epoch) this.#upcoming = null;
    this.#expiredReported = false;
    this.#retargetPool();
    this.#maybeConnect();
    this.#topUp();
  }

  /** Header keys for the current document and our gateway in it (a new document wipes the old ones), while running. */
  #retargetPool(): void {
    if (this.#pool === null) return;
    const doc = this.#doc;
    const ours = doc === null ? undefined : this.#gatewayNode();
    this.#pool.setTarget(this.#running && doc !== null && ours !== undefined ? { doc, ours, rand: this.#rand } : null);
  }

  /** Header-key pool counters for diagnostics and benchmarks; null without `headerKeys`. */
  headerKeyStatus(): ReturnType<HeaderKeyPool['status']> | null {
    return this.#pool?.status() ?? null;
  }

  /** Resolves once the header-key pool is full (tests and benchmarks). */
  async headerKeysFilled(): Promise<void> {
    await this.#pool?.filled();
  }

  #setTools(p: NetworkParameters): void {
    if (this.#tools === null || !sameParams(this.#tools.params, p)) {
      const geometry = geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb);
      const codec = new WireCodec({ packetLength: geometry.packetLength });
      const changed = this.#tools !== null && this.#tools.codec.commandLength !== codec.commandLength;
      this.#tools = { params: p, geometry, sphinx: this.#c.packetFormat ? this.#c.packetFormat(geometry) : new Sphinx(geometry, this.#c.crypto), codec, frameLength: frameLength(geometry) };
      if (changed && this.#link !== null) void this.#link.close().catch(() => undefined); // reconnects with the new codec
    } else {
      this.#tools = { ...this.#tools, params: p };
    }
    this.#setLinkRates();
  }

  // ---- a link that runs the clocks (link-clocks.ts) ----

  #setLinkRates(): void {
    const clocks = this.#link?.clocks;
    const p = this.#tools?.params;
    if (clocks === undefined || p === undefined) return;
    clocks.setRates({ sendPerS: p.sendRatePerS, loopPerS: p.loopRatePerS, fetchPerS: p.fetchRatePerS });
  }

  #onLinkUp(link: GatewayLink): void {
    const clocks = link.clocks;
    if (clocks === undefined) return;
    this.#sendClock.stop();
    this.#loopClock.stop();
    this.#outstanding.send = this.#outstanding.loop = 0;
    this.#reserveCount = 0;
    this.#reserveEpoch = null;
    clocks.onTick = (kind, source, _at, restarts) => {
      if (this.#link !== link) return;
      this.#linkRestarts = restarts;
      if (source === 'prepared') this.#outstanding[kind] = Math.max(0, this.#outstanding[kind] - 1);
      else if (source === 'reserve') {
        this.#reserveCount = Math.max(0, this.#reserveCount - 1);
        this.#linkTicks.reserve++;
        this.#sent.drop++;
      } else if (this.#doc !== null) this.#linkTicks.missed++; // without a document there is nothing to send, stall or not
      this.#topUp();
    };
    this.#setLinkRates();
    this.#topUp();
  }

  /**
   * Keeps the link's clocks supplied: the reserve full (and made anew with each epoch's keys), and
   * each clock's prepared frames at their depth, each made exactly as the engine's own tick would
   * (a real fragment when one is due, else drop cover; a loop).
   */
  #topUp(): void {
    const clocks = this.#link?.clocks;
    const doc = this.#doc;
    const tools = this.#tools;
    if (clocks === undefined || doc === null || tools === null || !this.#running || this.#preparing !== null) return;
    const epoch = doc.document.epoch;
    const replace = this.#reserveEpoch !== epoch;
    const want = replace ? COVER_RESERVE : COVER_RESERVE - this.#reserveCount;
    if (want > 0) {
      const frames: Uint8Array[] = [];
      try {
        for (let i = 0; i < want; i++) {
          const packet = this.#dropPacket(doc, tools);
          if (packet === null) break;
          frames.push(tools.codec.encode({ kind: 'send_packet', packet }));
        }
      } catch (err) {
        this.#log.warn('cannot build a cover packet', { code: isBackchannelError(err) ? err.code : 'unknown' });
      }
      clocks.reserve(frames, replace);
      this.#reserveCount = (replace ? 0 : this.#reserveCount) + frames.length;
      this.#reserveEpoch = epoch;
    }
    const rates: Record<TickKind, number> = { send: tools.params.sendRatePerS, loop: tools.params.loopRatePerS };
    for (const kind of ['send', 'loop'] as const) {
      const depth = rates[kind] > 0 ? preparedDepth(rates[kind], LINK_LEAD_MS) : 0;
      while (this.#outstanding[kind] < depth) {
        const before = this.#outstanding[kind];
        this.#preparing = kind;
        try {
          if (kind === 'send') this.#onSendTick();
          else this.#onLoopTick();
        } finally {
          this.#preparing = null;
        }
        if (this.#outstanding[kind] === before) break; // nothing to prepare now (no usable document)
      }
    }
  }

  // ---- ClientApi ----

  status(): ClientStatus {
    const gw = this.#doc === null ? undefined : this.#gatewayNode();
    const pendingMessages = this.#messages.size;
    return {
      address: this.address,
      gateway: gw?.name ?? null,
      connected: this.#link !== null,
      epoch: this.#doc?.document.epoch ?? null,
      document: this.#documentState(),
      directory: this.#directory === null ? null : { ...this.#directory.counts },
      pendingMessages,
      packetsSent: { ...this.#sent },
      entriesReceived: { ...this.#received },
      clockRestarts: this.#link?.clocks !== undefined ? { ...this.#linkRestarts } : { send: this.#sendClock.restarts, loop: this.#loopClock.restarts, fetch: this.#fetchClock.restarts },
      ...(this.#link?.clocks !== undefined ? { linkTicks: { ...this.#linkTicks } } : {}),
      admission: this.#admission.state,
    };
  }

  send(request: SendRequest): SendReceipt {
    const tools = this.#tools;
    const doc = this.#doc;
    if (tools === null || doc === null) throw clientError('ERR_CLIENT_STATE', 'no network document yet; try again in a few seconds');
    const hasTo = request.to !== undefined;
    const hasReply = request.inReplyTo !== undefined;
    if (hasTo === hasReply) throw clientError('ERR_CLIENT_MESSAGE', 'give exactly one of a recipient address and a message to reply to');
    const nSurbs = request.replySurbs ?? 0;
    if (!Number.isInteger(nSurbs) || nSurbs < 0 || nSurbs > MAX_REPLY_SURBS) throw clientError('ERR_CLIENT_MESSAGE', `reply SURBs must be 0 to ${MAX_REPLY_SURBS}`);
    const id = this.#c.crypto.randomBytes(MESSAGE_ID_LENGTH);
    const now = this.#now();
    let destination: Destination;
    const surbs: { id: Uint8Array; surb: Uint8Array; keys: Uint8Array }[] = [];
    if (request.to !== undefined) {
      const addr = decodeAddress(this.#c.crypto, request.to);
      destination = { kind: 'address', gateway: addr.gateway, mailbox: addr.mailbox };
      if (nSurbs > 0) {
        // The reply will leave from the recipient's gateway and end in our own mailbox.
        const first = this.#node(addr.gateway);
        const ours = this.#gatewayNode();
        if (first === undefined || ours === undefined) throw clientError('ERR_CLIENT_STATE', 'a gateway of this message is not in the current network document');
        for (let i = 0; i < nSurbs; i++) {
          const surbId = this.#c.crypto.randomBytes(SURB_ID_LENGTH);
          const route = [first, ...chooseMixes(doc.document, this.#rand), ours];
          const s = tools.sphinx.createSurb(pathHops(route, doc.document.epoch, this.#delays(route.length - 1, true), { recipient: this.#own, surbId }));
          surbs.push({ id: surbId, surb: s.surb, keys: s.surbKeys });
        }
      }
    } else {
      if (!(request.inReplyTo instanceof Uint8Array)) throw clientError('ERR_CLIENT_MESSAGE', 'a reply names the message it answers');
      if (nSurbs > 0) throw clientError('ERR_CLIENT_MESSAGE', 'a reply cannot carry reply SURBs');
      destination = { kind: 'reply', inReplyTo: request.inReplyTo };
    }
    const fileName = request.fileName ?? null;
    const meta = request.plain === true && fileName === null ? undefined : { sentAtS: Math.floor(now / 1000), fileName };
    const encoded = encodeMessage(tools.geometry, request.body, surbs.map((s) => s.surb), meta);
    const frames = fragmentFrames(tools.geometry, id, encoded);
    const queued = this.#c.store.transaction(() => {
      for (const s of surbs) this.#c.store.putSurb(s.id, { purpose: 'reply', keys: s.keys, messageId: id }, now);
      return this.#c.store.enqueue({ id, destination, length: encoded.length, createdAt: now }, frames);
    });
    for (const s of surbs) wipe(s.keys);
    // As the store holds them: with the reply SURBs it reserved.
    for (const f of queued) this.#track(f);
    return { id, fragments: frames.length };
  }

  subscribe(listener: (event: ClientEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  unconsumed(afterSeq: number, limit: number): InboxMessage[] {
    return this.#c.store.unconsumed(afterSeq, limit);
  }

  consume(seq: number): void {
    this.#c.store.consume(seq);
  }

  inboxPage(afterSeq: number, limit: number): InboxMessage[] {
    return this.#c.store.inboxPage(afterSeq, limit);
  }

  findInbox(prefixHex: string): InboxMessage[] {
    if (typeof prefixHex !== 'string' || prefixHex.length < MIN_ID_PREFIX_HEX || prefixHex.length > 2 * MESSAGE_ID_LENGTH || !/^[0-9a-fA-F]+$/.test(prefixHex)) {
      throw clientError('ERR_CLIENT_MESSAGE', `a message id is ${MIN_ID_PREFIX_HEX} to ${2 * MESSAGE_ID_LENGTH} hex digits`);
    }
    return this.#c.store.inboxByPrefix(prefixHex, 2);
  }

  outgoing(id: Uint8Array): OutgoingMessage | null {
    return this.#c.store.outgoing(id);
  }

  // ---- extra mailboxes ----

  createMailbox(): NewMailbox {
    this.#loadMailboxes();
    let active = 0;
    for (const m of this.#extra.values()) if (m.revokedAt === null) active++;
    if (active >= MAX_EXTRA_MAILBOXES) throw clientError('ERR_CLIENT_MAILBOX_LIMIT', `at most ${MAX_EXTRA_MAILBOXES} extra mailboxes may be in use; revoke one first`);
    const privateKey = this.#c.crypto.randomBytes(32);
    const id = this.#c.crypto.x25519Base(privateKey);
    const now = this.#now();
    try {
      this.#c.store.putMailbox(id, privateKey, now);
    } finally {
      wipe(privateKey);
    }
    this.#extra.set(toHex(id), { id, createdAt: now, registered: false, refused: null, revokeAt: null, replacedBy: null, revokedAt: null, revokeConfirmed: false });
    return { id, address: encodeAddress(this.#c.crypto, { gateway: this.#init.gateway, mailbox: id }) };
  }

  revokeMailbox(id: Uint8Array): void {
    this.#loadMailboxes();
    const m = this.#extra.get(toHex(id));
    if (m === undefined) throw clientError('ERR_CLIENT_MAILBOX', 'no such extra mailbox');
    if (m.revokedAt !== null) return;
    this.#revoke(m);
  }

  rotateMailbox(id: Uint8Array, graceMs: number = DEFAULT_ROTATION_GRACE_MS): NewMailbox {
    if (!Number.isInteger(graceMs) || graceMs < 0) throw clientError('ERR_CLIENT_MAILBOX', 'a grace period is a whole number of milliseconds, 0 or more');
    this.#loadMailboxes();
    const old = this.#extra.get(toHex(id));
    if (old === undefined || old.revokedAt !== null) throw clientError('ERR_CLIENT_MAILBOX', 'no such extra mailbox in use');
    const store = this.#c.store;
    return store.transaction(() => {
      const fresh = this.createMailbox();
      const updated = store.updateMailbox(old.id, { revokeAt: this.#now() + graceMs, replacedBy: fresh.id });
      if (updated !== null) this.#extra.set(toHex(old.id), updated);
      return fresh;
    });
  }

  mailboxes(): MailboxInfo[] {
    return this.#c.store.mailboxes().map((m) => ({
      id: m.id,
      address: encodeAddress(this.#c.crypto, { gateway: this.#init.gateway, mailbox: m.id }),
      createdAt: m.createdAt,
      registered: m.registered,
      refused: m.refused,
      revoked: m.revokedAt !== null,
      revokeConfirmed: m.revokeConfirmed,
      revokeAt: m.revokeAt,
      replacedBy: m.replacedBy,
    }));
  }

  /** Before start() the cache is empty: the store is the truth. */
  #loadMailboxes(): void {
    if (this.#running) return;
    this.#extra.clear();
    for (const m of this.#c.store.mailboxes()) this.#extra.set(toHex(m.id), m);
  }

  /** Revokes one extra mailbox now: its key is erased in the store; the gateway is told on a fetch tick. */
  #revoke(m: ExtraMailbox): void {
    const updated = this.#c.store.updateMailbox(m.id, { revokedAt: this.#now() });
    if (updated !== null) this.#extra.set(toHex(m.id), updated);
  }

  /** Rotations whose grace period ended: revoked now. */
  #revokeDue(now: number): void {
    for (const m of this.#extra.values()) {
      if (m.revokeAt === null || m.revokedAt !== null || m.revokeAt > now) continue;
      try {
        this.#revoke(m);
      } catch (err) {
        this.#log.warn('cannot revoke a rotated mailbox', { code: isBackchannelError(err) ? err.code : 'unknown' });
      }
    }
  }

  /** A `mailbox_reply` from the gateway. */
  #onMailboxReply(cmd: Extract<WireCommand, { kind: 'mailbox_reply' }>): void {
    const r = this.#registrar.answer(cmd, this.#c.clock.now());
    if (r.kind === 'ignored' || r.kind === 'pending') return;
    let updated: ExtraMailbox | null;
    try {
      updated = this.#c.store.updateMailbox(
        r.id,
        r.kind === 'registered' ? { registered: true } : r.kind === 'refused' ? { refused: r.reason } : { revokeConfirmed: true },
      );
    } catch (err) {
      this.#log.error('cannot record a mailbox answer', { code: isBackchannelError(err) ? err.code : 'unknown' });
      return; // asked again later
    }
    if (updated === null) return;
    this.#extra.set(toHex(r.id), updated);
    if (r.kind === 'registered') {
      this.#log.info('an extra mailbox is registered at the gateway');
      this.#emit({ type: 'mailbox', id: r.id, state: 'registered', reason: null });
    } else if (r.kind === 'refused') {
      this.#log.warn('the gateway refused an extra mailbox', { reason: r.reason });
      this.#emit({ type: 'mailbox', id: r.id, state: 'refused', reason: r.reason });
    } else {
      if (r.unexpected !== null) this.#log.warn('the gateway had no extra mailbox of ours to revoke', { reason: r.unexpected });
      this.#emit({ type: 'mailbox', id: r.id, state: 'revoked', reason: null });
    }
  }

  /**
   * Sends `body` (a rendezvous request, src/messaging/rendezvous.ts) to the rendezvous service of
   * the gateway that serves `channel` in the current document, in the next send slot, with a SURB
   * back to our mailbox. Resolves with the answer (the SURB payload, decrypted), or null when
   * none came within `timeoutMs` of sending, no gateway offers the service, or the client stops.
   * Adds no frame: the request takes a send tick's place.
   */
  rendezvous(channel: number, body: Uint8Array, timeoutMs: number): Promise<Uint8Array | null> {
    return new Promise((resolve) => {
      if (!this.#running) {
        resolve(null);
        return;
      }
      this.#rendezvousQueue.push({ channel, body: body.slice(), timeoutMs, resolve, keys: null, timer: null });
    });
  }

  #settleRendezvous(call: RendezvousCall, answer: Uint8Array | null): void {
    if (call.timer !== null) this.#c.clock.clearTimer(call.timer);
    call.timer = null;
    if (call.keys !== null) wipe(call.keys);
    call.keys = null;
    call.resolve(answer);
  }

  /** Sends the oldest queued rendezvous request; false when none could go (the slot then goes to others). */
  #sendRendezvous(doc: SignedDocument, tools: Tools): boolean {
    const call = this.#rendezvousQueue.shift();
    if (call === undefined) return false;
    const target = rendezvousGateway(doc.document, call.channel);
    const ours = this.#gatewayNode();
    if (target === undefined || ours === undefined) {
      this.#log.warn('no gateway offers the rendezvous service in the current document');
      this.#settleRendezvous(call, null);
      return false;
    }
    const surbId = this.#c.crypto.randomBytes(SURB_ID_LENGTH);
    const answerSurb = this.#ackSurb(doc, tools, surbId, this.#own, ours);
    const head = this.#forwardHead(doc, ours);
    let packet: Uint8Array;
    try {
      const route = [...head.nodes, target];
      const payload = encodeForwardPayload(tools.geometry, call.body, answerSurb.surb);
      packet = tools.sphinx.createPacket(pathHops(route, doc.document.epoch, this.#delays(route.length - 1, true), { recipient: RENDEZVOUS_RECIPIENT }), payload, head.header);
    } finally {
      head.wipe?.();
    }
    if (!this.#put(packet)) {
      wipe(answerSurb.keys);
      this.#rendezvousQueue.unshift(call);
      return false;
    }
    this.#sent.real++;
    call.keys = answerSurb.keys;
    const k = idKey(surbId);
    this.#rendezvousInFlight.set(k, call);
    call.timer = this.#c.clock.setTimer(() => {
      call.timer = null;
      if (!this.#rendezvousInFlight.delete(k) || call.keys === null) return;
      // Keep the keys for a late answer (bounded: the oldest go first).
      if (this.#rendezvousLate.size >= MAX_LATE_RENDEZVOUS) {
        const [oldest, v] = this.#rendezvousLate.entries().next().value!;
        wipe(v.keys);
        this.#rendezvousLate.delete(oldest);
      }
      this.#rendezvousLate.set(k, { body: idKey(call.body), keys: call.keys });
      call.keys = null;
      this.#settleRendezvous(call, null);
    }, call.timeoutMs);
    return true;
  }

  /** A late answer: serves an in-flight request with the same body, if one waits; else it is only counted. */
  #lateRendezvous(k: string, payload: Uint8Array, tools: Tools): boolean {
    const late = this.#rendezvousLate.get(k);
    if (late === undefined) return false;
    this.#rendezvousLate.delete(k);
    let answer: Uint8Array;
    try {
      answer = tools.sphinx.decryptSurbPayload(payload, late.keys);
    } catch {
      return false;
    } finally {
      wipe(late.keys);
    }
    this.#received.reply++;
    for (const [key, call] of this.#rendezvousInFlight) {
      if (idKey(call.body) === late.body) {
        this.#rendezvousInFlight.delete(key);
        this.#settleRendezvous(call, answer);
        break;
      }
    }
    return true;
  }

  // ---- internals: events, documents, links ----

  /** Whole milliseconds: what the store keeps. */
  #now(): number {
    return Math.floor(this.#c.clock.now());
  }

  #emit(e: ClientEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.warn('event listener failed', { error: err instanceof Error ? err.name : 'unknown' });
      }
    }
  }

  #node(identity: Uint8Array): DocumentNode | undefined {
    return this.#doc?.document.nodes.find((n) => equalBytes(n.identityKey, identity));
  }

  #gatewayNode(): DocumentNode | undefined {
    const n = this.#node(this.#init.gateway);
    return n !== undefined && n.role === 'gateway' ? n : undefined;
  }

  /** Where our link goes: our gateway's entry in the document, or else the one init recorded. */
  #linkTarget(): DocumentNode | undefined {
    return this.#gatewayNode() ?? this.#init.bootstrap?.gateway;
  }

  #expired(now: number): boolean {
    const doc = this.#doc;
    return doc !== null && now >= documentExpiresAt(doc.document.epoch, doc.document.params.epochPeriodMs);
  }

  #documentState(): DocumentState {
    const doc = this.#doc;
    if (doc === null) return 'none';
    const now = this.#c.clock.now();
    if (this.#expired(now)) return 'expired';
    return doc.document.epoch < epochAt(now, doc.document.params.epochPeriodMs) ? 'previous' : 'current';
  }

  /** On each fetch tick: the next epoch's document when its epoch has begun, and an expired one reported (once). */
  #documentTick(now: number): void {
    const up = this.#upcoming;
    if (up !== null && epochAt(now, up.document.params.epochPeriodMs) >= up.document.epoch) {
      this.#upcoming = null;
      if (this.#doc === null || this.#doc.document.epoch < up.document.epoch) this.#adopt(up);
    }
    if (this.#expired(now) && !this.#expiredReported) {
      this.#expiredReported = true;
      this.#log.warn('the network document expired and the gateway gave no newer one; real messages wait for one', { epoch: this.#doc!.document.epoch });
    }
  }

  /** Uses a document the gateway gave, and tells `onDocument`. */
  #adopt(doc: SignedDocument): void {
    this.setDocument(doc);
    try {
      this.#c.onDocument?.(doc);
    } catch (err) {
      this.#log.warn('onDocument failed', { code: isBackchannelError(err) ? err.code : 'unknown' });
    }
  }

  /** A `document` answer from the gateway. */
  #onDocument(cmd: Extract<WireCommand, { kind: 'document' }>): void {
    const dir = this.#directory;
    const tools = this.#tools;
    if (dir === null || tools === null) return;
    const now = this.#c.clock.now();
    const r = dir.answer(cmd, now, tools.params.epochPeriodMs, tools.codec.documentChunkLength);
    switch (r.kind) {
      case 'document': {
        const d = r.signed.document;
        if (this.#doc !== null && this.#doc.document.epoch >= d.epoch) return;
        if (epochAt(now, d.params.epochPeriodMs) >= d.epoch) {
          this.#log.info('network document from the gateway', { epoch: d.epoch, nodes: d.nodes.length });
          this.#adopt(r.signed);
        } else {
          this.#upcoming = r.signed;
          this.#log.debug('next network document from the gateway', { epoch: d.epoch });
        }
        return;
      }
      case 'invalid':
        this.#log.warn('a bad directory document from the gateway', { code: r.error.code });
        return;
      case 'unavailable':
        this.#log.debug('the gateway has no document for an epoch', { epoch: r.epoch });
        return;
      case 'partial':
      case 'ignored':
        return;
    }
  }

  #maybeConnect(): void {
    if (!this.#running || this.#link !== null || this.#connecting || this.#reconnectTimer !== null || this.#tools === null) return;
    const gw = this.#linkTarget();
    if (gw === undefined) {
      this.#log.warn('our gateway is not in the current document; waiting for the next');
      return;
    }
    this.#connecting = true;
    const commandLength = this.#tools.codec.commandLength;
    this.#c.connect(gw, this.#init.linkPrivateKey, commandLength, this.#admission.payload(gw.identityKey)).then(
      (link) => {
        this.#connecting = false;
        if (!this.#running) {
          void link.close().catch(() => undefined);
          return;
        }
        this.#link = link;
        link.setFetchSequence?.(this.#nextSeq);
        this.#leftWhileUnwritable = false;
        this.#onLinkUp(link);
        this.#admission.admitted();
        this.#reconnectDelay = RECONNECT_MIN_MS;
        this.#log.info('connected to the gateway', { gateway: gw.name });
        this.#emit({ type: 'connected' });
        void this.#readLoop(link);
      },
      (err: unknown) => {
        this.#connecting = false;
        const code = isBackchannelError(err) ? err.code : 'unknown';
        if (code.startsWith('ERR_ADMISSION_')) {
          // Refused by the gateway's admission: work is computed once and we link again at once;
          // a token refusal or a full gateway waits out the backoff (the status says why).
          const e = err as BackchannelError & { workBits?: number | null };
          void this.#admission.refused(gw.identityKey, { code, message: e.message, workBits: e.workBits ?? null }).then(
            () => (typeof e.workBits === 'number' && this.#running ? this.#maybeConnect() : this.#scheduleReconnect()),
            (failure: unknown) => {
              this.#log.error('the proof of work failed', { error: failure instanceof Error ? failure.message : 'unknown' });
              this.#scheduleReconnect();
            },
          );
          return;
        }
        this.#log.warn('cannot connect to the gateway', { gateway: gw.name, code });
        this.#scheduleReconnect();
      },
    );
  }

  #scheduleReconnect(): void {
    if (!this.#running || this.#reconnectTimer !== null) return;
    const delay = this.#reconnectDelay * (0.5 + this.#u01());
    this.#reconnectDelay = Math.min(RECONNECT_MAX_MS, this.#reconnectDelay * 2);
    this.#reconnectTimer = this.#c.clock.setTimer(() => {
      this.#reconnectTimer = null;
      this.#maybeConnect();
    }, delay);
  }

  async #readLoop(link: GatewayLink): Promise<void> {
    try {
      for (;;) {
        const m = await link.recv();
        if (m === null || this.#link !== link) break;
        const tools = this.#tools;
        if (tools === null) continue;
        let cmd: WireCommand;
        try {
          cmd = tools.codec.decode(m);
        } catch {
          this.#received.invalid++;
          continue;
        }
        if (cmd.kind === 'message') {
          if (!this.#onMessage(cmd)) break;
        } else if (cmd.kind === 'document') this.#onDocument(cmd);
        else if (cmd.kind === 'mailbox_reply') this.#onMailboxReply(cmd);
        else if (cmd.kind === 'disconnect') break;
      }
    } catch {
      // the link failed; reconnect below
    }
    if (this.#link === link) {
      this.#link = null;
      this.#directory?.linkLost();
      this.#registrar.linkLost();
      void link.close().catch(() => undefined);
      this.#log.info('disconnected from the gateway');
      if (link.clocks !== undefined && this.#running) {
        // The engine's clocks again until the next link (they send nothing without one).
        this.#sendClock.start();
        this.#loopClock.start();
      }
      this.#emit({ type: 'disconnected' });
      this.#scheduleReconnect();
    }
  }

  #put(packet: Uint8Array): boolean {
    const link = this.#link;
    const tools = this.#tools;
    if (link === null || tools === null) return false;
    const frame = tools.codec.encode({ kind: 'send_packet', packet });
    return this.#transmit(link, frame);
  }

  /** Puts `frame` on `link`: at the current tick's ideal time when the link sends at set times, else now. */
  #transmit(link: GatewayLink, frame: Uint8Array): boolean {
    try {
      if (this.#preparing !== null && link.clocks !== undefined) {
        link.clocks.prepare(this.#preparing, frame);
        this.#outstanding[this.#preparing]++;
      } else if (this.#departAt !== null && link.sendAt !== undefined) link.sendAt(frame, this.#departAt);
      else if (!link.trySend(frame)) void link.send(frame).catch(() => undefined);
      return true;
    } catch {
      return false;
    }
  }

  // ---- sending ----

  /** Per-hop delays for a route of `hops` hops that hold the packet: exponential at the network's mean; the first hop (a gateway) holds none unless `allDelay`. */
  #delays(hops: number, firstIsGateway: boolean): number[] {
    return hopDelaysMs(this.#u01, this.#tools!.params.mixMeanDelayMs, hops, firstIsGateway);
  }

  /** An acknowledgement SURB back to our mailbox through one mix per layer (the mixes and header keys from the pool when it has an entry). */
  #ackSurb(doc: SignedDocument, tools: Tools, surbId: Uint8Array, recipient: Uint8Array, lastHop: DocumentNode): { surb: Uint8Array; keys: Uint8Array } {
    const pooled = this.#pool?.take('surb', doc) ?? null;
    try {
      const route = [...(pooled?.nodes ?? chooseMixes(doc.document, this.#rand)), lastHop];
      const s = tools.sphinx.createSurb(pathHops(route, doc.document.epoch, this.#delays(route.length - 1, false), { recipient, surbId }), pooled?.header);
      return { surb: s.surb, keys: s.surbKeys };
    } finally {
      pooled?.wipe();
    }
  }

  /** A forward packet from our gateway through one mix per layer to `to`'s mailbox `mailbox`, carrying `frame` sealed and `surb`. */
  #forwardPacket(doc: SignedDocument, tools: Tools, to: DocumentNode, mailbox: Uint8Array, sealTo: Uint8Array, frame: Uint8Array, surb: Uint8Array): Uint8Array {
    const head = this.#forwardHead(doc, this.#gatewayNode()!);
    try {
      const route = [...head.nodes, to];
      const body = seal(this.#c.crypto, this.#c.aead, sealTo, frame, head.envelope ?? undefined);
      const payload = encodeForwardPayload(tools.geometry, body, surb);
      return tools.sphinx.createPacket(pathHops(route, doc.document.epoch, this.#delays(route.length - 1, true), { recipient: mailbox }), payload, head.header);
    } finally {
      head.wipe?.();
    }
  }

  /**
   * A forward route's hops but the last: our gateway `ours` and one mix per layer, with their
   * header keys and an envelope key from the pool when it has an entry (the caller calls `wipe`),
   * else drawn now.
   */
  #forwardHead(doc: SignedDocument, ours: DocumentNode): { nodes: readonly DocumentNode[]; header?: PooledRoute['header']; envelope?: PooledRoute['envelope']; wipe?: () => void } {
    const pooled = this.#pool?.take('forward', doc) ?? null;
    if (pooled !== null) {
      if (pooled.nodes[0] === ours) return pooled;
      pooled.wipe(); // made for another gateway of ours: cannot happen while the document is the same
    }
    return { nodes: [ours, ...chooseMixes(doc.document, this.#rand)] };
  }

  #onSendTick(): void {
    const doc = this.#doc;
    const tools = this.#tools;
    if (doc === null || tools === null || this.#link === null || this.#gatewayNode() === undefined) return;
    const now = this.#now();
    // Rendezvous requests are few (an open invite polls every few seconds) and wait on a person: first.
    if (this.#rendezvousQueue.length > 0 && !this.#expired(now)) {
      try {
        if (this.#sendRendezvous(doc, tools)) return;
      } catch (err) {
        this.#log.warn('cannot build a rendezvous packet', { code: isBackchannelError(err) ? err.code : 'unknown' });
      }
    }
    // With an expired document real fragments wait (their packets would be lost and their
    // attempts spent); a drop cover keeps the send clock's pattern.
    while (!this.#expired(now)) {
      const next = this.#nextDue(now, tools.params);
      if (next === null) break;
      if (next.attempts >= MAX_ATTEMPTS) {
        this.#fail(next.messageId, 'no acknowledgement after every retry');
        continue;
      }
      try {
        if (this.#sendReal(doc, tools, next, now)) return;
      } catch (err) {
        this.#log.warn('cannot build a packet', { code: isBackchannelError(err) ? err.code : 'unknown' });
        this.#fail(next.messageId, isBackchannelError(err) ? err.message : 'cannot build a packet');
        continue;
      }
      break; // its destination is unreachable this epoch; a drop cover goes in its place
    }
    this.#sendDrop(doc, tools);
  }

  /**
   * The due fragment to send, when the pace allows one more real fragment now. Round-robin by
   * message: of the messages with a fragment due, the one served longest ago (a new one first), so
   * that a short message, or a large one to another contact, does not wait behind all of a large
   * one's; within it, the lowest index first, then the longest due.
   */
  #nextDue(now: number, params: NetworkParameters): Pending | null {
    if (this.#paceBucket(params, now).tokens < 1) return null;
    let best: Pending | null = null;
    let bestServed = 0;
    for (const p of this.#pending.values()) {
      if (p.dueAt > now) continue;
      const served = this.#messages.get(p.message)!.served;
      if (best === null || served < bestServed || (served === bestServed && (p.index < best.index || (p.index === best.index && p.dueAt < best.dueAt)))) {
        best = p;
        bestServed = served;
      }
    }
    return best;
  }

  /** Notes that a fragment of `p`'s message went, for the round-robin of `#nextDue`. */
  #served(p: Pending): void {
    const m = this.#messages.get(p.message);
    if (m !== undefined) m.served = ++this.#sends;
  }

  /** The pacing bucket, refilled to `now`; made full again when the parameters change its rate. */
  #paceBucket(params: NetworkParameters, now: number): TokenBucket {
    const pace = senderPace(params);
    const b = this.#pace;
    if (b === null || b.rate.perSecond !== pace.perSecond || b.rate.burst !== pace.burst) return (this.#pace = new TokenBucket(pace, now));
    b.refill(now);
    return b;
  }

  /** Sends a real fragment; false when its destination is not in the document (it then counts an attempt). */
  #sendReal(doc: SignedDocument, tools: Tools, p: Pending, now: number): boolean {
    const store = this.#c.store;
    if (p.destination.kind === 'reply') {
      const surb = p.replySurb!;
      const payload = new Uint8Array(tools.geometry.forwardPayloadLength);
      payload.set(p.frame);
      const built = tools.sphinx.createPacketFromSurb(surb, payload);
      if (!equalBytes(built.firstHop, this.#init.gateway)) {
        this.#fail(p.messageId, 'the reply SURB starts at another gateway than ours');
        return false;
      }
      if (!this.#put(built.packet)) return false;
      this.#paceBucket(tools.params, now).take(now);
      this.#served(p);
      this.#sent.real++;
      this.#emit({ type: 'attempt', id: p.messageId, index: p.index, attempt: p.attempts + 1, total: fragmentCount(p.frame) });
      const m = store.transaction(() => {
        store.recordAttempt(p.messageId, p.index, now, null);
        return store.outgoing(p.messageId);
      });
      this.#untrack(key(p.messageId, p.index));
      if (m !== null) this.#progress(m);
      return true;
    }
    const to = this.#node(p.destination.gateway);
    const due = now + Math.ceil(this.#timeout(p.attempts + 1));
    if (to === undefined || to.role !== 'gateway') {
      store.recordAttempt(p.messageId, p.index, now, due);
      p.attempts++;
      p.dueAt = due;
      return false;
    }
    const surbId = this.#c.crypto.randomBytes(SURB_ID_LENGTH);
    const ack = this.#ackSurb(doc, tools, surbId, this.#own, this.#gatewayNode()!);
    const packet = this.#forwardPacket(doc, tools, to, p.destination.mailbox, p.destination.mailbox, p.frame, ack.surb);
    // On the link first, then on disk: a crash between the two re-sends the fragment, which the
    // receiver discards as a duplicate; the other order would delay departures by a commit.
    if (!this.#put(packet)) {
      wipe(ack.keys);
      return false;
    }
    this.#paceBucket(tools.params, now).take(now);
    this.#served(p);
    this.#sent.real++;
    try {
      store.transaction(() => {
        store.putSurb(surbId, { purpose: 'ack', keys: ack.keys, messageId: p.messageId, index: p.index, sentAt: now, attempt: p.attempts + 1 }, now);
        store.recordAttempt(p.messageId, p.index, now, due);
      });
    } catch (err) {
      // The packet is out; without its record the fragment simply goes again when due.
      this.#log.error('cannot record a sent fragment', { code: isBackchannelError(err) ? err.code : 'unknown' });
    }
    wipe(ack.keys);
    p.attempts++;
    p.dueAt = due;
    this.#emit({ type: 'attempt', id: p.messageId, index: p.index, attempt: p.attempts, total: fragmentCount(p.frame) });
    return true;
  }

  #sendDrop(doc: SignedDocument, tools: Tools): void {
    const packet = this.#dropPacket(doc, tools);
    if (packet !== null && this.#put(packet)) this.#sent.drop++;
  }

  /** A drop cover packet to a random gateway's drop mailbox; null when the document has no gateway. */
  #dropPacket(doc: SignedDocument, tools: Tools): Uint8Array | null {
    const gws = gateways(doc.document);
    if (gws.length === 0) return null;
    const to = gws[this.#rand(gws.length)]!;
    const ack = this.#ackSurb(doc, tools, this.#c.crypto.randomBytes(SURB_ID_LENGTH), DROP_MAILBOX, to);
    // The same work as a real fragment: sealed (to ourselves, nobody opens it) with a SURB.
    const packet = this.#forwardPacket(doc, tools, to, DROP_MAILBOX, this.#mailbox, loopFrame(tools.geometry), ack.surb);
    wipe(ack.keys);
    return packet;
  }

  #onLoopTick(): void {
    const doc = this.#doc;
    const tools = this.#tools;
    const ours = doc === null ? undefined : this.#gatewayNode();
    if (doc === null || tools === null || this.#link === null || ours === undefined) return;
    const now = this.#now();
    const surbId = this.#c.crypto.randomBytes(SURB_ID_LENGTH);
    try {
      const ack = this.#ackSurb(doc, tools, surbId, this.#own, ours);
      // To our main mailbox, where it looks like first-contact mail to our gateway.
      const packet = this.#forwardPacket(doc, tools, ours, this.#mailbox, this.#mailbox, loopFrame(tools.geometry), ack.surb);
      if (this.#put(packet)) {
        this.#sent.loop++;
        this.#c.store.putSurb(surbId, { purpose: 'loop', keys: ack.keys, sentAt: now }, now);
      }
      wipe(ack.keys);
    } catch (err) {
      this.#log.warn('cannot build a loop packet', { code: isBackchannelError(err) ? err.code : 'unknown' });
    }
  }

  /** The retransmission timeout after attempt `attempt` (1-based): adaptive, grown per attempt, randomised. */
  #timeout(attempt: number): number {
    let rto: number;
    if (this.#srtt === null) {
      const p = this.#tools!.params;
      // Before any sample: 4 × the expected round trip (mixes both ways, a send and a fetch wait), plus a second.
      const rtt = 2 * p.layers * p.mixMeanDelayMs + 1000 / Math.max(p.fetchRatePerS, 0.001) + 1000 / Math.max(p.sendRatePerS, 0.001);
      rto = 4 * rtt + 1000;
    } else {
      rto = this.#srtt + 4 * this.#rttvar;
    }
    rto = Math.min(MAX_RTO_MS, Math.max(MIN_RTO_MS, rto));
    const base = Math.min(MAX_RTO_MS, rto * BACKOFF ** Math.min(attempt - 1, 32));
    return Math.min(2 * MAX_RTO_MS, base + exponentialMs(this.#u01, base / 2));
  }

  #sampleRtt(ms: number): void {
    if (this.#srtt === null) {
      this.#srtt = ms;
      this.#rttvar = ms / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - ms);
      this.#srtt = 0.875 * this.#srtt + 0.125 * ms;
    }
  }

  #fail(messageId: Uint8Array, reason: string): void {
    const m = this.#c.store.failMessage(messageId);
    for (const [k, p] of this.#pending) if (equalBytes(p.messageId, messageId)) this.#untrack(k);
    if (m !== null) this.#emit({ type: 'failed', id: messageId, reason });
  }

  #progress(m: OutgoingMessage): void {
    this.#emit({ type: 'progress', id: m.id, done: m.done, total: m.fragments });
    if (m.status === 'delivered') this.#emit({ type: 'delivered', id: m.id });
    else if (m.status === 'sent') this.#emit({ type: 'sent', id: m.id });
  }

  #track(f: OutgoingFragment): void {
    const k = key(f.messageId, f.index);
    const message = toHex(f.messageId);
    if (!this.#pending.has(k)) {
      const m = this.#messages.get(message);
      if (m === undefined) this.#messages.set(message, { pending: 1, served: 0 });
      else m.pending++;
    }
    this.#pending.set(k, {
      messageId: f.messageId,
      message,
      index: f.index,
      frame: f.frame,
      destination: f.destination,
      replySurb: f.replySurb,
      attempts: f.attempts,
      dueAt: f.dueAt,
    });
  }

  #untrack(k: string): void {
    const p = this.#pending.get(k);
    if (p === undefined) return;
    this.#pending.delete(k);
    const m = this.#messages.get(p.message)!;
    if (--m.pending === 0) this.#messages.delete(p.message);
  }

  // ---- receiving ----

  /**
   * One tick of the fetch clock (constant rate, ideal times, so the rate achieved is the configured
   * one): a mailbox fetch, or a document request in its place (the same frame length, the same clock).
   */
  #onFetchTick(): void {
    const link = this.#link;
    const tools = this.#tools;
    const now = this.#c.clock.now();
    this.#documentTick(now);
    // A rotation's grace period ends whether or not we are linked: the key goes at once.
    this.#revokeDue(this.#now());
    if (link === null || tools === null) return;
    const ask = this.#directory?.request(now, this.#doc, this.#upcoming, tools.params.epochPeriodMs) ?? null;
    const mailboxAsk = ask !== null || this.#lastTickMailbox || !tools.codec.carriesMailboxes ? null : this.#registrar.request(now, this.#extra.values());
    this.#lastTickMailbox = mailboxAsk !== null;
    if (link.clocks !== undefined) {
      // The link's fetch clock sends a fetch at each of its ticks; a request goes in place of one.
      try {
        if (ask !== null) link.clocks.replaceFetch(tools.codec.encode({ kind: 'get_document', epoch: ask.epoch, chunk: ask.chunk }));
        else if (mailboxAsk !== null) link.clocks.replaceFetch(tools.codec.encode({ kind: 'mailbox_request', action: mailboxAsk.action, mailbox: mailboxAsk.mailbox }));
      } catch {
        // closed; the read loop reconnects
      }
      return;
    }
    if (ask === null && mailboxAsk === null && this.#departAt !== null && link.fetchAt !== undefined) {
      // The link's thread writes the sequence when the fetch leaves: one committed since this tick counts.
      try {
        link.fetchAt(this.#departAt);
      } catch {
        // closed; the read loop reconnects
      }
      return;
    }
    const frame =
      ask !== null
        ? tools.codec.encode({ kind: 'get_document', epoch: ask.epoch, chunk: ask.chunk })
        : mailboxAsk !== null
          ? tools.codec.encode({ kind: 'mailbox_request', action: mailboxAsk.action, mailbox: mailboxAsk.mailbox })
          : tools.codec.encode({ kind: 'retrieve_message', sequence: this.#nextSeq });
    this.#transmit(link, frame); // false when closed: the read loop reconnects
  }

  /**
   * One `message` from the gateway. Returns false when the store failed: the link is then dropped,
   * so that the entry (not confirmed) is handed out again on the next link rather than confirmed
   * by a later one.
   */
  #onMessage(cmd: Extract<WireCommand, { kind: 'message' }>): boolean {
    const writable = this.#c.storeWritable?.() ?? true;
    if (!writable) {
      // Not taken: what is taken must be recorded first. The gateway keeps it, unconfirmed.
      if (!cmd.empty) this.#leftWhileUnwritable = true;
      return true;
    }
    if (this.#leftWhileUnwritable) {
      // Writes work again: entries left on this link are handed out again only on a new one.
      this.#leftWhileUnwritable = false;
      return false;
    }
    if (cmd.empty) return true; // nothing waits
    const seq = cmd.sequence;
    const address = cmd.mailbox === undefined || cmd.mailbox === null ? '' : idKey(cmd.mailbox);
    const mark = this.#taken.get(address);
    if (mark !== undefined && seq <= mark) {
      // One we took already: name it in the next fetch, so that the gateway deletes it.
      this.#nextSeq = seq + 1;
      this.#link?.setFetchSequence?.(this.#nextSeq);
      return true;
    }
    const store = this.#c.store;
    const events: ClientEvent[] = [];
    try {
      store.transaction(() => {
        this.#process(cmd.surbId, cmd.payload, cmd.mailbox ?? null, events);
        store.setNextMailboxSeq(seq + 1);
      });
    } catch (err) {
      // The entry is unusable (or the store failed): count it, and move past it unless the store is at fault.
      this.#received.invalid++;
      if (isBackchannelError(err) && err.code !== 'ERR_CLIENT_STATE') store.setNextMailboxSeq(seq + 1);
      else {
        this.#log.error('cannot store a mailbox entry', { code: isBackchannelError(err) ? err.code : 'unknown' });
        return false;
      }
    }
    this.#taken.delete(address);
    if (this.#taken.size >= MAX_TAKEN_MARKS) this.#taken.delete(this.#taken.keys().next().value!);
    this.#taken.set(address, seq);
    this.#nextSeq = seq + 1;
    this.#link?.setFetchSequence?.(this.#nextSeq);
    for (const e of events) this.#emit(e);
    return true;
  }

  /**
   * Applies one mailbox entry to the store (inside the caller's transaction); events go out after
   * the commit. `mailbox` is the extra mailbox it came to, null for the main one.
   */
  #process(surbId: Uint8Array | null, payload: Uint8Array, mailbox: Uint8Array | null, events: ClientEvent[]): void {
    const tools = this.#tools!;
    const store = this.#c.store;
    const now = this.#now();
    if (surbId !== null) {
      if (this.#lateRendezvous(idKey(surbId), payload, tools)) return;
      const call = this.#rendezvousInFlight.get(idKey(surbId));
      if (call !== undefined && call.keys !== null) {
        let answer: Uint8Array;
        try {
          answer = tools.sphinx.decryptSurbPayload(payload, call.keys);
        } catch {
          this.#received.invalid++;
          return;
        }
        this.#rendezvousInFlight.delete(idKey(surbId));
        this.#received.reply++;
        this.#settleRendezvous(call, answer);
        return;
      }
      const rec = store.surb(surbId);
      if (rec === null) {
        this.#received.invalid++;
        return;
      }
      let plain: Uint8Array;
      try {
        plain = tools.sphinx.decryptSurbPayload(payload, rec.keys);
      } catch {
        this.#received.invalid++;
        return;
      }
      store.deleteSurb(surbId);
      if (rec.purpose === 'loop') {
        this.#received.loop++;
        return;
      }
      if (rec.purpose === 'ack') {
        this.#received.ack++;
        const m = store.fragmentDone(rec.messageId, rec.index);
        const k = key(rec.messageId, rec.index);
        if (this.#pending.has(k)) {
          if (rec.attempt === 1 && this.#pending.get(k)!.attempts === 1) this.#sampleRtt(now - rec.sentAt); // Karn: unambiguous samples only
          this.#untrack(k);
          if (m !== null) {
            events.push({ type: 'progress', id: m.id, done: m.done, total: m.fragments });
            if (m.status === 'delivered') events.push({ type: 'delivered', id: m.id });
          }
        }
        return;
      }
      this.#received.reply++;
      this.#fragment(plain, rec.messageId, now, events);
      return;
    }
    let frame: Uint8Array | null;
    if (mailbox === null) {
      frame = open(this.#c.crypto, this.#c.aead, this.#init.linkPrivateKey, this.#mailbox, payload);
    } else {
      // An extra mailbox's key, read for this entry and wiped after; none once it is revoked.
      const key = store.mailboxKey(mailbox);
      if (key === null) {
        this.#received.invalid++;
        return;
      }
      frame = open(this.#c.crypto, this.#c.aead, key, mailbox, payload);
      wipe(key);
    }
    if (frame === null) {
      this.#received.invalid++;
      return;
    }
    this.#fragment(frame, null, now, events, mailbox);
  }

  #fragment(frameBytes: Uint8Array, inReplyTo: Uint8Array | null, now: number, events: ClientEvent[], mailbox: Uint8Array | null = null): void {
    const tools = this.#tools!;
    try {
      const frame = decodeFrame(tools.geometry, frameBytes);
      if (frame.kind === 'loop') {
        this.#received.loop++;
        return;
      }
      const r = this.#c.store.putFragment(
        { messageId: frame.messageId.slice(), index: frame.index, count: frame.count, data: frame.data.slice(), receivedAt: now, inReplyTo, mailbox },
        (joined) => decodeMessage(tools.geometry, joined),
      );
      this.#received.fragment++;
      if (r.kind === 'complete') events.push({ type: 'message', message: r.message });
      else if (r.kind === 'partial') events.push({ type: 'partial', id: frame.messageId.slice(), have: r.have, total: r.count, mailbox: mailbox === null ? null : mailbox.slice() });
    } catch (err) {
      if (!isBackchannelError(err, 'ERR_CLIENT_FRAME')) throw err;
      this.#received.invalid++; // a malformed frame or message: dropped, counted
    }
  }

  #prune(): void {
    if (!this.#running) return;
    const now = this.#now();
    const epochMs = this.#tools?.params.epochPeriodMs;
    try {
      // A SURB lives as long as the mix keys it was made with: the epoch it was made in and the next.
      if (epochMs !== undefined) this.#c.store.pruneSurbs(now - 3 * epochMs);
      this.#c.store.pruneFragments(now - KEEP_FRAGMENTS_MS);
      this.#c.store.pruneOutgoing(now - KEEP_FINISHED_MS);
    } catch (err) {
      this.#log.warn('pruning the client state failed', { code: isBackchannelError(err) ? err.code : 'unknown' });
    }
    this.#pruneTimer = this.#c.clock.setTimer(() => this.#prune(), PRUNE_INTERVAL_MS);
  }
}

/** The fragment count a fragment frame of ours carries (frames.ts: after kind, message id and index). */
function fragmentCount(frame: Uint8Array): number {
  const o = 1 + MESSAGE_ID_LENGTH + 2;
  return (frame[o]! << 8) | frame[o + 1]!;
}

function key(messageId: Uint8Array, index: number): string {
  return `${toHex(messageId)}:${index}`;
}
