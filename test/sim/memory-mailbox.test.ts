/**
 * The simulator's mailboxes in memory run the same MailboxStore compliance suite as the gateway's
 * SQLite store, so that a simulated gateway keeps, refuses and hands out entries as a real one does.
 */
import { MemoryMailboxStore } from '../../src/sim/memory-mailbox.js';
import { fakeClock, mailboxStoreCompliance } from '../server/mailbox-compliance.js';

mailboxStoreCompliance('MemoryMailboxStore', ({ clock = fakeClock(), ...caps }) => new MemoryMailboxStore(clock, caps));
