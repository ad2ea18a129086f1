/**
 * A real crash: a child process stores entries (through GroupCommitter, or as a server gateway
 * does through GatewayMailbox and its writer thread) and reports each one only
 * after its commit; the test SIGKILLs it in the middle of the run, reopens the database and
 * checks that every reported entry is there, byte for byte, that every reported acknowledgement
 * holds, and that the database and its counters are consistent.
 *
 * A SIGKILL loses what the process had not handed to the kernel; a power loss would also lose
 * what the kernel had not written to disk, which `synchronous = FULL` covers but no test here
 * can show.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { openMailboxStore } from '../../src/server/mailbox.js';
import { DURABILITY_RECIPIENTS, durabilityEntry, durabilityRecipient } from './durability-child.js';

const CHILD = fileURLToPath(new URL('./durability-child.js', import.meta.url));
/** The brief: kill only after at least this many entries were acknowledged. */
const MIN_ACKNOWLEDGED = 200;
/** How long a child may take to reach its kill point before the test fails. */
const CHILD_DEADLINE_MS = 30_000;

const root = mkdtempSync(join(tmpdir(), 'backchannel-durability-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface ChildRun {
  /** Entry id → seq, for every entry the child reported committed. */
  stored: Map<number, number>;
  /** Entry ids the child reported acknowledged (deleted). */
  acked: Set<number>;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the child on `path` and SIGKILLs it once `killAfter` entries were reported stored. */
function runAndKill(path: string, killAfter: number, mode: 'inline' | 'writer'): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, path, ...(mode === 'writer' ? ['writer'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: ChildRun = { stored: new Map(), acked: new Set(), signal: null, stderr: '' };
    let partial = '';
    let killed = false;
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`durability: the child reported ${run.stored.size} entries in ${CHILD_DEADLINE_MS} ms, fewer than ${killAfter}`));
    }, CHILD_DEADLINE_MS);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      // The last piece has no newline yet: it may be cut by the kill, so it is not trusted until completed.
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, id, seq] = line.split(' ');
        if (kind === 'S' && id !== undefined && seq !== undefined) run.stored.set(Number(id), Number(seq));
        else if (kind === 'A' && id !== undefined) run.acked.add(Number(id));
        else reject(new Error(`durability: unexpected line from the child: ${line}`));
      }
      if (!killed && run.stored.size >= killAfter) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      run.stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearTimeout(deadline);
      run.signal = signal;
      resolve(run);
    });
  });
}

/** What the database must show for one entry a child reported. */
interface Expectation {
  id: number;
  seq: number;
  /** 'either' for an entry whose acknowledgement may have been cut short by the kill. */
  state: 'present' | 'gone' | 'either';
}

describe('mailbox durability', () => {
  for (const mode of ['inline', 'writer'] as const) {
    const how = mode === 'inline' ? 'committed on the main thread' : 'committed by the writer thread, deletions deferred';
    test(`every entry reported committed survives a SIGKILL, intact, and the database stays consistent (${how})`, { timeout: 120_000 }, async () => {
      const path = join(root, `crash-${mode}`, 'mailboxes.sqlite');
      // Three kills on the same database, so that a store recovered from a crash is crashed again;
      // what earlier runs reported is checked again after every later one.
      const expected: Expectation[] = [];
      for (let round = 0; round < 3; round++) {
        const killAfter = MIN_ACKNOWLEDGED + randomInt(0, 1500);
        const run = await runAndKill(path, killAfter, mode);
        assert.equal(run.signal, 'SIGKILL', `the child ended by itself: ${run.stderr}`);
        assert.ok(run.stored.size >= MIN_ACKNOWLEDGED);
        for (const [id, seq] of run.stored) {
          // A deferred deletion may be lost by the kill (the entry is then handed out again): either.
          const state = run.acked.has(id) && mode === 'inline' ? 'gone' : id % 10 === 0 ? 'either' : 'present';
          expected.push({ id, seq, state });
        }

        const store = openMailboxStore(path);
        try {
          store.check();
          const lastSeq = new Map<number, number>();
          let present = 0;
          for (const { id, seq, state } of expected) {
            const want = durabilityEntry(id);
            const r = id % DURABILITY_RECIPIENTS;
            lastSeq.set(r, Math.max(lastSeq.get(r) ?? 0, seq));
            const got = store.peek(want.recipient, seq - 1);
            const found = got !== null && got.seq === seq;
            if (state === 'gone') {
              assert.equal(found, false, `entry ${id} (round ${round}) was acknowledged and must be gone`);
              continue;
            }
            if (state === 'either' && !found) continue;
            assert.equal(found, true, `entry ${id} was reported committed and is missing`);
            assert.deepEqual(got?.payload, want.payload, `entry ${id} changed`);
            assert.deepEqual(got?.surbId, want.surbId, `entry ${id}'s SURB id changed`);
            present++;
          }
          assert.ok(present >= MIN_ACKNOWLEDGED * 0.8);
          for (let r = 0; r < DURABILITY_RECIPIENTS; r++) {
            const probe = store.store({ recipient: durabilityRecipient(r), surbId: null, payload: new Uint8Array(1) });
            assert.ok(probe.ok && probe.seq > (lastSeq.get(r) ?? 0), 'a sequence number is never handed out again');
            assert.equal(store.ack(durabilityRecipient(r), probe.seq), true);
          }
          store.check();
        } finally {
          store.close();
        }
      }
    });
  }
});
