/**
 * The packet's path through a mix node or a gateway, stage by stage:
 *
 *   accept (this file: Noise XK listeners, links classified as previous hop or client, frames
 *   decoded) -> unwrap (unwrap.ts; on worker threads, unwrap-pool.ts) -> replay check (replay.ts)
 *   -> delay (delay.ts) -> forward (forward.ts)
 *
 * A gateway adds two stages that it owns and passes in (gateway.ts): its client sessions
 * (fetch.ts), which get every command from a client link, and its final stage (store.ts), which
 * returns what to do with a packet that ends here: store it, then acknowledge it with a packet
 * that the node forwards like any other. A mix has neither.
 *
 * Every packet that is not sent on is counted under one drop reason (src/ops/metrics.ts). Every
 * queue is bounded by `limits.maxQueuedPackets`.
 */
import { Gauge } from 'prom-client';
import type { Link } from '../link/link.js';
import { CloseReason } from '../link/link.js';
import type { AcceptVerdict } from '../link/link.js';
import type { MessageLink } from '../link/message-link.js';
import { connectTcp, listenTcp } from '../link/tcp.js';
import { listenWs } from '../link/ws-node.js';
import type { LinkServer } from '../link/acceptor.js';
import type { ListenerView } from './pressure.js';
import type { NoiseCrypto } from '../noise/crypto.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/log.js';
import type { DropReason, NodeMetrics } from '../ops/metrics.js';
import type { DocumentNode, NetworkParameters, NodeRole, SignedDocument } from '../pki/types.js';
import type { NodeLimits, ListenAddress } from '../config/types.js';
import type { Geometry } from '../sphinx/geometry.js';
import type { PacketFormat } from '../sphinx/format.js';
import { Sphinx } from '../sphinx/sphinx.js';
import { DelayQueue } from './delay.js';
import { ReplayCaches } from './replay.js';
import type { ReplayTagJournal } from './replay.js';
import { UnwrapPool } from './unwrap-pool.js';
import { InlineUnwrapper } from './unwrap.js';
import type { UnwrapOutcome } from './unwrap.js';
import { WireCodec } from '../wire/commands.js';
import type { WireCommand } from '../wire/commands.js';
import { idKey } from '../util/bytes.js';
import { IdMap } from '../util/id-map.js';
import type { ClientSessions } from './fetch.js';
import type { MailboxEntry, StoreResult } from './mailbox.js';
import type { FinalAction, FinalOutcome } from './store.js';
import { PeerLinks } from './forward.js';
import { acceptedEpochs, KEY_GRACE_FRACTION, loadedEpochs } from './epochs.js';
import type { Connect } from './forward.js';
import { splitHostPort } from '../config/_validate.js';
import { randomBytes } from 'node:crypto';
import { uniform01 } from '../client/poisson.js';
import { randomIntFrom } from '../pki/route.js';
import type { RandomInt } from '../pki/route.js';
import { coverPacket, Emitter } from './emit.js';
import type { Outgoing } from './emit.js';
import { UndecidedLinks } from './undecided.js';
import type { UndecidedLimits } from './undecided.js';

/** Where documents come from: the follower in a server, a fixed document in a benchmark. */
export interface DocumentSource {
  current(): SignedDocument | null;
  /** Calls `fn` with each new document; returns an unsubscribe function. */
  subscribe(fn: (doc: SignedDocument) => void): () => void;
}

/** The node's X25519 mix private keys, by epoch (the key store in a server). */
export interface MixKeySource {
  privateKey(epoch: number): Uint8Array | null;
}

export interface PacketNodeInit {
  readonly name: string;
  readonly role: NodeRole;
  /** 1..layers for a mix, 0 for a gateway. */
  readonly layer: number;
  /** Ed25519 identity public key: the node id other hops name. */
  readonly identityKey: Uint8Array;
  readonly linkKey: { readonly privateKey: Uint8Array; readonly publicKey: Uint8Array };
  readonly listen: ListenAddress;
  /** A WebSocket listener as well (gateways, for browser clients), with the same policy. */
  readonly wsListen?: ListenAddress | null;
  readonly limits: NodeLimits;
  readonly params: NetworkParameters;
  /** A gateway's bounds on links held undecided before its first document (undecided.ts); its defaults otherwise. */
  readonly undecided?: UndecidedLimits;
}

