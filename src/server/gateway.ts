/**
 * A gateway: the entry and exit of the network for its clients.
 *
 * - Clients link to it with Noise XK; the static key authenticates the client and names its
 *   mailbox (the 32-byte Sphinx recipient is the client's link public key). Each client's packets
 *   pass a token bucket, then go to layer 1 like any hop's (fetch.ts).
 * - Packets from the last mix layer end here (store.ts): a forward payload is stored in the
 *   recipient's mailbox (SQLite, committed in groups on a writer thread: gateway-mailbox.ts), and only then
 *   is the SURB it carries, made into an acknowledgement, sent into layer 1; a SURB reply is stored
 *   as it is. Drop cover (the all-zero mailbox) is discarded and counted, never acknowledged.
 * - Packets for the rendezvous recipient go to the rendezvous service (rendezvous.ts), whose answer
 *   goes back through the request's SURB in an emission slot (contacts by code).
 * - Fetches are answered by the client sessions (fetch.ts), and so are clients' requests for the
 *   directory document: the gateway relays the signed document its follower holds.
 *
 * The gateway builds its stages first and hands them to the node it runs on; nothing here holds
 * the node or calls into it.
 */
import { Counter } from 'prom-client';
import { GatewayMailbox } from './gateway-mailbox.js';
import type { MailboxStore } from './mailbox.js';
import { inlineMailboxWriter } from './mailbox-writer.js';
import type { MailboxWriter } from './mailbox-writer.js';
import { clientSessions } from './fetch.js';
import { PacketNode } from './node.js';
import type { PacketNodeComponents, PacketNodeInit } from './node.js';
import { fetchBucketRate, intakeRates, RateLimiter } from './rate-limit.js';
import type { IntakeRates } from '../pki/intake.js';
import { finalStage } from './store.js';
import { RendezvousService } from './rendezvous.js';
import { ADMISSION_REFUSALS, createAdmission } from './admission.js';
import type { Admission, AdmissionInit, TokenLedger } from './admission.js';
import type { AdmissionCrypto } from '../wire/admission.js';
import { WireCodec } from '../wire/commands.js';
import type { SignedDocument } from '../pki/types.js';

export interface GatewayInit extends PacketNodeInit {
  readonly clientRate: { readonly perSecond: number; readonly burst: number };
  /** Per-mailbox intake buckets (main, extra and own mailboxes); by default intakeRates(params) (src/pki/intake.ts). */
  readonly intake?: IntakeRates;
  /** Per-client bucket on fetches; by default fetchBucketRate(params.fetchRatePerS) (rate-limit.ts). */
  readonly fetchRate?: { readonly perSecond: number; readonly burst: number };
  /** Admission of new clients (admission.ts); every client is admitted without it (the simulator, component tests). */
  readonly admission?: AdmissionInit;
  /** Client records unseen this long (ms) are forgotten, with their mailboxes. Default CLIENT_RETENTION_MS (30 days). */
  readonly retentionMs?: number;
}

export interface GatewayComponents extends PacketNodeComponents {
  /** The mailbox store, read on this thread (fetches, recipients). Written to here only through the default writer. */
  readonly mailbox: MailboxStore;
  /**
   * Commits deliveries, deletions and registrations; the gateway owns it and closes it on stop.
   * A server passes a writer thread (openWorkerMailboxWriter), so that no write happens on the
   * thread that answers fetches; the default commits on this thread, in `mailbox` (the simulator).
   */
  readonly mailboxWriter?: MailboxWriter;
  /** Runs the mailbox's group commit after the current turn (setImmediate by default; the simulator's clock in virtual time). */
  readonly commitSchedule?: (fn: () => void) => void;
  /** The verified signed document held for an epoch (the follower's current or next), relayed to clients; none relayed without it. */
  readonly directory?: (epoch: number) => SignedDocument | null;
  /** Token admission: the operator's key and the ledger of used tokens. */
  readonly admissionToken?: { readonly key: Uint8Array; readonly ledger: TokenLedger; readonly crypto: AdmissionCrypto };
}

