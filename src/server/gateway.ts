/**
 * A gateway: the entry and exit of the network for its clients.
 *
 * - Clients link to it with Noise XK; the static key authenticates the client and names its
 *   mailbox (the 32-byte Sphinx recipient is the client's link public key). Each client's packets
 *   pass a token bucket, then go to layer 1 like any hop's.
 * - Packets from the last mix layer end here: a forward payload is stored in the recipient's
 *   mailbox (SQLite, committed before anything else happens), and only then is the SURB it
 *   carries turned into an acknowledgement and sent into layer 1; a SURB reply is stored as it is,
 *   with its SURB id, for the client to decrypt. A packet for the all-zero mailbox is a client's
 *   drop cover: it is discarded and counted (reason `drop_cover`), never acknowledged.
 * - A client fetches with `retrieve_message{n}`: the gateway deletes the entries below n (the
 *   client holds them), and answers with exactly one `message`, the oldest entry from n on or an
 *   empty one, so that every fetch looks the same on the link.
 */
import { Counter } from 'prom-client';
import type { MessageLink } from '../link/message-link.js';
import { decodeForwardPayload } from '../sphinx/payload.js';
import { PacketNode } from './node.js';
import type { PacketNodeComponents, PacketNodeInit } from './node.js';
import type { DropReason } from '../ops/metrics.js';
import { Sphinx } from '../sphinx/sphinx.js';
import type { PacketFormat } from '../sphinx/format.js';
import { isZero } from '../util/bytes.js';
import type { WireCommand } from '../wire/commands.js';
import type { UnwrapOutcome } from './unwrap.js';
import { GroupCommitter } from './group-commit.js';
import type { MailboxStore } from './mailbox.js';
import { RateLimiter } from './rate-limit.js';

export interface GatewayInit extends PacketNodeInit {
  readonly clientRate: { readonly perSecond: number; readonly burst: number };
}

export interface GatewayComponents extends PacketNodeComponents {
  readonly mailbox: MailboxStore;
  /** Runs the mailbox's group commit after the current turn (setImmediate by default; the simulator's clock in virtual time). */
  readonly commitSchedule?: (fn: () => void) => void;
}

export interface Gateway {
  readonly node: PacketNode;
  start(): Promise<void>;
  stop(): Promise<void>;
}

type FinalOutcome = Extract<UnwrapOutcome, { kind: 'final' }>;

/** Builds a gateway; `start()` it. */
export function createGateway(init: GatewayInit, components: GatewayComponents): Gateway {
  if (init.role !== 'gateway' || init.layer !== 0) throw new RangeError('gateway: role must be gateway with layer 0');
  const { mailbox, metrics } = components;
  const registry = metrics.registry;
  const stored = new Counter({ name: 'backchannel_mailbox_stored_total', help: 'Entries committed to mailboxes', registers: [registry] });
  const acks = new Counter({ name: 'backchannel_surb_acks_sent_total', help: 'SURB acknowledgements sent into the network', registers: [registry] });
  const fetches = new Counter({ name: 'backchannel_mailbox_fetches_total', help: 'Mailbox fetches answered, by result', labelNames: ['result'] as const, registers: [registry] });
  const limiter = new RateLimiter({ perSecond: init.clientRate.perSecond, burst: init.clientRate.burst, clock: components.clock });
  const committer = new GroupCommitter(mailbox, components.commitSchedule ? { schedule: components.commitSchedule } : {});
  let node: PacketNode | null = null;

  const drop = (r: DropReason): void => metrics.drop(r);

  function deliver(outcome: FinalOutcome): DropReason | null {
    const recipient = outcome.recipient;
    // Drop cover (Loopix): clients address it to the all-zero mailbox; it ends here, unacknowledged.
    if (isZero(recipient)) return 'drop_cover';
    if (!mailbox.isRegistered(recipient)) return 'unknown_recipient';
    let surb: Uint8Array | null = null;
    let payload: Uint8Array;
    if (outcome.surbId !== null) {
      payload = outcome.payload; // a reply through a SURB: encrypted for the client, stored as is
    } else {
      try {
        const p = decodeForwardPayload(sphinx.geometry, outcome.payload);
        surb = p.surb === null ? null : p.surb.slice();
        payload = p.body.slice();
      } catch {
        return 'bad_payload';
      }
    }
    committer.submit({ recipient: recipient.slice(), surbId: outcome.surbId === null ? null : outcome.surbId.slice(), payload }).then(
      (r) => {
        if (!r.ok) {
          drop(r.code === 'unknown_recipient' ? 'unknown_recipient' : 'mailbox_full');
          return;
        }
        stored.inc();
        // Committed: only now acknowledge.
        if (surb !== null) sendAck(surb);
      },
      () => drop('store_error'),
    );
    return null;
  }

  function sendAck(surb: Uint8Array): void {
    if (node === null) return;
    let built: { packet: Uint8Array; firstHop: Uint8Array };
    try {
      built = sphinx.createPacketFromSurb(surb, new Uint8Array(sphinx.geometry.forwardPayloadLength));
    } catch {
      drop('bad_payload');
      return;
    }
    const first = node.node(built.firstHop);
    if (first === undefined || first.role !== 'mix' || first.layer !== 1) {
      drop(first === undefined ? 'unknown_next_hop' : 'wrong_next_hop');
      return;
    }
    acks.inc();
    node.sendNow(first, built.packet);
  }

  function clientCommand(link: MessageLink, cmd: WireCommand): boolean {
    if (node === null) return false;
    const recipient = link.remoteStatic;
    switch (cmd.kind) {
      case 'retrieve_message': {
        if (cmd.sequence > 0) mailbox.ackBelow(recipient, cmd.sequence);
        const entry = cmd.sequence > 0 ? mailbox.peek(recipient, cmd.sequence - 1) : mailbox.peek(recipient);
        const reply: WireCommand =
          entry === null
            ? { kind: 'message', sequence: cmd.sequence, queueHint: 0, empty: true, surbId: null, payload: new Uint8Array(0) }
            : {
                kind: 'message',
                sequence: entry.seq,
                queueHint: Math.min(entry.remaining, 0xffffffff),
                empty: false,
                surbId: entry.surbId,
                payload: entry.payload,
              };
        fetches.inc({ result: entry === null ? 'empty' : 'message' });
        try {
          if (!link.trySend(node.codec.encode(reply))) void link.send(node.codec.encode(reply)).catch(() => undefined);
        } catch {
          // the link closed; the client fetches again
        }
        return true;
      }
      case 'ack':
        mailbox.ack(recipient, cmd.sequence);
        return true;
      default:
        return false;
    }
  }

  node = new PacketNode(init, components, {
    classify: (rs) => (node?.isPreviousHop(rs) ? 'previous' : 'client'),
    clientLinked: (link) => mailbox.register(link.remoteStatic),
    admitClientPacket: (link) => limiter.take(link.remoteStatic),
    clientCommand,
    final: (outcome, from) => (from === 'previous' ? deliver(outcome) : 'not_final'),
  });
  const n = node;
  // The same geometry as the node's: acknowledgements are made and payloads read with it.
  const sphinx: PacketFormat = components.packetFormat ? components.packetFormat(n.geometry) : new Sphinx(n.geometry, components.crypto);
  return {
    node: n,
    start: () => n.start(),
    async stop() {
      await n.stop();
      await committer.close();
    },
  };
}