export interface PacketNodeComponents {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: NodeMetrics;
  readonly documents: DocumentSource;
  readonly keys: MixKeySource;
  readonly noise?: NoiseCrypto;
  /** Makes a link to a next hop; TCP to its advertised address by default. */
  readonly connect?: Connect;
  /** Listens for links from previous hops and clients; TCP on `init.listen` by default. */
  readonly listen?: Listen;
  /**
   * The packet format, built once with the network's geometry (every packet size comes from
   * `format.geometry`). Sphinx is unwrapped on worker threads (`limits.workers`); any other format
   * (the simulator's labelled packets) on the calling thread.
   */
  readonly format: PacketFormat;
  /** Random bytes for the gateway's emission clock and cover routes: the CSPRNG by default (the simulator's seeded stream). */
  readonly random?: (n: number) => Uint8Array;
  /** Replay tags on disk, so that a restart within an epoch still refuses its replays (replay-journal.ts); memory only without. */
  readonly replayJournal?: ReplayTagJournal;
}

/** What a gateway adds to the node: it owns these, the node calls them. */
export interface GatewayStages {
  /** Every command from a client link (a link from a key that is not a previous hop). */
  readonly clients: ClientSessions;
  /** The final stage: what to do with a packet that ends at this gateway. */
  final(outcome: FinalOutcome): FinalAction;
  /** Commits a mailbox entry; resolves once it is durable (or refused). */
  commit(entry: MailboxEntry): Promise<StoreResult>;
  /** An acknowledgement went into layer 1. */
  ackSent(): void;
  /** A cover packet of the gateway's own went into layer 1 in an emission slot no acknowledgement took. */
  coverSent(): void;
  /** Admits a client key, given its handshake payload (admission.ts); every client is admitted without it. */
  admit?(remoteStatic: Uint8Array, payload: Uint8Array): AcceptVerdict;
}

/** What a node tells its listener: where, with which key, whom to accept, where links go. */
export interface ListenPolicy {
  readonly host: string;
  readonly port: number;
  readonly staticKey: Uint8Array;
  readonly crypto?: NoiseCrypto;
  readonly maxMessageLength: number;
  accept(remoteStatic: Uint8Array, payload: Uint8Array): AcceptVerdict;
  onLink(link: MessageLink): void;
}

/** What a listener gives back: its port, how to close it, and (real listeners) its counts for metrics. */
export type Listen = (policy: ListenPolicy) => Promise<{ readonly port: number; close(): Promise<void> } & Partial<Omit<LinkServer, 'port' | 'close' | 'host'>>>;

/** Who is on the other end of an incoming link. */
export type PeerKind = 'previous' | 'client';

interface Delayed {
  readonly peer: DocumentNode;
  readonly frame: Uint8Array;
  readonly receivedAt: number;
  readonly delayMs: number;
  /** The replay journal's number for its tag: written before the packet leaves. */
  readonly journalSeq: number;
}

const EMPTY = new Uint8Array(0);

/** Packets in the unwrap pool at most, whatever limits.maxQueuedPackets allows (16 384 packets of ~3 kB: 48 MiB of rings). */
const MAX_UNWRAP_IN_FLIGHT_PER_NODE = 16_384;

/** Parameters must match those the network publishes; a document with others is refused. */
export function sameParams(a: NetworkParameters, b: NetworkParameters): boolean {
  return (
    a.epochPeriodMs === b.epochPeriodMs &&
    a.hops === b.hops &&
    a.userPayloadLength === b.userPayloadLength &&
    a.withSurb === b.withSurb &&
    a.layers === b.layers
  );
}

