/**
 * The simulator's mailboxes in memory run the same MailboxStore compliance suite as the gateway's
 * SQLite store, so that a simulated gateway keeps, refuses and hands out entries as a real one does.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryMailboxStore } from '../../src/sim/memory-mailbox.js';
import { fakeClock, mailboxStoreCompliance } from '../server/mailbox-compliance.js';

mailboxStoreCompliance('MemoryMailboxStore', ({ clock = fakeClock(), ...caps }) => new MemoryMailboxStore(clock, caps));

describe('MemoryMailboxStore', () => {
  test('refuses caps that are not integers of at least 1, as openMailboxStore does', () => {
    const clock = fakeClock();
    assert.throws(() => new MemoryMailboxStore(clock, { maxPerMailbox: 0 }), { name: 'RangeError', message: /"maxPerMailbox"/ });
    assert.throws(() => new MemoryMailboxStore(clock, { maxTotal: -5 }), { name: 'RangeError', message: /"maxTotal"/ });
    assert.throws(() => new MemoryMailboxStore(clock, { maxTotal: Number.NaN }), { name: 'TypeError', message: /"maxTotal"/ });
    assert.throws(() => new MemoryMailboxStore(clock, { maxPerMailbox: 2.5 }), TypeError);
  });
});
