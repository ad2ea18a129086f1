// The data folder's lock (src/local/lock.ts): one `up` per folder, stale and copied locks replaced.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBackchannelError } from '../../src/errors.js';
import { LOCK_FILE, lockDataDir, processRunning } from '../../src/local/lock.js';

/** The pid of a process that has ended: a real pid that no longer names anything. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.equal(typeof r.pid, 'number');
  assert.equal(processRunning(r.pid!), false);
  return r.pid!;
}

describe('the data folder lock', () => {
  let root: string;
  let n = 0;
  const folder = (): string => join(root, `data-${++n}`);
  before(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'bc-lock-')));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('creates the folder and an owner-only lock naming this process, and release removes it', () => {
    const dir = folder();
    const lock = lockDataDir(dir);
    assert.equal(lock.path, join(dir, LOCK_FILE));
    if (process.platform !== 'win32') assert.equal(statSync(lock.path).mode & 0o777, 0o600);
    const owner = JSON.parse(readFileSync(lock.path, 'utf8')) as { pid: number; dir: string; since: string };
    assert.deepEqual(owner, { pid: process.pid, dir, since: lock.owner.since });
    lock.release();
    assert.equal(existsSync(lock.path), false);
    lock.release();
  });

  it('refuses a folder whose lock a running process holds, naming its pid and what to do', () => {
    const dir = folder();
    const lock = lockDataDir(dir);
    try {
      assert.throws(
        () => lockDataDir(dir),
        (e: unknown) =>
          isBackchannelError(e, 'ERR_LOCAL_IN_USE') &&
          e.message.includes(`pid ${process.pid}`) &&
          e.message.includes(`backchannel status --dir ${dir}`) &&
          !e.message.includes('\n'),
      );
      assert.ok(existsSync(lock.path), 'the refusal leaves the holder its lock');
    } finally {
      lock.release();
    }
  });

  it('replaces a stale lock, whose process no longer runs, and says so in one line', () => {
    const dir = folder();
    mkdirSync(dir);
    const pid = deadPid();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, dir, since: '2026-01-01T00:00:00.000Z' }));
    const lines: string[] = [];
    const lock = lockDataDir(dir, { progress: (l) => lines.push(l) });
    try {
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, new RegExp(`stale lock: pid ${pid}\\b.*no longer runs`));
      assert.equal((JSON.parse(readFileSync(lock.path, 'utf8')) as { pid: number }).pid, process.pid);
    } finally {
      lock.release();
    }
  });

  it('replaces a lock copied from another folder even while its process runs', () => {
    const dir = folder();
    mkdirSync(dir);
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, dir: join(root, 'the-original'), since: '2026-01-01T00:00:00.000Z' }));
    const lines: string[] = [];
    const lock = lockDataDir(dir, { progress: (l) => lines.push(l) });
    lock.release();
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /copied from another folder/);
  });

  it('refuses a lock file it did not write rather than guess whose it is', () => {
    const dir = folder();
    mkdirSync(dir);
    writeFileSync(join(dir, LOCK_FILE), 'not json');
    assert.throws(() => lockDataDir(dir), (e: unknown) => isBackchannelError(e, 'ERR_LOCAL_IN_USE') && /remove that file/.test(e.message));
    assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8'), 'not json');
  });

  it('release leaves alone a lock that another process has taken since', () => {
    const dir = folder();
    const lock = lockDataDir(dir);
    const other = JSON.stringify({ pid: deadPid(), dir, since: '2026-01-01T00:00:00.000Z' });
    writeFileSync(lock.path, other);
    lock.release();
    assert.equal(readFileSync(lock.path, 'utf8'), other);
  });
});