export class PacketNode {
  readonly init: PacketNodeInit;
  readonly geometry: Geometry;
  readonly codec: WireCodec;
  readonly #c: PacketNodeComponents;
  readonly #gateway: GatewayStages | null;
  readonly #pool: UnwrapPool | InlineUnwrapper;
  readonly #replays: ReplayCaches;
  readonly #delays: DelayQueue<Delayed>;
  readonly #peers: PeerLinks;
  /** A gateway's own packets into layer 1 (acknowledgements, else cover), on its own clock. */
  readonly #emitter: Emitter | null;
  /** A gateway's links from before its first document, held until it can tell a mix from a client. */
  readonly #undecided: UndecidedLinks<MessageLink> | null;
  /** Sets a held link's kind once it is decided. */
  readonly #decided = new Map<MessageLink, (kind: PeerKind | 'refused') => void>();
  /** The gateway's linked clients, counted at most once a second (the emission rate follows it). */
  #linked = 0;
  #linkedAt = -Infinity;
  #server: Awaited<ReturnType<Listen>> | null = null;
  #wsServer: LinkServer | null = null;
  #docs: SignedDocument[] = [];
  /** The nodes of the documents held, by id (looked up per packet: no key string is built). */
  #nodes = new IdMap<DocumentNode>();
  #previousLinkKeys = new Set<string>();
  #loadedEpochs = new Set<number>();
  #epochs: number[] = [];
  #epochsFrom = 0;
  #epochsUntil = 0;
  /** Counts the documents taken in: a link classified under an older one is looked at again. */
  #generation = 0;
  #epochTimer: unknown = null;
  #gaugeTimer: unknown = null;
  #unsubscribe: (() => void) | null = null;
  #stopped = false;

