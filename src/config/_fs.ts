/**
 * Crash-safe file writes for keys and configs: write a temporary file beside the target, fsync
 * it, move it into place, fsync the folder. A reader sees the old file or the new one, never a
 * torn one, even across a power cut.
 */
import { closeSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode (before the umask), e.g. 0o600 for secrets. */
  readonly mode: number;
  /**
   * Refuse to replace an existing file: the file is put in place with link(2), which fails when
   * the name exists, so two processes creating the same key cannot both win.
   */
  readonly exclusive?: boolean;
}

/** Makes a rename or link in `dir` durable. Some platforms cannot open a folder: nothing to do there. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `data` to `path` atomically. Returns false (and writes nothing) only when `exclusive`
 * is set and `path` already exists.
 * @throws the file system's error (with its `code`) when the write fails.
 */
export function writeFileAtomic(path: string, data: Uint8Array, options: AtomicWriteOptions): boolean {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', options.mode);
  let placed = false;
  try {
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (options.exclusive === true) {
      try {
        linkSync(tmp, path);
      } catch (e) {
        if ((e as { code?: unknown }).code === 'EEXIST') return false;
        throw e;
      }
    } else {
      renameSync(tmp, path);
    }
    placed = true;
  } finally {
    // After link(2) the temporary name is a second name for the file; after rename it is gone.
    if (!placed || options.exclusive === true) rmSync(tmp, { force: true });
  }
  fsyncDir(dir);
  return true;
}
