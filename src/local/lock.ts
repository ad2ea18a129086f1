/**
 * The lock that keeps two `backchannel up` off one data folder: DIR/up.lock, created with O_EXCL
 * (open 'wx', mode 0600) and holding the owner's pid, the folder it was taken for and when. A
 * second `up` on a running folder would otherwise start duplicates of every server, which die on
 * the ports the first one holds while appending to its logs.
 *
 * A lock whose process is gone (a crash, SIGKILL, a reboot) is stale and replaced; so is one that
 * names another folder, as a copy of a running folder carries its original's lock along. Two `up`
 * replacing the same stale lock in the same instant could both go on; their servers then race for
 * the same ports, and a start fails as soon as one of its servers exits (up.ts).
 */
import { closeSync, mkdirSync, openSync, readFileSync, realpathSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BackchannelError } from '../errors.js';

export const LOCK_FILE = 'up.lock';
/** Only the owner reads the lock: it says which process runs the folder. */
const LOCK_FILE_MODE = 0o600;
/** A lock file is a line of JSON; anything longer is not ours. */
const MAX_LOCK_BYTES = 4096;

/** What a lock file says. */
export interface LockOwner {
  readonly pid: number;
  /** The folder's real path when the lock was taken. */
  readonly dir: string;
  /** When, as an ISO 8601 time. */
  readonly since: string;
}

export interface DataDirLock {
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock if it is still this one's; never throws; later calls do nothing. */
  release(): void;
}

export interface LockOptions {
  /** Told of a stale lock being replaced, in one line for people. */
  readonly progress?: (line: string) => void;
  /** Whether a process runs; by default a signal 0 probe. Tests pass their own. */
  readonly isRunning?: (pid: number) => boolean;
  /** The time written in the lock (default: now). */
  readonly now?: () => Date;
}

/** Whether `pid` names a live process: signal 0 checks without sending anything. */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user.
    return (e as { code?: unknown }).code !== 'ESRCH';
  }
}

function fsCode(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'I/O error';
}

function lockError(message: string, cause?: unknown): BackchannelError {
  return new BackchannelError('ERR_CONFIG', `up: ${message}`, cause === undefined ? undefined : { cause });
}

/** The owner a lock file names; 'gone' when it vanished meanwhile, null when it is not a lock we wrote. */
function readOwner(path: string): LockOwner | 'gone' | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (fsCode(e) === 'ENOENT') return 'gone';
    throw lockError(`cannot read ${LOCK_FILE} (${fsCode(e)})`, e);
  }
  if (text.length > MAX_LOCK_BYTES) return null;
  try {
    const o = JSON.parse(text) as Partial<Record<keyof LockOwner, unknown>>;
    if (Number.isSafeInteger(o.pid) && (o.pid as number) > 0 && typeof o.dir === 'string' && typeof o.since === 'string') {
      return { pid: o.pid as number, dir: o.dir, since: o.since };
    }
  } catch {
    // not JSON: below
  }
  return null;
}

function sameOwner(a: LockOwner, b: LockOwner): boolean {
  return a.pid === b.pid && a.dir === b.dir && a.since === b.since;
}

function remove(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if (fsCode(e) !== 'ENOENT') throw lockError(`cannot remove a stale ${LOCK_FILE} (${fsCode(e)})`, e);
  }
}

/**
 * Takes the lock on the data folder `dir` for this process, creating the folder when missing.
 * @throws {BackchannelError} ERR_LOCAL_IN_USE when a running process holds it (the message names
 *   the pid and what to do) or the lock file is not one this program wrote; ERR_CONFIG when the
 *   folder or the lock cannot be written.
 * @example const lock = lockDataDir(dir, { progress: console.error }); try { ... } finally { lock.release(); }
 */
export function lockDataDir(dir: string, opts: LockOptions = {}): DataDirLock {
  const isRunning = opts.isRunning ?? processRunning;
  let real: string;
  try {
    mkdirSync(dir, { recursive: true });
    real = realpathSync(dir);
  } catch (e) {
    throw lockError(`cannot create the data folder (${fsCode(e)})`, e);
  }
  const path = join(real, LOCK_FILE);
  const owner: LockOwner = { pid: process.pid, dir: real, since: (opts.now?.() ?? new Date()).toISOString() };
  // Three tries: a stale lock removed, then one that another `up` removed or took meanwhile.
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', LOCK_FILE_MODE);
    } catch (e) {
      if (fsCode(e) !== 'EEXIST') throw lockError(`cannot create ${LOCK_FILE} in ${real} (${fsCode(e)})`, e);
      const held = readOwner(path);
      if (held === 'gone') continue;
      if (held === null) {
        throw new BackchannelError('ERR_LOCAL_IN_USE', `up: ${path} is not a lock this program wrote; if no \`backchannel up\` runs on ${real}, remove that file`);
      }
      if (held.dir !== real) {
        opts.progress?.(`replacing a lock copied from another folder (${held.dir})`);
      } else if (!isRunning(held.pid)) {
        opts.progress?.(`replacing a stale lock: pid ${held.pid}, which took it at ${held.since}, no longer runs`);
      } else {
        throw new BackchannelError(
          'ERR_LOCAL_IN_USE',
          `up: ${real} is in use by another backchannel up (pid ${held.pid}, since ${held.since}); see \`npx backchannel status --dir ${real}\`, or stop that one (Ctrl-C in its terminal, or kill ${held.pid}) first`,
        );
      }
      // Remove only the lock just read: another `up` may have replaced it since.
      const again = readOwner(path);
      if (again !== 'gone' && again !== null && sameOwner(again, held)) remove(path);
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(owner)}\n`);
    } catch (e) {
      closeSync(fd);
      remove(path);
      throw lockError(`cannot write ${LOCK_FILE} (${fsCode(e)})`, e);
    }
    closeSync(fd);
    let released = false;
    return {
      path,
      owner,
      release() {
        if (released) return;
        released = true;
        try {
          const now = readOwner(path);
          if (now !== 'gone' && now !== null && sameOwner(now, owner)) remove(path);
        } catch {
          // Release runs on the way out of an error too, which it must not hide; a lock left
          // behind is found stale by the next `up`.
        }
      },
    };
  }
  throw new BackchannelError('ERR_LOCAL_IN_USE', `up: the lock on ${real} keeps changing; another backchannel up is starting there`);
}
