/**
 * The process that durability.test.ts kills. Run as `node durability-child.js <database> [writer]`:
 * it stores entries without end and prints, for each entry, `S <id> <seq>` only after its promise
 * resolved (the entry is committed), and for every tenth one, after acknowledging it, `A <id>`.
 * By default it stores through a GroupCommitter on its own thread and deletes at once; with
 * `writer`, as a server's gateway does: through GatewayMailbox and the writer thread, deletions
 * recorded in memory and committed later (so an `A` may be lost by the kill). Every entry's content follows from its id (`durabilityEntry`), so
 * the parent can check what survived. Not a test file itself.
 */
import { argv, stdout } from 'node:process';
import { pathToFileURL } from 'node:url';
import { systemClock } from '../../src/ops/clock.js';
import { GatewayMailbox } from '../../src/server/gateway-mailbox.js';
import { GroupCommitter } from '../../src/server/group-commit.js';
import type { MailboxEntry, StoreResult } from '../../src/server/mailbox.js';
import { openMailboxStore } from '../../src/server/mailbox.js';
import { openWorkerMailboxWriter } from '../../src/server/mailbox-writer.js';

/** Mailboxes written to in turn. */
export const DURABILITY_RECIPIENTS = 8;
/** A Sphinx packet's size, as the gateway stores it. */
export const DURABILITY_PAYLOAD_LENGTH = 2600;

export function durabilityRecipient(i: number): Uint8Array {
  const r = new Uint8Array(32).fill(0x5a);
  r[0] = i;
  return r;
}

/** Entry number `id`: its recipient, SURB id (one in three has none) and payload all depend on `id`. */
export function durabilityEntry(id: number): MailboxEntry {
  const payload = new Uint8Array(DURABILITY_PAYLOAD_LENGTH);
  new DataView(payload.buffer).setFloat64(0, id);
  // xorshift32 seeded by the id fills the rest, so that a mixed-up or torn entry shows.
  let x = (Math.imul(id + 1, 0x9e3779b1) >>> 0) || 1;
  for (let i = 8; i < payload.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    payload[i] = x & 0xff;
  }
  const surbId = id % 3 === 0 ? null : payload.slice(100, 116);
  return { recipient: durabilityRecipient(id % DURABILITY_RECIPIENTS), surbId, payload };
}

async function main(path: string, mode: string | undefined): Promise<void> {
  const store = openMailboxStore(path);
  let submit: (e: MailboxEntry) => Promise<StoreResult>;
  let ack: (recipient: Uint8Array, seq: number) => void;
  if (mode === 'writer') {
    const boxes = new GatewayMailbox({}, { reader: store, writer: await openWorkerMailboxWriter(path), clock: systemClock });
    for (let i = 0; i < DURABILITY_RECIPIENTS; i++) boxes.register(durabilityRecipient(i));
    submit = (e) => boxes.submit(e);
    ack = (r, seq) => void boxes.deleteOne(r, seq);
  } else {
    for (let i = 0; i < DURABILITY_RECIPIENTS; i++) store.register(durabilityRecipient(i));
    const committer = new GroupCommitter(store);
    submit = (e) => committer.submit(e);
    ack = (r, seq) => void store.ack(r, seq);
  }
  let id = 0;
  for (;;) {
    // Rounds of varying size, so that batches of many sizes are cut short by the kill.
    const round = 1 + (id % 97);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < round; i++) {
      const n = id++;
      writes.push(
        submit(durabilityEntry(n)).then((r) => {
          if (!r.ok) throw new Error(`durability child: entry refused (${r.code})`);
          stdout.write(`S ${n} ${r.seq}\n`);
          if (n % 10 === 0) {
            ack(durabilityEntry(n).recipient, r.seq);
            stdout.write(`A ${n}\n`);
          }
        }),
      );
    }
    await Promise.all(writes);
  }
}

const script = argv[1];
if (script !== undefined && import.meta.url === pathToFileURL(script).href) {
  const path = argv[2];
  if (path === undefined) throw new Error('usage: durability-child.js <database> [writer]');
  await main(path, argv[3]);
}
