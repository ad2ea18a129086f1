/**
 * A gateway answers a fetch with a frame it prepared ahead: between a fetch and its answer nothing
 * is read from the mailbox and nothing is encoded, whether the answer holds an entry or is empty.
 * The prepared answer stays right: a delivery to an empty mailbox, an `ack`, or a fetch that is
 * not the one expected make it again or build it at once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { clientSessions } from '../../src/server/fetch.js';
import type { FetchMailbox } from '../../src/server/gateway-mailbox.js';
import type { PeekedEntry } from '../../src/server/mailbox.js';
import type { RateLimiter } from '../../src/server/rate-limit.js';
import { WireCodec } from '../../src/wire/commands.js';
import type { WireCommand } from '../../src/wire/commands.js';
import { recordingLink } from '../helpers/recording-link.js';

const codec = new WireCodec({ packetLength: 512 });
const RECIPIENT = new Uint8Array(32).fill(5);

/** An in-memory mailbox of one recipient that counts its reads. */
class Box implements FetchMailbox {
  entries: { seq: number; payload: Uint8Array }[] = [];
  reads = 0;
  #next = 1;
  add(text: string): number {
    const seq = this.#next++;
    this.entries.push({ seq, payload: new TextEncoder().encode(text) });
    return seq;
  }
  register(): void {}
  isRegistered(): boolean {
    return true;
  }
  peek(_r: Uint8Array, afterSeq = 0): PeekedEntry | null {
    this.reads++;
    const i = this.entries.findIndex((e) => e.seq > afterSeq);
    if (i < 0) return null;
    const e = this.entries[i]!;
    return { seq: e.seq, surbId: null, payload: e.payload, remaining: this.entries.length - i - 1, storedAt: 0 };
  }
  deleteBelow(_r: Uint8Array, seq: number): boolean {
    this.entries = this.entries.filter((e) => e.seq >= seq);
    return true;
  }
  deleteOne(_r: Uint8Array, seq: number): boolean {
    this.entries = this.entries.filter((e) => e.seq !== seq);
    return true;
  }
}

function harness() {
  const box = new Box();
  const later: (() => void)[] = [];
  const registry = new Registry();
  const link = recordingLink(RECIPIENT);
  const sessions = clientSessions({
    mailbox: box,
    limiter: { take: () => true } as unknown as RateLimiter,
    codec,
    fetches: new Counter({ name: 'f', help: 'f', labelNames: ['result'] as const, registers: [registry] }),
    deletionsRefused: new Counter({ name: 'r', help: 'r', registers: [registry] }),
    schedule: (fn) => later.push(fn),
  });
  sessions.opened(link);
  /** Sends retrieve_message{n}; returns the answer and the mailbox reads made before it was sent. */
  const fetch = (n: number, on = link): { answer: Extract<WireCommand, { kind: 'message' }>; reads: number } => {
    const before = box.reads;
    sessions.command(on, { kind: 'retrieve_message', sequence: n });
    const reads = box.reads - before;
    const answer = codec.decode(on.frames.at(-1)!);
    assert.equal(answer.kind, 'message');
    return { answer: answer as Extract<WireCommand, { kind: 'message' }>, reads };
  };
  const settle = (): void => {
    while (later.length > 0) later.shift()!();
  };
  return { box, sessions, link, fetch, settle };
}

const text = (m: Extract<WireCommand, { kind: 'message' }>): string => new TextDecoder().decode(m.payload);

test('a fetch that was expected is answered from a prepared frame: no read between fetch and answer, entry or not', () => {
  const h = harness();
  h.box.add('one');
  h.box.add('two');
  // The first fetch is built at once (nothing was prepared yet).
  const first = h.fetch(0);
  assert.equal(text(first.answer), 'one');
  assert.equal(first.reads, 1);
  h.settle();
  const second = h.fetch(first.answer.sequence + 1);
  assert.equal(second.reads, 0, 'answered from the prepared frame');
  assert.equal(text(second.answer), 'two');
  h.settle();
  const third = h.fetch(second.answer.sequence + 1);
  assert.equal(third.reads, 0);
  assert.equal(third.answer.empty, true);
  h.settle();
  const fourth = h.fetch(second.answer.sequence + 1);
  assert.equal(fourth.reads, 0, 'an empty answer is prepared as well');
  assert.equal(fourth.answer.empty, true);
  assert.deepEqual(h.box.entries, [], 'the fetches deleted what the client holds');
});

test('a delivery to an empty mailbox makes the prepared answer again; a fetch before that builds it at once', () => {
  const h = harness();
  h.fetch(0);
  h.settle();
  h.box.add('late');
  h.sessions.delivered(RECIPIENT);
  // Before the new answer is made: built at once, with the entry.
  const now = h.fetch(0);
  assert.equal(now.reads, 1);
  assert.equal(text(now.answer), 'late');
  h.settle();
  h.box.add('later');
  h.sessions.delivered(RECIPIENT);
  h.settle();
  const prepared = h.fetch(now.answer.sequence + 1);
  assert.equal(prepared.reads, 0);
  assert.equal(text(prepared.answer), 'later');
});

test('an answer lost with its link is handed out again on the next link; an ack drops a prepared answer', () => {
  const h = harness();
  const a = h.box.add('a');
  h.box.add('b');
  h.fetch(0);
  h.settle();
  // The link closed before "a" arrived: the client asks from the start again on a new link.
  const link = recordingLink(RECIPIENT);
  h.sessions.opened(link);
  const again = h.fetch(a, link);
  assert.equal(again.reads, 1);
  assert.equal(text(again.answer), 'a');
  h.settle();
  // The prepared answer holds "b"; the client deletes "b" with an ack before fetching.
  const b = h.box.entries.find((e) => new TextDecoder().decode(e.payload) === 'b')!.seq;
  h.sessions.command(link, { kind: 'ack', sequence: b });
  h.settle();
  const next = h.fetch(a + 1, link);
  assert.equal(next.answer.empty, true, 'the deleted entry is not handed out');
  assert.deepEqual(h.box.entries, [], 'naming "a" deleted it');
});
