/**
 * Replay tags on disk, so that a mix restarted within an epoch still refuses that epoch's
 * replays. One append-only file per mix-key epoch (`<dir>/<epoch>.tags`, mode 0600) of 16-byte
 * records: the part of each tag the cache keeps (REPLAY_ENTRY_LENGTH). Fresh tags are buffered
 * and written in batches: every FLUSH_INTERVAL_MS, when the buffer fills, and (the node's rule)
 * before any packet leaves the node while a tag is still unwritten, so that nothing a packet
 * was forwarded for can be replayed after a crash of the process. A file is deleted with its
 * epoch's key. Writes reach the operating system, not necessarily the disk: a power cut may lose
 * the last tags (fsync per batch would cost a disk flush every few milliseconds); the mix keys
 * of a crashed machine's current epoch are the operator's to retire.
 *
 * Node only (node:fs).
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BackchannelError } from '../errors.js';
import { REPLAY_ENTRY_LENGTH } from './replay.js';
import type { ReplayTagJournal } from './replay.js';

/** Buffered tags are written at least this often. */
export const FLUSH_INTERVAL_MS = 10;
/** Tags buffered before a write regardless of the timer (64 KiB). */
const BUFFER_TAGS = 4096;
const FILE_SUFFIX = '.tags';

/** A journal on disk: what ReplayCaches needs of one, and a close that writes what is buffered. */
export interface ReplayJournal extends ReplayTagJournal {
  close(): void;
}

interface EpochFile {
  readonly fd: number;
  readonly buffer: Uint8Array;
  used: number;
}

function journalError(message: string, cause?: unknown): BackchannelError {
  return new BackchannelError('ERR_SERVER', `replay journal: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * Opens (making it, 0700) the journal directory `dir`.
 * @throws {BackchannelError} ERR_SERVER when the directory or a file cannot be made or read.
 */
export function openReplayJournal(dir: string): ReplayJournal {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw journalError('cannot make its directory', e);
  }
  const files = new Map<number, EpochFile>();
  let dirty = false;
  /** Tags recorded, and tags written, since the journal was opened. */
  let recorded = 0;
  let written = 0;
  const pathOf = (epoch: number): string => join(dir, `${epoch}${FILE_SUFFIX}`);
  const write = (f: EpochFile): void => {
    let off = 0;
    while (off < f.used) off += writeSync(f.fd, f.buffer, off, f.used - off);
    f.used = 0;
  };
  const flush = (): void => {
    if (!dirty) return;
    for (const f of files.values()) if (f.used > 0) write(f);
    dirty = false;
    written = recorded;
  };
  const timer = setInterval(() => {
    try {
      flush();
    } catch {
      // a full or failing disk: the next flush (or the one before a packet leaves) tries again
    }
  }, FLUSH_INTERVAL_MS);
  timer.unref();
  const fileFor = (epoch: number): EpochFile => {
    let f = files.get(epoch);
    if (f === undefined) {
      try {
        f = { fd: openSync(pathOf(epoch), 'a', 0o600), buffer: new Uint8Array(BUFFER_TAGS * REPLAY_ENTRY_LENGTH), used: 0 };
      } catch (e) {
        throw journalError('cannot open an epoch file', e);
      }
      files.set(epoch, f);
    }
    return f;
  };
  return {
    load(epoch) {
      const path = pathOf(epoch);
      if (!existsSync(path)) return [];
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(path);
      } catch (e) {
        throw journalError('cannot read an epoch file', e);
      }
      // A record cut short by a crash mid-write is ignored (its packet never left).
      const out: Uint8Array[] = [];
      for (let off = 0; off + REPLAY_ENTRY_LENGTH <= bytes.length; off += REPLAY_ENTRY_LENGTH) out.push(bytes.subarray(off, off + REPLAY_ENTRY_LENGTH));
      return out;
    },
    record(epoch, tag) {
      const f = fileFor(epoch);
      f.buffer.set(tag.subarray(0, REPLAY_ENTRY_LENGTH), f.used);
      f.used += REPLAY_ENTRY_LENGTH;
      dirty = true;
      recorded++;
      if (f.used === f.buffer.length) write(f);
      return recorded;
    },
    get dirty() {
      return dirty;
    },
    get written() {
      return written;
    },
    flush,
    retain(epochs) {
      const keep = new Set(epochs);
      for (const [epoch, f] of files) {
        if (keep.has(epoch)) continue;
        closeSync(f.fd);
        files.delete(epoch);
      }
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return;
      }
      for (const name of names) {
        const m = /^(\d+)\.tags$/.exec(name);
        if (m === null || keep.has(Number(m[1]))) continue;
        try {
          unlinkSync(join(dir, name));
        } catch {
          // gone already
        }
      }
    },
    close() {
      clearInterval(timer);
      try {
        flush();
      } finally {
        for (const f of files.values()) closeSync(f.fd);
        files.clear();
      }
    },
  };
}