/**
 * A client unseen for 30 days is forgotten with its mailbox and extra mailboxes: long enough for a
 * holiday without a phone, short enough that abandoned keys (a flood's, a lost device's) do not
 * fill the gateway's cap on clients for good. A client that comes back after that is a new
 * client: it shows its kept proof of work (or token) again, and mail that came for it meanwhile was
 * refused (`unknown_recipient`, unacknowledged, so its senders saw it undelivered).
 */
export const CLIENT_RETENTION_MS = 30 * 24 * 3_600_000;
/**
 * The retention sweep runs every hour on the gateway's clock, whatever its clients do, so nothing
 * about it follows activity; each sweep forgets at most RETENTION_SWEEP_LIMIT clients (a backlog
 * takes a few sweeps rather than one long transaction).
 */
export const RETENTION_SWEEP_MS = 3_600_000;
export const RETENTION_SWEEP_LIMIT = 10_000;

export interface Gateway {
  readonly node: PacketNode;
  /** Its admission, when it has one. */
  readonly admission: Admission | null;
  /** Why the gateway is degraded now, beyond the node's pressure (its client cap reached). */
  degraded(): string[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Builds a gateway; `start()` it.
 * @throws {RangeError} when the role is not gateway with layer 0.
 */
export function createGateway(init: GatewayInit, components: GatewayComponents): Gateway {
  if (init.role !== 'gateway' || init.layer !== 0) throw new RangeError('gateway: role must be gateway with layer 0');
  const { mailbox, metrics, format } = components;
  const registry = metrics.registry;
  const stored = new Counter({ name: 'backchannel_mailbox_stored_total', help: 'Entries committed to mailboxes', registers: [registry] });
  const intakeTaken = new Counter({
    name: 'backchannel_mailbox_intake_total',
    help: 'Entries that passed the intake limit, by kind of address: main, extra or own (SURB replies)',
    labelNames: ['address'] as const,
    registers: [registry],
  });
  const acks = new Counter({ name: 'backchannel_surb_acks_sent_total', help: 'SURB acknowledgements sent into the network', registers: [registry] });
  const cover = new Counter({ name: 'backchannel_gateway_cover_sent_total', help: 'Cover packets of the gateway\'s own sent into the network in emission slots that no acknowledgement took', registers: [registry] });
  const fetches = new Counter({ name: 'backchannel_mailbox_fetches_total', help: 'Mailbox fetches answered, by result', labelNames: ['result'] as const, registers: [registry] });
  const mailboxRequests = new Counter({
    name: 'backchannel_mailbox_requests_total',
    help: 'Requests of clients to register or revoke an extra mailbox, by action and result',
    labelNames: ['action', 'result'] as const,
    registers: [registry],
  });
  const documentChunks = new Counter({ name: 'backchannel_directory_chunks_total', help: 'Directory document requests of clients answered, by result', labelNames: ['result'] as const, registers: [registry] });
  const rendezvousRequests = new Counter({
    name: 'backchannel_rendezvous_requests_total',
    help: 'Rendezvous requests answered (contacts by code), by outcome: posted, read, taken, full, bad',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const rendezvous = new RendezvousService({ clock: components.clock });
  const limiter = new RateLimiter({ perSecond: init.clientRate.perSecond, burst: init.clientRate.burst, clock: components.clock });
  const deletionsRefused = new Counter({
    name: 'backchannel_mailbox_deletions_refused_total',
    help: 'Mailbox deletions refused because too many waited for a commit',
    registers: [registry],
  });
  const boxes = new GatewayMailbox(
    {},
    {
      reader: mailbox,
      writer: components.mailboxWriter ?? inlineMailboxWriter(mailbox),
      clock: components.clock,
      ...(components.commitSchedule ? { schedule: components.commitSchedule } : {}),
    },
  );
  const sessions = clientSessions({
    mailbox: boxes,
    limiter,
    fetchLimiter: new RateLimiter({ ...(init.fetchRate ?? fetchBucketRate(init.params.fetchRatePerS)), clock: components.clock }),
    codec: new WireCodec({ packetLength: format.geometry.packetLength }),
    fetches,
    deletionsRefused,
    documentChunks,
    mailboxRequests,
    ...(components.directory === undefined ? {} : { documents: components.directory }),
    ...(components.commitSchedule ? { schedule: components.commitSchedule } : {}),
  });
  const admissions = new Counter({
    name: 'backchannel_admission_total',
    help: 'Client links by admission outcome: known (a client record held), admitted (a new key), or refused by reason (work, token_required, token_invalid, full)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const o of ['known', 'admitted', ...ADMISSION_REFUSALS]) admissions.inc({ outcome: o }, 0);
  const admission =
    init.admission === undefined
      ? null
      : createAdmission(init.admission, {
          identityKey: init.identityKey,
          known: (k) => boxes.isRegistered(k),
          clients: () => boxes.clients(),
          ...(components.admissionToken === undefined ? {} : { token: components.admissionToken }),
          counted: (outcome) => admissions.inc({ outcome }),
        });
  const intake = init.intake ?? intakeRates(init.params);
  const intakeCounted = { client: intakeTaken.labels({ address: 'main' }), alias: intakeTaken.labels({ address: 'extra' }), own: intakeTaken.labels({ address: 'own' }) };
  for (const c of Object.values(intakeCounted)) c.inc(0);
  const intakes = {
    client: new RateLimiter({ ...intake.mailbox, clock: components.clock }),
    alias: new RateLimiter({ ...intake.alias, clock: components.clock }),
    own: new RateLimiter({ ...intake.own, clock: components.clock }),
  };
  const node = new PacketNode(init, components, {
    ...(admission === null ? {} : { admit: (rs: Uint8Array, payload: Uint8Array) => admission.check(rs, payload) }),
    clients: sessions,
    final: finalStage(format, boxes, {
      service: rendezvous,
      counted: (outcome) => {
        rendezvousRequests.inc({ outcome });
        if (outcome === 'full') metrics.drop('rendezvous_full');
        else if (outcome === 'bad') metrics.drop('rendezvous_bad');
      },
    }, (addressed, kind) => {
      if (!intakes[kind].take(addressed)) return false;
      intakeCounted[kind].inc();
      return true;
    }),
    commit: async (entry) => {
      const r = await boxes.submit(entry);
      if (r.ok) {
        stored.inc();
        sessions.delivered(entry.recipient);
      }
      return r;
    },
    ackSent: () => acks.inc(),
    coverSent: () => cover.inc(),
  });
  const retentionMs = init.retentionMs ?? CLIENT_RETENTION_MS;
  if (!(retentionMs > 0)) throw new RangeError('gateway: "retentionMs" expected a positive number');
  let sweepTimer: unknown = null;
  const sweep = (): void => {
    sweepTimer = components.clock.setTimer(sweep, RETENTION_SWEEP_MS);
    try {
      // The gateway's clock, which stamps registered_at and last_seen too (the writer gets its time).
      boxes.sweep(components.clock.now() - retentionMs, sessions.linkedKeys(), RETENTION_SWEEP_LIMIT);
    } catch {
      // the mailbox is closing
    }
  };
  return {
    node,
    admission,
    degraded: () => (admission?.full() === true ? [`client cap reached (${admission.maxClients} clients): new clients are refused`] : []),
    async start() {
      await node.start();
      // The first sweep at start: a gateway restarted after a long stop forgets at once.
      sweep();
    },
    async stop() {
      if (sweepTimer !== null) components.clock.clearTimer(sweepTimer);
      sweepTimer = null;
      await node.stop();
      // Pending deliveries, deletions and registrations are committed, then the writer stops.
      await boxes.close();
    },
  };
}