  /** Use createMixNode or createGateway. */
  constructor(init: PacketNodeInit, components: PacketNodeComponents, gateway: GatewayStages | null) {
    if ((init.role === 'gateway') !== (gateway !== null)) throw new RangeError('node: a gateway, and only a gateway, has gateway stages');
    this.init = init;
    this.#c = components;
    this.#gateway = gateway;
    this.geometry = components.format.geometry;
    this.codec = new WireCodec({ packetLength: this.geometry.packetLength });
    const bound = init.limits.maxQueuedPackets;
    this.#pool =
      components.format instanceof Sphinx
        ? new UnwrapPool({
            geometry: this.geometry,
            workers: init.limits.workers,
            maxInFlight: Math.max(1, Math.min(bound, MAX_UNWRAP_IN_FLIGHT_PER_NODE)),
            // Forward packets leave the ring straight into the command that carries them on.
            allocatePacket: () => this.codec.newSendPacket().packet,
          })
        : new InlineUnwrapper(components.format);
    this.#replays = new ReplayCaches(init.limits.replayCacheEntries, components.replayJournal ?? null);
    this.#delays = new DelayQueue<Delayed>({ clock: components.clock, capacity: bound, onDue: (items) => this.#release(items) });
    this.#peers = new PeerLinks({
      clock: components.clock,
      log: components.log,
      connect: components.connect ?? ((peer) => this.#connectTcp(peer)),
      drop: (r) => this.drop(r),
      sent: () => {
        components.metrics.counts.packetsOut++;
      },
    });
    this.#emitter = null;
    this.#undecided =
      gateway === null
        ? null
        : new UndecidedLinks<MessageLink>(init.undecided ?? {}, {
            clock: components.clock,
            registry: components.metrics.registry,
            dropped: (n) => components.metrics.drop('undecided', n),
            expired: (link) => {
              this.#decided.delete(link);
              void link.close(CloseReason.timeout).catch(() => undefined);
            },
          });
    const linksByKind = (): Record<string, number> => this.linksByKind();
    new Gauge({
      name: 'backchannel_links_by_kind',
      help: 'Links open now, by kind: previous (from the previous layer), client, undecided (a gateway before its first document), next (made to next hops)',
      labelNames: ['kind'] as const,
      registers: [components.metrics.registry],
      collect() {
        const n = linksByKind();
        for (const [kind, v] of Object.entries(n)) this.set({ kind }, v);
      },
    });
    if (gateway !== null) {
      const random = components.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
      const u01 = uniform01(random);
      const rand = randomIntFrom(random);
      this.#emitter = new Emitter({
        clock: components.clock,
        u01,
        ratePerS: () => this.init.params.gatewayRatePerClientPerS * Math.max(1, this.#linkedClients(gateway)),
        cover: () => this.#cover(rand, u01),
        send: (out) => {
          this.#replays.beforeSend();
          this.#peers.send(out.peer, out.frame);
        },
        drop: (r) => this.drop(r),
        sent: (kind) => (kind === 'ack' ? gateway.ackSent() : gateway.coverSent()),
      });
    }
  }

  get port(): number {
    return this.#server?.port ?? 0;
  }

  /** The document in use (the newest), or null before the first. */
  get document(): SignedDocument | null {
    return this.#docs[0] ?? null;
  }

  get epoch(): number {
    return Math.floor(this.#c.clock.now() / this.init.params.epochPeriodMs);
  }

  drop(reason: DropReason): void {
    this.#c.metrics.drop(reason);
  }

  async start(): Promise<void> {
    this.#onEpochTick();
    const doc = this.#c.documents.current();
    if (doc) this.#useDocument(doc);
    this.#unsubscribe = this.#c.documents.subscribe((d) => this.#useDocument(d));
    const policy = {
      staticKey: this.init.linkKey.privateKey,
      ...(this.#c.noise ? { crypto: this.#c.noise } : {}),
      maxMessageLength: this.codec.commandLength,
      accept: (rs: Uint8Array, payload: Uint8Array): AcceptVerdict => {
        const kind = this.#classify(rs);
        // Before the first document a layer-3 mix looks like a client: held undecided, admitted nobody.
        if (kind === 'client' && this.#undecided !== null && this.document === null) return this.#undecided.accept(rs, payload);
        if (kind === 'client') return this.#gateway?.admit?.(rs, payload) ?? true;
        return kind !== null;
      },
      onLink: (link: MessageLink) => this.#onLink(link),
    };
    const listen: Listen = this.#c.listen ?? ((p) => listenTcp(p));
    this.#server = await listen({ host: this.init.listen.host, port: this.init.listen.port, ...policy });
    const ws = this.init.wsListen;
    if (ws) this.#wsServer = await listenWs({ host: ws.host, port: ws.port, ...policy });
    const gauges = (): void => {
      this.#c.metrics.queueDepth.set({ queue: 'unwrap' }, this.#pool.inFlight);
      this.#c.metrics.queueDepth.set({ queue: 'delay' }, this.#delays.size);
      this.#c.metrics.queueDepth.set({ queue: 'connect' }, this.#peers.queued);
      this.#gaugeTimer = this.#c.clock.setTimer(gauges, 1000);
    };
    gauges();
    this.#emitter?.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#epochTimer !== null) this.#c.clock.clearTimer(this.#epochTimer);
    if (this.#gaugeTimer !== null) this.#c.clock.clearTimer(this.#gaugeTimer);
    const held = this.#delays.clear();
    if (held.length > 0) this.#c.metrics.drop('shutdown', held.length);
    const acks = this.#emitter?.stop() ?? 0;
    if (acks > 0) this.#c.metrics.drop('shutdown', acks);
    this.#delays.stop();
    this.#undecided?.stop();
    this.#peers.close();
    await this.#server?.close();
    await this.#wsServer?.close();
    await this.#pool.close();
    this.#replays.close();
  }

  /** The listeners running now, named for metrics (`link`, and `websocket` on a gateway). */
  listeners(): ListenerView[] {
    const out: ListenerView[] = [];
    if (this.#server !== null) out.push({ name: 'link', ...viewOf(this.#server) });
    if (this.#wsServer !== null) out.push({ name: 'websocket', ...viewOf(this.#wsServer) });
    return out;
  }

  /** Links open now by kind, as the document in use places their keys (read when metrics are scraped). */
  linksByKind(): { previous: number; client: number; undecided: number; next: number } {
    const n = { previous: 0, client: 0, undecided: 0, next: this.#peers.open };
    for (const server of [this.#server, this.#wsServer]) {
      const links = server?.links as ReadonlySet<MessageLink> | undefined;
      if (links === undefined) continue;
      for (const link of links) {
        if (!link.isOpen) continue;
        if (this.#undecided?.holds(link) === true) n.undecided++;
        else if (this.#previousLinkKeys.has(idKey(link.remoteStatic))) n.previous++;
        else n.client++;
      }
    }
    return n;
  }

  /** Looks a node up by its id in the documents held (the newest and the one before). */
  node(id: Uint8Array): DocumentNode | undefined {
    return this.#nodes.get(id);
  }

  /** Who is on the other end of a link from this static key: a previous hop, a client (gateways only), or nobody accepted. */
  #classify(remoteStatic: Uint8Array): PeerKind | null {
    if (this.#previousLinkKeys.has(idKey(remoteStatic))) return 'previous';
    return this.#gateway !== null ? 'client' : null;
  }

  /** The nodes of a layer (0: gateways) in the newest document. */
  layerNodes(layer: number): DocumentNode[] {
    const doc = this.document;
    if (!doc) return [];
    return doc.document.nodes.filter((n) => n.layer === layer && (layer === 0 ? n.role === 'gateway' : n.role === 'mix'));
  }

  #connectTcp(peer: DocumentNode): Promise<Link> {
    return connectTcp({
      ...splitHostPort(peer.tcpAddress),
      staticKey: this.init.linkKey.privateKey,
      remoteStatic: peer.linkKey,
      maxMessageLength: this.codec.commandLength,
      handshakeTimeoutMs: 5_000,
      ...(this.#c.noise ? { crypto: this.#c.noise } : {}),
    });
  }

  #useDocument(signed: SignedDocument): void {
    const doc = signed.document;
    if (!sameParams(doc.params, this.init.params)) {
      this.#c.log.error('document parameters differ from this node\'s configuration; document ignored', { epoch: doc.epoch });
      return;
    }
    const newest = this.#docs[0];
    if (newest && doc.epoch < newest.document.epoch) return;
    if (newest && doc.epoch === newest.document.epoch) this.#docs = [signed, ...this.#docs.slice(1)];
    else this.#docs = newest ? [signed, newest] : [signed];
    this.#generation++;
    this.#nodes = new IdMap();
    this.#previousLinkKeys = new Set();
    const prevLayer = this.init.role === 'gateway' ? doc.params.layers : this.init.layer - 1;
    for (const d of [...this.#docs].reverse()) {
      for (const n of d.document.nodes) {
        this.#nodes.set(n.identityKey, n);
        const inPrev = prevLayer === 0 ? n.role === 'gateway' : n.role === 'mix' && n.layer === prevLayer;
        if (inPrev) this.#previousLinkKeys.add(idKey(n.linkKey));
      }
    }
    this.#peers.retain(new Set(Array.from(this.#nodes.entries(), ([id]) => idKey(id))));
    this.#c.metrics.epoch.set(doc.epoch);
    if (this.#undecided !== null) for (const link of this.#undecided.links()) this.#decideLink(link);
  }

  /** The epochs whose keys a packet arriving now may use; the same array until the next grace step. */
  #tryEpochs(): number[] {
    const now = this.#c.clock.now();
    if (now < this.#epochsFrom || now >= this.#epochsUntil) {
      const p = this.init.params.epochPeriodMs;
      const step = p * KEY_GRACE_FRACTION;
      this.#epochsFrom = Math.floor(now / step) * step;
      this.#epochsUntil = this.#epochsFrom + step;
      this.#epochs = acceptedEpochs(now, p);
      // acceptedEpochs must not change within a step; if it could, only cache one instant.
      if (acceptedEpochs(this.#epochsUntil - 1e-3, p).join() !== this.#epochs.join()) this.#epochsUntil = now;
    }
    return this.#epochs;
  }

  /** Keeps the keys for the previous, current and next epochs in the unwrap pool; runs at every grace step (a quarter epoch). */
  #onEpochTick(): void {
    if (this.#stopped) return;
    const p = this.init.params.epochPeriodMs;
    const now = this.#c.clock.now();
    const want = loadedEpochs(now, p);
    for (const epoch of want) {
      if (this.#loadedEpochs.has(epoch)) continue;
      const key = this.#c.keys.privateKey(epoch);
      if (key === null) continue;
      this.#pool.setKey(epoch, key);
      this.#loadedEpochs.add(epoch);
    }
    for (const epoch of [...this.#loadedEpochs]) {
      if (want.has(epoch)) continue;
      this.#pool.deleteKey(epoch);
      this.#loadedEpochs.delete(epoch);
    }
    this.#replays.retain([...want]);
    const step = p * KEY_GRACE_FRACTION;
    const next = (Math.floor(now / step) + 1) * step;
    this.#epochTimer = this.#c.clock.setTimer(() => this.#onEpochTick(), next - now + 1);
  }

  #onLink(link: MessageLink): void {
    /** A link's kind: undecided until the first document (held), refused once the document says so. */
    let current: PeerKind | 'undecided' | 'refused';
    const early = this.#undecided?.opened(link.remoteStatic) ?? null;
    if (early !== null) {
      current = 'undecided';
    } else {
      const kind = this.#classify(link.remoteStatic);
      if (kind === null) {
        void link.close(CloseReason.rejected);
        return;
      }
      if (kind === 'client') this.#gateway?.clients.opened(link);
      current = kind;
    }
    let seen = this.#generation;
    const onMessage = (message: Uint8Array): void => {
      if (current === 'undecided') {
        this.#onUndecided(link, message);
        return;
      }
      if (current === 'refused') {
        // A refused link's last frames, on their way as it closed.
        this.drop('undecided');
        return;
      }
      // A previous hop that linked while the document in use did not name it yet looked like a
      // client; once a document names it, it is treated as what it is.
      if (current === 'client' && seen !== this.#generation) {
        seen = this.#generation;
        if (this.#classify(link.remoteStatic) === 'previous') current = 'previous';
      }
      this.#onMessage(link, current, message);
    };
    if (early !== null) {
      this.#decided.set(link, (kind) => {
        current = kind;
        seen = this.#generation;
      });
      this.#undecided!.hold(link, early);
      // The document came between the handshake and now: decided at once.
      if (this.document !== null) this.#decideLink(link);
    }
    const ended = (): void => {
      this.#undecided?.closed(link);
      this.#decided.delete(link);
    };
    if (link.setHandler) {
      link.setHandler(onMessage);
      return;
    }
    void (async () => {
      try {
        for await (const message of link) onMessage(message);
      } catch {
        // the link failed; its peer reconnects
      }
      ended();
    })();
  }

  /**
   * Decodes a frame from `link`, handling what every kind of link handles alike: a malformed frame
   * is dropped and counted, a noop ignored, a disconnect closes the link. Null when nothing more is
   * to be done. The message is ours (a link hands each one over): the packet stays where it
   * arrived, a view into the command, and a format that opens packets in place forwards that command.
   */
  #decodeCommand(link: MessageLink, message: Uint8Array): WireCommand | null {
    let cmd: WireCommand;
    try {
      cmd = this.codec.decodeView(message);
    } catch {
      this.drop('malformed_frame');
      return null;
    }
    if (cmd.kind === 'noop') return null;
    if (cmd.kind === 'disconnect') {
      void link.close();
      return null;
    }
    return cmd;
  }

  /** A frame from a link held undecided: a packet is held (a mix's would be wanted); anything else is dropped, nothing answered. */
  #onUndecided(link: MessageLink, message: Uint8Array): void {
    const cmd = this.#decodeCommand(link, message);
    if (cmd === null) return;
    if (cmd.kind === 'send_packet') this.#undecided!.frame(link, message);
    else this.drop('undecided');
  }

  /**
   * Decides a held link once there is a document: a previous hop's key makes it a mix link; any
   * other goes through admission with the payload of its handshake, and is admitted or closed
   * with the refusal. Its held packets then go on as the decided kind's.
   */
  #decideLink(link: MessageLink): void {
    const undecided = this.#undecided!;
    const setKind = this.#decided.get(link);
    if (setKind === undefined) return;
    this.#decided.delete(link);
    if (this.#classify(link.remoteStatic) === 'previous') {
      setKind('previous');
      const held = undecided.decide(link, 'mix');
      for (const f of held?.frames ?? []) this.#onMessage(link, 'previous', f);
      return;
    }
    const payload = undecided.payload(link);
    if (payload === null) return;
    if (!link.isOpen) {
      undecided.closed(link);
      return;
    }
    const gateway = this.#gateway!;
    const verdict = gateway.admit?.(link.remoteStatic, payload) ?? true;
    if (verdict === true) {
      gateway.clients.opened(link);
      setKind('client');
      const held = undecided.decide(link, 'admitted');
      for (const f of held?.frames ?? []) this.#onMessage(link, 'client', f);
      return;
    }
    setKind('refused');
    undecided.decide(link, 'refused');
    void link.close(verdict === false ? CloseReason.rejected : verdict.refuse).catch(() => undefined);
  }

  #onMessage(link: MessageLink, kind: PeerKind, message: Uint8Array): void {
    const cmd = this.#decodeCommand(link, message);
    if (cmd === null) return;
    if (cmd.kind === 'send_packet') this.#c.metrics.counts.packetsIn++;
    if (cmd.kind === 'send_packet' && kind === 'client') this.#c.metrics.counts.clientPacketsIn++;
    if (kind === 'previous' || this.#gateway === null) {
      if (cmd.kind === 'send_packet') this.#unwrap(cmd.packet, kind, message);
      else this.drop('unexpected_command');
      return;
    }
    const action = this.#gateway.clients.command(link, cmd);
    switch (action.kind) {
      case 'unwrap':
        this.#unwrap(action.packet, 'client', cmd.kind === 'send_packet' && action.packet === cmd.packet ? message : null);
        return;
      case 'drop':
        this.drop(action.reason);
        return;
      case 'done':
        return;
    }
  }

  /**
   * Hands `packet` to the unwrapper. `frame` is the command it arrived in, with `packet` the view
   * of its packet there, or null: a packet opened in place is then forwarded in that very command.
   */
  #unwrap(packet: Uint8Array, from: PeerKind, frame: Uint8Array | null): void {
    const receivedAt = performance.now();
    const pool = this.#pool;
    if (pool instanceof InlineUnwrapper) {
      this.#onOutcome(pool.unwrap(packet, this.#tryEpochs()), from, receivedAt, packet, frame);
      return;
    }
    // The pool copies the packet into a worker's ring and gives a fresh one back: nothing of the
    // arriving command is kept meanwhile.
    const accepted = pool.submit(packet, this.#tryEpochs(), (outcome) => this.#onOutcome(outcome, from, receivedAt, EMPTY, null));
    if (!accepted) this.drop('queue_full');
  }

  #onOutcome(outcome: UnwrapOutcome, from: PeerKind, receivedAt: number, packet: Uint8Array, frame: Uint8Array | null): void {
    switch (outcome.kind) {
      case 'error':
        // ERR_LINK_CLOSED: the pool closed under the packet (shutdown); ERR_SERVER: its worker died.
        this.drop(outcome.code === 'ERR_LINK_CLOSED' ? 'shutdown' : outcome.code === 'ERR_SERVER' ? 'worker_failed' : 'bad_packet');
        return;
      case 'no_key':
        this.drop('no_mix_key');
        return;
      case 'forward':
      case 'final':
        break;
    }
    // The replay check comes only after the MAC verified (the unwrap succeeded).
    const seen = this.#replays.check(outcome.epoch, outcome.replayTag);
    if (seen !== 'fresh') {
      this.drop(seen === 'replay' ? 'replay' : 'replay_cache_full');
      return;
    }
    if (outcome.kind === 'final') {
      // Only a gateway ends a route, and only for a packet that came through the mix layers.
      if (this.#gateway === null || from !== 'previous') this.drop('not_final');
      else this.#store(this.#gateway, this.#gateway.final(outcome));
      return;
    }
    const next = this.#nodes.get(outcome.nextHop);
    if (next === undefined) {
      this.drop('unknown_next_hop');
      return;
    }
    if (!this.#mayForwardTo(next, from)) {
      this.drop('wrong_next_hop');
      return;
    }
    if (outcome.delayMs > this.init.limits.maxDelayMs) {
      this.drop('delay_too_long');
      return;
    }
    // No copy when the packet was opened in place in the command it came in, or written into a
    // fresh command by the unwrapper: that command goes on as it is.
    const out = frame !== null && outcome.packet === packet ? frame : this.codec.sendPacketFrame(outcome.packet);
    const journalSeq = this.#replays.lastRecorded;
    if (outcome.delayMs === 0) {
      this.#send(next, out, performance.now() - receivedAt, journalSeq);
      return;
    }
    const item: Delayed = { peer: next, frame: out, receivedAt, delayMs: outcome.delayMs, journalSeq };
    if (!this.#delays.push(item, this.#c.clock.now() + outcome.delayMs)) {
      this.drop('queue_full');
      return;
    }
    this.#c.metrics.counts.packetsDelayed++;
  }

  /** Stratified topology: a mix of layer L sends to layer L+1, the last layer to gateways, a gateway to layer 1. */
  #mayForwardTo(next: DocumentNode, from: PeerKind): boolean {
    const layers = this.init.params.layers;
    if (this.init.role === 'gateway') return from === 'client' && next.role === 'mix' && next.layer === 1;
    if (this.init.layer === layers) return next.role === 'gateway';
    return next.role === 'mix' && next.layer === this.init.layer + 1;
  }

  /** Carries out the final stage's action: commit, then (only once durable) acknowledge. */
  #store(gateway: GatewayStages, action: FinalAction): void {
    if (action.kind === 'drop') {
      this.drop(action.reason);
      return;
    }
    if (action.kind === 'answer') {
      // A rendezvous answer: nothing to commit; it goes in an emission slot as an acknowledgement would.
      this.#emit(action.then);
      return;
    }
    gateway.commit(action.entry).then(
      (r) => {
        if (!r.ok) {
          this.drop(r.code === 'unknown_recipient' ? 'unknown_recipient' : 'mailbox_full');
          return;
        }
        const then = action.then;
        if (then === null) return;
        if (then.kind === 'drop') {
          this.drop(then.reason);
          return;
        }
        this.#emit(then);
      },
      () => this.drop('store_error'),
    );
  }

  /** Queues a packet of the gateway's own (an acknowledgement or a rendezvous answer) for the next emission slot. */
  #emit(then: { readonly packet: Uint8Array; readonly firstHop: Uint8Array }): void {
    const first = this.#nodes.get(then.firstHop);
    if (first === undefined || !this.#mayForwardTo(first, 'client')) {
      this.drop(first === undefined ? 'unknown_next_hop' : 'wrong_next_hop');
      return;
    }
    // It waits for the gateway's next emission slot, in a cover packet's place.
    this.#emitter!.enqueue({ peer: first, frame: this.codec.sendPacketFrame(then.packet) });
  }

  #linkedClients(gateway: GatewayStages): number {
    const now = this.#c.clock.now();
    if (now - this.#linkedAt >= 1000) {
      this.#linked = gateway.clients.linked();
      this.#linkedAt = now;
    }
    return this.#linked;
  }

  /** A cover packet for the gateway's emission slot, routed by the newest document; null without one. */
  #cover(rand: RandomInt, u01: () => number): Outgoing | null {
    const signed = this.document;
    if (signed === null) return null;
    try {
      const c = coverPacket(signed.document, this.#c.format, rand, u01);
      return c === null ? null : { peer: c.peer, frame: this.codec.sendPacketFrame(c.packet) };
    } catch {
      // A layer without mixes or a node without a key for the epoch: no route now.
      this.drop('no_route');
      return null;
    }
  }

  #release(items: readonly Delayed[]): void {
    const now = performance.now();
    for (const it of items) this.#send(it.peer, it.frame, now - it.receivedAt - it.delayMs, it.journalSeq);
  }

  /** Sends a frame on, with the time it spent in this node beyond its delay (milliseconds), once its replay tag is written. */
  #send(peer: DocumentNode, frame: Uint8Array, extraMs: number, journalSeq: number): void {
    this.#c.metrics.processingSeconds.observe(Math.max(0, extraMs) / 1000);
    this.#replays.ensureWritten(journalSeq);
    this.#peers.send(peer, frame);
  }
}

/** A listener's counts as the pressure metrics read them (live: `pending` is read through). */
function viewOf(server: Awaited<ReturnType<Listen>>): Omit<ListenerView, 'name'> {
  return {
    ...(server.stats === undefined ? {} : { stats: server.stats }),
    ...(server.gate === undefined ? {} : { gate: server.gate }),
    ...(server.links === undefined ? {} : { links: server.links }),
    ...(server.pending === undefined ? {} : { pending: server.pending }),
  };
}
